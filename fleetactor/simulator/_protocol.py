"""The AWS JSON 1.1 protocol in front of the simulator, shared by both transports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from fleetactor.simulator._config import AmbiguousResponse
from fleetactor.simulator._errors import EcsError, LostResponse, serialization_error, server_error, unknown_operation
from fleetactor.simulator._simulator import EcsSimulator

__all__ = ["GROUND_TRUTH_PATH", "MAX_BODY_BYTES", "HttpReply", "handle_http", "too_large_reply"]

logger = structlog.get_logger(__name__)

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
GROUND_TRUTH_PATH = "/_simulator/ground-truth"

# Requests larger than this are rejected before their JSON is parsed.
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class HttpReply:
    """An HTTP response, or with ``drop_connection`` one whose connection breaks before the body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    drop_connection: bool = False


async def handle_http(
    simulator: EcsSimulator,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
) -> HttpReply:
    """Build the HTTP response to one request to the simulator.

    ``headers`` maps lower-case names to values. The Authorization header and
    the signature are never checked, logged or sent back.
    """
    if path == GROUND_TRUTH_PATH:
        if method not in ("GET", "HEAD"):
            return _json_reply(405, {"message": f"{GROUND_TRUTH_PATH} is read-only: use GET."}, allow="GET, HEAD")
        return _json_reply(200, simulator.ground_truth().as_dict(), content_type="application/json")

    if method != "POST":
        error = unknown_operation(f"ECS operations are sent with POST, got {method}.")
        return _json_reply(405, error.body(), allow="POST")
    if len(body) > MAX_BODY_BYTES:
        return too_large_reply()

    target = headers.get("x-amz-target", "")
    if not target.startswith(TARGET_PREFIX):
        error = unknown_operation(f"X-Amz-Target must be '{TARGET_PREFIX}<Operation>', got {target!r}.")
        return _error_reply(error, request_id=simulator._new_request_id())
    operation = target[len(TARGET_PREFIX) :]
    return await _call_operation(simulator, operation, body)


def too_large_reply() -> HttpReply:
    """Return the 413 response for a body over MAX_BODY_BYTES."""
    error = serialization_error(f"The request body is larger than the limit of {MAX_BODY_BYTES} bytes.")
    return _json_reply(413, error.body())


async def _call_operation(simulator: EcsSimulator, operation: str, body: bytes) -> HttpReply:
    request_id = simulator._new_request_id()
    try:
        request = _decode_request(body)
        response = await simulator._call(operation, request)
    except EcsError as error:
        return _error_reply(error, request_id=request_id)
    except LostResponse as lost:
        if simulator.config.ambiguous_response is AmbiguousResponse.DISCONNECT:
            reply = _json_reply(200, lost.response, request_id=request_id)
            return HttpReply(reply.status, reply.headers, reply.body, drop_connection=True)
        return _error_reply(server_error(), request_id=request_id)
    except Exception:
        # A bug in the simulator or a run_time_sampler that raised: report it
        # as ECS would report an internal fault, and keep serving.
        logger.exception("simulator.request_failed", operation=operation, request_id=request_id)
        return _error_reply(server_error(), request_id=request_id)
    return _json_reply(200, response, request_id=request_id)


def _decode_request(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except ValueError as error:
        raise serialization_error(f"The request body is not valid JSON: {error}.") from None
    if not isinstance(request, dict):
        raise serialization_error(f"The request body must be a JSON object, got {type(request).__name__}.")
    return request


def _error_reply(error: EcsError, *, request_id: str) -> HttpReply:
    return _json_reply(error.status, error.body(), request_id=request_id)


def _json_reply(
    status: int,
    payload: Mapping[str, Any],
    *,
    request_id: str | None = None,
    allow: str | None = None,
    content_type: str = JSON_CONTENT_TYPE,
) -> HttpReply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("content-type", content_type), ("content-length", str(len(body)))]
    if request_id is not None:
        headers.append(("x-amzn-requestid", request_id))
    if allow is not None:
        headers.append(("allow", allow))
    return HttpReply(status=status, headers=tuple(headers), body=body)
