"""Fleet-cap failures reported for other fleet managers, replayed in virtual time.

Each scenario runs the real fleet and ECS provisioner against the simulator,
or against the fake provisioner where the fault is inside the provisioner.
Then it checks the ground truth. The peak of tasks not yet STOPPED stays at
or under the cap, every request ends served, failed with a reason or
cancelled, and no client token starts two tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import trio
from botocore.credentials import Credentials

from fleetactor import FleetConfig, Job, LaunchFailedError, LaunchRejected, open_fleet
from fleetactor.ecs import EcsProvisioner
from fleetactor.simulator import EcsSimulator, SimulatorConfig, SimulatorTransport
from fleetactor.testing import FakeProvisioner


@dataclass
class Outcome:
    served: int = 0
    failed: list[str] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    launch_times: list[float] = field(default_factory=list)
    makespan: float = 0.0


class CountingProvisioner:
    """Records when each launch call was made, then delegates."""

    def __init__(self, inner):
        self.inner = inner
        self.launch_times = []

    async def launch(self, job, *, client_token):
        self.launch_times.append(trio.current_time())
        return await self.inner.launch(job, client_token=client_token)

    async def list_running(self):
        return await self.inner.list_running()

    async def describe(self, task_ids):
        return await self.inner.describe(task_ids)


def ecs_over(simulator):
    return EcsProvisioner(
        "default",
        "worker",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:4566",
        credentials=Credentials("AKIAFLEETACTORSIM001", "fleetactor-scenario-test-secret-00000"),
        subnets=["subnet-1"],
        transport=SimulatorTransport(simulator),
    )


def simulator(**knobs):
    return EcsSimulator(SimulatorConfig(task_definition_families=("worker",), seed=7, **knobs))


async def run_requests(fleet, arrivals, outcome):
    """Submit one job per arrival time (seconds from now) and wait for every worker to stop."""
    start = trio.current_time()

    async def one(index, at):
        await trio.sleep_until(start + at)
        submitted = trio.current_time()
        ticket = await fleet.submit(Job(f"job-{index}"))
        try:
            await ticket.wait_started()
            outcome.waits.append(trio.current_time() - submitted)
            await ticket.wait_finished()
            outcome.served += 1
        except LaunchFailedError as error:
            outcome.failed.append(error.reason)

    async with trio.open_nursery() as nursery:
        for index, at in enumerate(arrivals):
            nursery.start_soon(one, index, at)
    outcome.makespan = trio.current_time() - start


async def run_on_simulator(sim, config, arrivals):
    outcome = Outcome()
    provisioner = ecs_over(sim)
    counting = CountingProvisioner(provisioner)
    async with provisioner, open_fleet(counting, config) as fleet:
        await trio.sleep(1)
        await run_requests(fleet, arrivals, outcome)
        statistics = fleet.statistics()
    outcome.launch_times = counting.launch_times
    return outcome, statistics, sim.ground_truth()


def first_stop_time(truth):
    previous = 0
    for point in truth.timeline:
        if point.fleet_active < previous:
            return point.time
        previous = point.fleet_active
    return math.inf


@pytest.mark.parametrize("visibility_lag", [8.0, math.inf])
async def test_s0_cold_burst(autojump_clock, visibility_lag):
    sim = simulator(visibility_lag=visibility_lag, boot_time=5, run_time=60, stop_time=5)
    config = FleetConfig(max_workers=16, reconcile_interval=5, visibility_timeout=20)
    outcome, statistics, truth = await run_on_simulator(sim, config, [0.0] * 24)

    stop = first_stop_time(truth)
    launches_before_stop = sum(1 for at in outcome.launch_times if at - sim._origin < stop)
    assert launches_before_stop == 16
    assert truth.peak_fleet_active == 16
    assert truth.tasks_started == 24
    assert truth.duplicate_tasks == 0
    assert outcome.served == 24
    assert statistics.served == 24
    assert outcome.failed == []


async def test_s1_trickle_and_burst(autojump_clock):
    sim = simulator(visibility_lag=10, boot_time=5, run_time=45, stop_time=5)
    config = FleetConfig(max_workers=20, reconcile_interval=5, visibility_timeout=30)
    arrivals = [float(second) for second in range(120)] + [30.0] * 40
    outcome, statistics, truth = await run_on_simulator(sim, config, arrivals)

    assert truth.peak_fleet_active == 20
    assert truth.tasks_started == 160
    assert truth.duplicate_tasks == 0
    assert outcome.served == 160


async def test_s2_list_failures(autojump_clock):
    sim = simulator(visibility_lag=8, boot_time=5, run_time=60, stop_time=5, list_failure_rate=0.25)
    config = FleetConfig(max_workers=20, reconcile_interval=5, visibility_timeout=30)
    outcome, statistics, truth = await run_on_simulator(sim, config, [0.0] * 200)

    assert truth.list_failures > 0
    assert truth.peak_fleet_active == 20
    assert truth.tasks_started == 200
    assert outcome.served == 200
    assert outcome.failed == []


async def test_s3_partial_launch_failures(autojump_clock):
    sim = simulator(visibility_lag=8, boot_time=5, run_time=30, stop_time=5, launch_failure_rate=0.3)
    config = FleetConfig(max_workers=10, reconcile_interval=5, visibility_timeout=30, seed=3)
    outcome, statistics, truth = await run_on_simulator(sim, config, [0.0] * 60)

    assert truth.launch_failures > 0
    assert truth.peak_fleet_active <= 10
    assert outcome.served + len(outcome.failed) == 60
    assert all("Capacity is unavailable" in reason for reason in outcome.failed)
    assert outcome.served == truth.tasks_started
    assert statistics.active == 0
    assert statistics.launching == 0


async def test_s4_slow_boot(autojump_clock):
    sim = simulator(visibility_lag=8, boot_time=90, run_time=30, stop_time=5)
    config = FleetConfig(max_workers=10, reconcile_interval=5, visibility_timeout=30)
    outcome, statistics, truth = await run_on_simulator(sim, config, [0.0] * 3)

    assert truth.calls["RunTask"] == 3
    assert truth.tasks_started == 3
    assert outcome.served == 3


async def test_s5_backend_at_its_limit(autojump_clock):
    backend_limit = 38

    def reject_when_full(job, client_token):
        if provisioner.alive() >= backend_limit:
            return LaunchRejected("Capacity is unavailable at this time", retryable=True)
        return None

    provisioner = FakeProvisioner(list_lag=8, run_time=60, launch_error=reject_when_full)
    config = FleetConfig(max_workers=40, reconcile_interval=5, visibility_timeout=30, seed=5)
    outcome = Outcome()
    async with open_fleet(provisioner, config) as fleet:
        await trio.sleep(1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_requests, fleet, [0.0] * 40, outcome)
            await trio.sleep(5)
            after_one_reconcile = fleet.statistics()

    assert after_one_reconcile.active == backend_limit
    assert after_one_reconcile.queued == 2
    assert outcome.served == 40
    assert outcome.failed == []
    assert provisioner.true_peak() == backend_limit
    assert len(provisioner.tasks) == 40


async def test_s6_launch_exceptions_for_ten_minutes(autojump_clock):
    outage_end = trio.current_time() + 600

    def fail_in_outage(job, client_token):
        if trio.current_time() < outage_end:
            return ConnectionResetError("connection reset by peer")
        return None

    provisioner = FakeProvisioner(list_lag=8, run_time=60, launch_error=fail_in_outage)
    config = FleetConfig(max_workers=8, reconcile_interval=5, visibility_timeout=30)
    outcome = Outcome()
    async with open_fleet(provisioner, config) as fleet:
        await trio.sleep(1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_requests, fleet, [0.0] * 20, outcome)
            await trio.sleep(300)
            during = fleet.statistics()
        after = fleet.statistics()

    assert during.launching == 8
    assert during.queued == 12
    assert outcome.served == 20
    assert after.active == 0
    assert after.launching == 0
    assert provisioner.true_peak() <= 8
    assert len(provisioner.tasks) == 20


async def test_s7_lost_run_task_responses(autojump_clock):
    sim = simulator(visibility_lag=8, boot_time=5, run_time=20, stop_time=5, ambiguous_rate=0.2)
    config = FleetConfig(max_workers=1, reconcile_interval=5, visibility_timeout=30)
    outcome, statistics, truth = await run_on_simulator(sim, config, [0.0] * 30)

    assert truth.ambiguous_launches > 0
    assert truth.duplicate_tasks == 0
    assert truth.tasks_started == 30
    assert truth.peak_fleet_active == 1
    assert outcome.served == 30


async def test_s8_long_stopping(autojump_clock):
    sim = simulator(visibility_lag=8, boot_time=5, run_time=30, stop_time=60)
    config = FleetConfig(max_workers=10, reconcile_interval=5, visibility_timeout=30)
    outcome, statistics, truth = await run_on_simulator(sim, config, [0.0] * 30)

    assert truth.peak_fleet_active == 10
    assert truth.tasks_started == 30
    assert outcome.served == 30
