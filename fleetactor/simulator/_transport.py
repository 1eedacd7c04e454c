"""The simulator as an httpx transport, for in-process use under trio."""

from __future__ import annotations

import httpx

from fleetactor.simulator._protocol import handle_http
from fleetactor.simulator._simulator import EcsSimulator

__all__ = ["SimulatorTransport"]


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Send httpx requests to an ``EcsSimulator`` without a network.

    Any base URL works, for example
    ``httpx.AsyncClient(transport=SimulatorTransport(simulator), base_url="http://ecs.simulator")``.
    Requests run in the caller's trio task, so virtual time applies.

    Raises:
        httpx.RemoteProtocolError: from ``handle_async_request`` when an
            ambiguous RunTask drops its connection (``AmbiguousResponse.DISCONNECT``);
            its tasks exist.
    """

    def __init__(self, simulator: EcsSimulator) -> None:
        self.simulator = simulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {name.lower(): value for name, value in request.headers.items()}
        reply = await handle_http(self.simulator, request.method, request.url.path, headers, body)
        if reply.drop_connection:
            msg = "The simulated server closed the connection before sending the RunTask response body."
            raise httpx.RemoteProtocolError(msg, request=request)
        return httpx.Response(reply.status, headers=list(reply.headers), content=reply.body, request=request)
