"""A fleet driving EcsProvisioner against moto: the cold-burst case.

24 distinct requests arrive at once at a fleet capped at 16 workers. Every
request must be served, and no more than 16 tasks may exist in moto at any
instant. Each worker stops as soon as it has started, so queued requests get
slots once the reaper's DescribeTasks calls report STOPPED.

These tests use the real clock because moto responds over real sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
import trio
from ecs_support import (
    MotoEcs,
    fake_aws_env,  # noqa: F401  (fixture)
    moto_ecs,  # noqa: F401  (fixture)
    moto_provisioner,
    moto_url,  # noqa: F401  (fixture)
)

from fleetactor import FleetConfig, Job, Ticket, open_fleet
from fleetactor.ecs import EcsProvisioner

pytestmark = pytest.mark.usefixtures("fake_aws_env")

BURST = 24
MAX_WORKERS = 16


@dataclass
class TaskCensus:
    """An upper bound on the tasks that exist in moto, from the HTTP traffic.

    A task counts from the moment its RunTask request is sent until the
    StopTask response for it arrives, so the count is never below the truth.
    """

    existing: int = 0
    peak: int = 0
    run_task_requests: int = 0

    async def on_request(self, request: httpx.Request) -> None:
        if request.headers["X-Amz-Target"].endswith(".RunTask"):
            self.run_task_requests += 1
            self.existing += 1
            self.peak = max(self.peak, self.existing)

    async def on_response(self, response: httpx.Response) -> None:
        if response.request.headers["X-Amz-Target"].endswith(".StopTask") and response.status_code == 200:
            self.existing -= 1


async def serve(provisioner: EcsProvisioner, ticket: Ticket, task_ids: list[str]) -> None:
    task_id = await ticket.wait_started()
    task_ids.append(task_id)
    await provisioner.stop(task_id, "work finished")
    await ticket.wait_finished()


async def test_burst_of_24_cap_16(moto_ecs: MotoEcs, capsys: pytest.CaptureFixture[str]) -> None:
    census = TaskCensus()
    hooks = {"request": [census.on_request], "response": [census.on_response]}
    config = FleetConfig(max_workers=MAX_WORKERS, reconcile_interval=0.05, visibility_timeout=1.0, seed=1)
    task_ids: list[str] = []

    async with httpx.AsyncClient(event_hooks=hooks) as http_client:
        provisioner = moto_provisioner(moto_ecs, started_by="burst-24", http_client=http_client)
        with trio.fail_after(60):
            async with provisioner, open_fleet(provisioner, config) as fleet:
                tickets = [await fleet.submit(Job(key=f"file-{number}")) for number in range(BURST)]
                async with trio.open_nursery() as nursery:
                    for ticket in tickets:
                        nursery.start_soon(serve, provisioner, ticket, task_ids)
                fleet_statistics = fleet.statistics()
        requests = dict(provisioner.statistics().requests)

    with capsys.disabled():
        print(f"\nHTTP requests for a burst of {BURST} at cap {MAX_WORKERS} against moto: {requests}")

    decisions = [ticket.decision for ticket in tickets]
    assert decisions.count("granted") <= MAX_WORKERS
    assert decisions.count("granted") + decisions.count("queued") == BURST
    assert len(set(task_ids)) == BURST
    assert fleet_statistics.served == BURST
    assert fleet_statistics.failed == 0
    assert fleet_statistics.peak_active <= MAX_WORKERS
    assert census.peak <= MAX_WORKERS
    assert census.run_task_requests == BURST
    assert requests["RunTask"] == BURST
    assert requests["StopTask"] == BURST
