"""The simulator as an ASGI application, served over HTTP by hypercorn's trio worker."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
import trio

from fleetactor.simulator._protocol import MAX_BODY_BYTES, HttpReply, handle_http, too_large_reply
from fleetactor.simulator._simulator import EcsSimulator

__all__ = ["asgi_app", "serve"]

logger = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_app(simulator: EcsSimulator) -> AsgiApp:
    """Return an ASGI 3 application that serves ``simulator``.

    It serves ECS JSON requests on any path and ``GET /_simulator/ground-truth``.
    An ambiguous RunTask in ``AmbiguousResponse.DISCONNECT`` mode sends the
    status line, the headers and half of the body, then ends the connection.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _run_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return

        body = await _read_body(receive)
        if body is None:
            reply = too_large_reply()
        else:
            headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
            reply = await handle_http(simulator, scope["method"], scope["path"], headers, body)

        if reply.drop_connection:
            await _send_truncated(send, reply)
            return
        raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})

    return app


async def serve(
    simulator: EcsSimulator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``simulator`` over HTTP until cancelled.

    Port 0 picks a free port. Start it with ``await nursery.start(serve, simulator)``,
    which returns the bound URL, such as ``"http://127.0.0.1:40213"``.
    Simulated time zero is the start of serving unless the simulator was
    created inside this trio run.

    Raises:
        OSError: inside an exception group, when the address cannot be bound.
    """
    # Imported here so that the in-process simulator does not load the server.
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"

    simulator._start_clock()

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(functools.partial(hypercorn_serve, asgi_app(simulator), config))
        url = binds[0]
        logger.info("simulator.serving", url=url)
        task_status.started(url)
        try:
            await trio.sleep_forever()
        finally:
            logger.info("simulator.stopped", url=url)


async def _send_truncated(send: Send, reply: HttpReply) -> None:
    """Send the start of a response, then end the connection before the body is complete.

    Without Content-Length an HTTP/1.1 response is chunked, so the client sees
    the missing final chunk. botocore reads with Content-Length checks off and
    would take a short body with that header for a complete one.
    """
    raw_headers = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers if name != "content-length"
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": reply.body[: len(reply.body) // 2], "more_body": True})
    # Returning with more_body still set makes hypercorn close the connection.


async def _run_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes | None:
    """Return the request body, or None once it grows past MAX_BODY_BYTES."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)

