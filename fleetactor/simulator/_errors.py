"""Error responses of the simulated ECS API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["EcsError", "LostResponse"]


class EcsError(Exception):
    """An ECS error response: an AWS error code, a message and an HTTP status.

    The JSON body is ``{"__type": code, "message": message}`` plus any extra
    members (ConflictException carries ``resourceIds``).
    """

    def __init__(self, code: str, message: str, status: int = 400, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """Return the JSON body of the error response."""
        return {"__type": self.code, "message": self.message, **self.extra}


def invalid_parameter(message: str) -> EcsError:
    return EcsError("InvalidParameterException", message)


def client_error(message: str) -> EcsError:
    return EcsError("ClientException", message)


def cluster_not_found() -> EcsError:
    return EcsError("ClusterNotFoundException", "Cluster not found.")


def throttled() -> EcsError:
    return EcsError("ThrottlingException", "Rate exceeded")


def server_error() -> EcsError:
    return EcsError("ServerException", "Service encountered an internal error.", status=500)


def service_unavailable() -> EcsError:
    # ECS models no 503 error shape. ServerException is its modelled server
    # fault, and clients retry on the status whatever the code.
    return EcsError("ServerException", "Service Unavailable", status=503)


def conflict(resource_ids: Sequence[str]) -> EcsError:
    message = (
        "The clientToken is already in use with a RunTask request of other parameters. "
        "Send the original parameters again, or use a new clientToken."
    )
    return EcsError("ConflictException", message, extra={"resourceIds": list(resource_ids)})


def serialization_error(message: str) -> EcsError:
    return EcsError("SerializationException", message)


def unknown_operation(message: str) -> EcsError:
    return EcsError("UnknownOperationException", message)


class LostResponse(Exception):
    """RunTask created tasks, but the caller must receive no successful response.

    The HTTP layer turns it into a ServerException or a dropped connection.
    ``response`` is the body the call would have returned.
    """

    def __init__(self, response: Mapping[str, Any]) -> None:
        super().__init__("the RunTask response was lost after its tasks were created")
        self.response = response
