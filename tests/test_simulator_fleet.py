"""fleetactor's fleet and ECS provisioner against the simulator, in virtual time."""

from __future__ import annotations

import math

import pytest
import trio
from botocore.credentials import Credentials

from fleetactor import FleetConfig, Job, open_fleet
from fleetactor.ecs import EcsProvisioner
from fleetactor.simulator import EcsSimulator, SimulatorConfig, SimulatorTransport


async def submit_burst(fleet, count):
    tickets = [None] * count

    async def submit_one(index):
        tickets[index] = await fleet.submit(Job(key=f"file-{index}"))

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(submit_one, index)
    return tickets


async def wait_all_finished(tickets):
    async with trio.open_nursery() as nursery:
        for ticket in tickets:
            nursery.start_soon(ticket.wait_finished)


@pytest.mark.parametrize("visibility_lag", [8.0, math.inf])
async def test_fleet_burst_holds_cap(autojump_clock, visibility_lag):
    simulator = EcsSimulator(
        SimulatorConfig(task_definition_families=("worker",), visibility_lag=visibility_lag, run_time=60.0, seed=1)
    )
    provisioner = EcsProvisioner(
        "default",
        "worker",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:4566",
        credentials=Credentials("AKIAFLEETACTORSIM001", "fleetactor-simulator-test-secret-000000"),
        subnets=["subnet-1"],
        transport=SimulatorTransport(simulator),
    )
    config = FleetConfig(max_workers=16, reconcile_interval=5, visibility_timeout=30, seed=1)

    async with provisioner, open_fleet(provisioner, config) as fleet:
        # The fleet grants nothing until its first ListTasks has succeeded.
        await trio.sleep(1)
        tickets = await submit_burst(fleet, 24)
        decisions = [ticket.decision for ticket in tickets]
        await wait_all_finished(tickets)
        statistics = fleet.statistics()

    truth = simulator.ground_truth()
    assert truth.peak_fleet_active == 16
    assert truth.tasks_started == 24
    assert truth.duplicate_tasks == 0
    assert decisions.count("granted") == 16
    assert decisions.count("queued") == 8
    assert statistics.served == 24
