"""Errors raised by the ECS client and provisioner."""

from __future__ import annotations

from fleetactor._types import LaunchRejected

__all__ = ["AwsServiceError", "EcsConfigError", "InvalidJobOverridesError"]

# Error codes that AWS services return when a caller exceeds a request quota.
# The list follows the throttling codes that the AWS SDKs retry.
THROTTLING_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)

# Error codes for failures on the service side that may pass on a later attempt.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServerException",
    }
)


class EcsConfigError(ValueError):
    """A setting the ECS client needs is missing or invalid.

    The message names the setting and how to provide it.
    """


class AwsServiceError(Exception):
    """An AWS service returned an error response to a request.

    Attributes:
        operation: The API operation, for example ``"RunTask"``.
        code: The AWS error code, for example ``"ClusterNotFoundException"``.
        message: The service's error message, possibly empty.
        status_code: The HTTP status of the response.
        request_id: The ``x-amzn-RequestId`` of the response, or None when the
            response carried none (for example a proxy's error page).
        after_unknown_outcome: True when an earlier attempt of the same call
            got a 5xx response or lost its connection, so the request may
            have taken effect even though this error is a definite one.
    """

    def __init__(
        self,
        operation: str,
        code: str,
        message: str,
        status_code: int,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{operation} failed with {code} (HTTP {status_code}): {message}")
        self.operation = operation
        self.code = code
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.after_unknown_outcome = False

    def __repr__(self) -> str:
        return (
            f"AwsServiceError(operation={self.operation!r}, code={self.code!r}, "
            f"message={self.message!r}, status_code={self.status_code}, "
            f"request_id={self.request_id!r})"
        )

    @property
    def throttling(self) -> bool:
        """True when the service rejected the request for exceeding a rate quota."""
        return self.code in THROTTLING_ERROR_CODES or self.status_code == 429

    @property
    def server_side(self) -> bool:
        """True for HTTP 5xx and transient service codes.

        The request may have taken effect before the error was returned.
        """
        return self.status_code >= 500 or self.code in TRANSIENT_ERROR_CODES

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed on a later attempt."""
        return self.throttling or self.server_side


class InvalidJobOverridesError(LaunchRejected, ValueError):
    """A job's ``overrides`` cannot be turned into a RunTask request.

    Nothing was sent to ECS. The error is a ``ValueError`` because the job is
    wrong, and a non-retryable ``LaunchRejected`` so that a fleet fails the
    request with this message instead of retrying it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)
