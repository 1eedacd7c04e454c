"""Retry policy: which failed requests to send again, and the wait before each retry."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import httpx

from fleetactor.ecs._errors import AwsServiceError

__all__ = ["RetryPolicy"]

# Transport failures after which the request may be sent again. Timeouts and
# broken connections are ambiguous: the service may have acted on the request,
# so only idempotent requests (ECS RunTask with a clientToken, reads) belong
# behind this client. UnsupportedProtocol, LocalProtocolError and ProxyError
# are configuration faults and are not retried.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and capped exponential backoff with full jitter.

    The wait before retry ``n`` (1 for the first retry) is drawn uniformly from
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` seconds.

    Args:
        max_attempts: Attempts per request, the first one included. 1 turns
            retries off.
        base_delay: Upper bound of the first wait, in seconds.
        max_delay: Cap on the upper bound of any wait, in seconds.
    """

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            msg = f"RetryPolicy max_attempts must be an int of at least 1, got {self.max_attempts!r}"
            raise ValueError(msg)
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                msg = f"RetryPolicy {name} must be a finite number of seconds >= 0, got {value!r}"
                raise ValueError(msg)

    def backoff(self, retry_number: int, jitter_random: random.Random) -> float:
        """Return the seconds to wait before retry ``retry_number`` (1-based)."""
        # The exponent is bounded so that a large max_attempts cannot overflow a float.
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(retry_number - 1, 64))
        return jitter_random.uniform(0, ceiling)


def is_retryable(error: Exception) -> bool:
    """Tell whether a request that failed with ``error`` may be sent again."""
    if isinstance(error, AwsServiceError):
        return error.retryable
    return isinstance(error, RETRYABLE_TRANSPORT_ERRORS)
