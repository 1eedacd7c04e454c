"""A fleet driving EcsProvisioner against fleetactor's ECS simulator, in virtual time.

The simulator speaks the ECS JSON protocol through an httpx transport, lists a
new task only after a visibility lag, and honours client tokens. Its ground
truth counts the tasks that really existed at once.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from ecs_support import FAKE_CREDENTIALS, REGION, SHARED_SESSION, fake_aws_env  # noqa: F401  (fixture)

from fleetactor import FleetConfig, Job, open_fleet
from fleetactor.ecs import EcsProvisioner
from fleetactor.simulator import AmbiguousResponse, EcsSimulator, SimulatorConfig, SimulatorTransport

pytestmark = pytest.mark.usefixtures("fake_aws_env")

BURST = 24
MAX_WORKERS = 16


def simulator_provisioner(simulator: EcsSimulator) -> EcsProvisioner:
    return EcsProvisioner(
        "workers",
        "worker",
        region=REGION,
        endpoint_url="http://ecs.simulator",
        credentials=FAKE_CREDENTIALS,
        session=SHARED_SESSION,
        transport=SimulatorTransport(simulator),
        subnets=["subnet-1"],
        started_by="simulated-fleet",
    )


async def run_burst(simulator: EcsSimulator) -> tuple[Any, Any, dict[str, int]]:
    config = FleetConfig(max_workers=MAX_WORKERS, reconcile_interval=2.0, visibility_timeout=30.0, seed=1)
    provisioner = simulator_provisioner(simulator)

    async with provisioner, open_fleet(provisioner, config) as fleet:
        tickets = [await fleet.submit(Job(key=f"file-{number}")) for number in range(BURST)]
        async with trio.open_nursery() as nursery:
            for ticket in tickets:
                nursery.start_soon(ticket.wait_finished)
        statistics = fleet.statistics()

    return simulator.ground_truth(), statistics, dict(provisioner.statistics().requests)


async def test_cold_burst_respects_cap(autojump_clock: Any) -> None:
    simulator = EcsSimulator(
        SimulatorConfig(
            cluster_name="workers",
            task_definition_families=("worker",),
            visibility_lag=8.0,
            boot_time=4.0,
            run_time=60.0,
            stop_time=2.0,
        )
    )

    truth, statistics, requests = await run_burst(simulator)

    assert statistics.served == BURST
    assert statistics.failed == 0
    assert truth.tasks_started == BURST
    assert truth.peak_fleet_active == MAX_WORKERS
    assert truth.duplicate_tasks == 0
    assert requests["RunTask"] == BURST


async def test_lost_responses_reuse_token(autojump_clock: Any) -> None:
    simulator = EcsSimulator(
        SimulatorConfig(
            cluster_name="workers",
            task_definition_families=("worker",),
            visibility_lag=8.0,
            boot_time=4.0,
            run_time=30.0,
            stop_time=2.0,
            ambiguous_rate=0.3,
            ambiguous_response=AmbiguousResponse.DISCONNECT,
            seed=7,
        )
    )

    truth, statistics, requests = await run_burst(simulator)

    assert statistics.served == BURST
    assert truth.tasks_started == BURST
    assert truth.duplicate_tasks == 0
    assert truth.peak_fleet_active <= MAX_WORKERS
    assert truth.ambiguous_launches > 0
    assert requests["RunTask"] > BURST
