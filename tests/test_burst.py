"""The cold-start burst that motivates the project, on the fake provisioner."""

import math

import trio

from fleetactor import FleetConfig, Job, open_fleet
from fleetactor.testing import FakeProvisioner


async def submit_burst(fleet, count, prefix="job"):
    tickets = [None] * count

    async def submit_one(index):
        tickets[index] = await fleet.submit(Job(key=f"{prefix}-{index}"))

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(submit_one, index)
    return tickets


async def wait_all_finished(tickets):
    async with trio.open_nursery() as nursery:
        for ticket in tickets:
            nursery.start_soon(ticket.wait_finished)


async def test_blind_list_burst_holds_cap(autojump_clock):
    provisioner = FakeProvisioner(list_lag=math.inf, run_time=60)
    config = FleetConfig(max_workers=16, reconcile_interval=5, visibility_timeout=20)
    async with open_fleet(provisioner, config) as fleet:
        await trio.sleep(0.1)
        tickets = await submit_burst(fleet, 24)
        await trio.sleep(59)
        launches_before_first_stop = provisioner.calls.launch
        decisions = [ticket.decision for ticket in tickets]
        await wait_all_finished(tickets)
        statistics = fleet.statistics()

    assert launches_before_first_stop == 16
    assert decisions.count("granted") == 16
    assert decisions.count("queued") == 8
    assert provisioner.calls.launch == 24
    assert provisioner.true_peak() == 16
    assert statistics.served == 24
    assert statistics.stopped == 24
    assert statistics.failed == 0
    assert statistics.cancelled == 0


async def test_lagged_list_burst_reaches_cap(autojump_clock):
    provisioner = FakeProvisioner(list_lag=8, run_time=60)
    config = FleetConfig(max_workers=16, reconcile_interval=5, visibility_timeout=30)
    async with open_fleet(provisioner, config) as fleet:
        await trio.sleep(0.1)
        tickets = await submit_burst(fleet, 24)
        await trio.sleep(30)
        running_at_30s = provisioner.alive()
        await wait_all_finished(tickets)
        statistics = fleet.statistics()

    assert running_at_30s == 16
    assert provisioner.true_peak() == 16
    assert statistics.peak_active == 16
    assert statistics.served == 24
