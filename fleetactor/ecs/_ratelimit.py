"""Client-side token buckets that keep API calls under a request rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import trio

__all__ = ["RateLimit", "TokenBucket"]


@dataclass(frozen=True)
class RateLimit:
    """Sustained rate and burst size of one token bucket.

    Args:
        per_second: Tokens added per second: the sustained request rate.
        burst: Bucket capacity: how many requests may go out at once after
            the bucket has been idle.
    """

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)):
            msg = f"RateLimit per_second must be a positive finite number, got {self.per_second!r}"
            raise ValueError(msg)
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            msg = f"RateLimit burst must be an int of at least 1, got {self.burst!r}"
            raise ValueError(msg)


class TokenBucket:
    """A token bucket on trio's clock, so virtual time in tests applies.

    Each ``acquire`` takes one token. A caller that finds the bucket empty
    takes a token on credit and sleeps until the refill has paid it back.
    Callers are therefore served in the order they arrived, and N waiting
    callers are spaced ``1 / per_second`` apart.
    """

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        # Negative while callers are waiting for tokens taken on credit.
        self._tokens = float(limit.burst)
        self._updated: float | None = None

    def _refill(self, now: float) -> None:
        if self._updated is not None:
            elapsed = now - self._updated
            self._tokens = min(float(self.limit.burst), self._tokens + elapsed * self.limit.per_second)
        self._updated = now

    async def acquire(self) -> float:
        """Take one token, sleeping until the bucket has one.

        Returns:
            The seconds this call slept waiting for its token.

        Raises:
            trio.Cancelled: The wait was cancelled. The token is returned to
                the bucket, so callers that arrive later do not wait for it.
        """
        self._refill(trio.current_time())
        self._tokens -= 1

        if self._tokens >= 0:
            await trio.lowlevel.checkpoint()
            return 0.0

        delay = -self._tokens / self.limit.per_second
        try:
            await trio.sleep(delay)
        except trio.Cancelled:
            self._tokens = min(float(self.limit.burst), self._tokens + 1)
            raise
        return delay
