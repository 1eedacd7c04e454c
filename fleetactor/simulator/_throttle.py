"""Token buckets that model ECS request throttling."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_RATE", "FARGATE_LAUNCH_RATE", "RUN_TASK_CALL_RATE", "BucketRate", "TokenBucket"]


@dataclass(frozen=True)
class BucketRate:
    """Size of a token bucket (the burst) and its refill rate in tokens per second."""

    burst: float
    refill_per_second: float


# Fargate launches: one token per task, 100 burst, 20 per second, as the
# "AWS Fargate throttling quotas" page of the ECS developer guide states.
FARGATE_LAUNCH_RATE = BucketRate(burst=100, refill_per_second=20)

# RunTask calls on Fargate: 20 per second, burst and sustained, from the same page.
RUN_TASK_CALL_RATE = BucketRate(burst=20, refill_per_second=20)

# NOTE: an estimate, not taken from AWS documentation. ECS throttles each
# operation with a bucket of its own, but its per-operation numbers were not
# checked for this simulator.
DEFAULT_RATE = BucketRate(burst=50, refill_per_second=20)


class TokenBucket:
    """A token bucket that refills continuously and starts full at time zero."""

    def __init__(self, rate: BucketRate) -> None:
        self._rate = rate
        self._tokens = float(rate.burst)
        self._updated_at = 0.0

    def try_take(self, now: float, tokens: int = 1) -> bool:
        """Take ``tokens`` at simulated time ``now``, or take none and return False."""
        elapsed = max(0.0, now - self._updated_at)
        self._tokens = min(float(self._rate.burst), self._tokens + elapsed * self._rate.refill_per_second)
        self._updated_at = max(self._updated_at, now)

        # The tolerance absorbs rounding in the refill, so that 20 tokens per
        # second give exactly one token after 0.05 s.
        if tokens > self._tokens + 1e-9:
            return False
        self._tokens -= tokens
        return True
