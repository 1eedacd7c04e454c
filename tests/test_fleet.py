"""The fleet through its public interface, on the fake provisioner in virtual time."""

import math

import pytest
import trio
from structlog.testing import capture_logs

import fleetactor
from fleetactor import FleetClosedError, FleetConfig, Job, LaunchFailedError, LaunchRejected, open_fleet
from fleetactor.testing import FakeProvisioner

FAST = {"reconcile_interval": 5, "visibility_timeout": 20}


def config(**overrides):
    return FleetConfig(**{"max_workers": 2, **FAST, **overrides})


async def first_reconcile():
    # The reaper lists at once; a short wait lets the first listing land.
    await trio.sleep(0.01)


async def test_public_names_exported():
    for name in fleetactor.__all__:
        assert hasattr(fleetactor, name), name
    assert {"open_fleet", "FleetConfig", "Job", "LaunchRejected"} <= set(fleetactor.__all__)


async def test_provisioner_without_methods_rejected():
    class Incomplete:
        async def launch(self, job, *, client_token):
            return "t"

    with pytest.raises(TypeError, match=r"needs an async method list_running\(\)"):
        async with open_fleet(Incomplete(), config()):
            pass


async def test_submit_rejects_non_job(autojump_clock):
    async with open_fleet(FakeProvisioner(), config()) as fleet:
        with pytest.raises(TypeError, match=r"got str; wrap the key as Job"):
            await fleet.submit("file-1")


async def test_no_grant_before_first_listing(autojump_clock):
    failing = True
    provisioner = FakeProvisioner(list_error=lambda: RuntimeError("list down") if failing else None)
    async with open_fleet(provisioner, config()) as fleet:
        ticket = await fleet.submit(Job("a"))
        await trio.sleep(30)
        decision, launches = ticket.decision, provisioner.calls.launch
        failing = False
        await ticket.wait_started()

    assert decision == "queued"
    assert launches == 0
    assert provisioner.calls.launch == 1


async def test_foreign_tasks_take_slots(autojump_clock):
    provisioner = FakeProvisioner(run_time=None)
    provisioner.add_foreign_task()
    async with open_fleet(provisioner, config(max_workers=3)) as fleet:
        await first_reconcile()
        tickets = [await fleet.submit(Job(f"job-{index}")) for index in range(3)]
        statistics = fleet.statistics()

    assert [ticket.decision for ticket in tickets] == ["granted", "granted", "queued"]
    assert statistics.foreign == 1
    assert statistics.active == 3


async def test_foreign_stop_frees_slot(autojump_clock):
    provisioner = FakeProvisioner(run_time=None)
    foreign_task = provisioner.add_foreign_task(run_time=30)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        ticket = await fleet.submit(Job("a"))
        await ticket.wait_started()
        statistics = fleet.statistics()

    assert ticket.decision == "queued"
    assert provisioner.tasks[foreign_task].stopped_at <= trio.current_time()
    assert statistics.foreign == 0


async def test_cancel_queued_ticket(autojump_clock):
    provisioner = FakeProvisioner(run_time=None)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        running = await fleet.submit(Job("running"))
        queued = await fleet.submit(Job("queued"))
        with capture_logs() as logs:
            withdrawn = await queued.cancel()
        running_withdrawn = await running.cancel()
        statistics = fleet.statistics()
        with pytest.raises(trio.ClosedResourceError, match="cancelled"):
            await queued.wait_started()

    assert withdrawn is True
    assert running_withdrawn is False
    cancelled = [entry for entry in logs if entry["event"] == "spawn.cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0]["request_id"] == queued.request_id
    assert cancelled[0]["reason"] == "cancelled by caller"
    assert statistics.queued == 0
    assert statistics.cancelled == 1
    assert provisioner.calls.launch == 1


async def test_cancelled_submit_changes_nothing(autojump_clock):
    provisioner = FakeProvisioner()
    async with open_fleet(provisioner, config()) as fleet:
        await first_reconcile()
        with trio.CancelScope() as scope:
            scope.cancel()
            await fleet.submit(Job("a"))
        statistics = fleet.statistics()

    assert scope.cancelled_caught
    assert statistics.submitted == 0
    assert statistics.active == 0
    assert provisioner.calls.launch == 0


async def test_caller_cancelled_after_submit_keeps_ticket(autojump_clock):
    provisioner = FakeProvisioner(run_time=10)
    async with open_fleet(provisioner, config()) as fleet:
        await first_reconcile()
        tickets = []
        with trio.move_on_after(1):
            tickets.append(await fleet.submit(Job("a")))
            await tickets[0].wait_finished()
        assert len(tickets) == 1
        await tickets[0].wait_finished()
        statistics = fleet.statistics()

    assert statistics.active == 0
    assert statistics.stopped == 1


async def test_same_key_shares_worker(autojump_clock):
    provisioner = FakeProvisioner(run_time=30)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        first = await fleet.submit(Job("same"))
        second = await fleet.submit(Job("same"))
        first_task = await first.wait_started()
        second_task = await second.wait_started()
        late = await fleet.submit(Job("same"))
        await late.wait_finished()
        after_stop = await fleet.submit(Job("same"))
        await after_stop.wait_started()

    assert first_task == second_task
    assert late.task_id == first_task
    assert after_stop.task_id != first_task
    assert provisioner.calls.launch == 2


async def test_queue_order_priority_then_fifo(autojump_clock):
    provisioner = FakeProvisioner(run_time=10)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        await fleet.submit(Job("busy"))
        waiting = [
            await fleet.submit(Job(key, priority=priority))
            for key, priority in [("low-1", 0), ("high-1", 5), ("low-2", 0), ("high-2", 5), ("mid", 2)]
        ]
        for ticket in waiting:
            await ticket.wait_finished()

    launched = [task.job.key for task in sorted(provisioner.tasks.values(), key=lambda task: task.created_at)]
    assert launched == ["busy", "high-1", "high-2", "mid", "low-1", "low-2"]


async def test_lost_response_retried_with_same_token(autojump_clock):
    lost = []

    def lose_first(job, client_token):
        if client_token not in lost:
            lost.append(client_token)
            return TimeoutError("response lost")
        return None

    provisioner = FakeProvisioner(run_time=10, lost_response=lose_first)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        ticket = await fleet.submit(Job("a"))
        await ticket.wait_finished()

    assert len(provisioner.tasks) == 1
    assert provisioner.calls.launch_by_token == {lost[0]: 2}
    assert provisioner.tasks_for_token(lost[0]) == 1


async def test_retryable_rejection_requeues_then_fails(autojump_clock):
    def reject(job, client_token):
        return LaunchRejected("Capacity is unavailable at this time", retryable=True)

    provisioner = FakeProvisioner(launch_error=reject)
    async with open_fleet(provisioner, config(launch_attempts=3)) as fleet:
        await first_reconcile()
        ticket = await fleet.submit(Job("a"))
        with pytest.raises(LaunchFailedError, match="Capacity is unavailable") as failure:
            await ticket.wait_started()
        statistics = fleet.statistics()

    assert failure.value.retryable is True
    assert provisioner.calls.launch == 3
    assert statistics.failed == 1
    assert statistics.active == 0


async def test_rejection_fails_only_that_job(autojump_clock):
    def reject_bad(job, client_token):
        if job.key == "bad":
            return LaunchRejected("invalid task definition", retryable=False)
        return None

    provisioner = FakeProvisioner(run_time=10, launch_error=reject_bad)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        bad = await fleet.submit(Job("bad"))
        good = await fleet.submit(Job("good"))
        with pytest.raises(LaunchFailedError, match="invalid task definition"):
            await bad.wait_started()
        await good.wait_finished()

    assert bad.decision == "granted"
    assert good.decision == "queued"
    assert provisioner.calls.launch == 2


async def test_close_fails_queued_tickets(autojump_clock):
    provisioner = FakeProvisioner(run_time=None)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        running = await fleet.submit(Job("running"))
        await running.wait_started()
        queued = await fleet.submit(Job("queued"))

    with pytest.raises(FleetClosedError, match="closed while this request was queued"):
        await queued.wait_started()
    with pytest.raises(FleetClosedError, match="before this worker stopped"):
        await running.wait_finished()
    with pytest.raises(FleetClosedError):
        await fleet.submit(Job("late"))


async def test_close_waits_for_launch_in_flight(autojump_clock):
    provisioner = FakeProvisioner(run_time=None, launch_latency=3)
    async with open_fleet(provisioner, config()) as fleet:
        await first_reconcile()
        ticket = await fleet.submit(Job("a"))

    assert ticket.task_id is not None
    assert provisioner.calls.launch == 1


async def test_list_failure_keeps_last_state(autojump_clock):
    list_down = False
    provisioner = FakeProvisioner(run_time=None, list_error=lambda: RuntimeError("503") if list_down else None)
    async with open_fleet(provisioner, config(max_workers=2)) as fleet:
        await first_reconcile()
        running = [await fleet.submit(Job(f"run-{index}")) for index in range(2)]
        task_ids = [await ticket.wait_started() for ticket in running]
        await trio.sleep(10)
        list_down = True
        for task_id in task_ids:
            provisioner.stop(task_id)
        waiting = await fleet.submit(Job("waiting"))
        await trio.sleep(60)
        during_outage = (fleet.statistics().active, provisioner.calls.launch)
        list_down = False
        await waiting.wait_started()

    assert waiting.decision == "queued"
    assert during_outage == (2, 2)
    assert provisioner.calls.launch == 3


async def test_outage_of_launch_exceptions_recovers(autojump_clock):
    outage_ends = 600.0

    def fail_during_outage(job, client_token):
        if trio.current_time() < outage_ends:
            return ConnectionError("backend unreachable")
        return None

    provisioner = FakeProvisioner(run_time=30, launch_error=fail_during_outage)
    async with open_fleet(provisioner, config(max_workers=4)) as fleet:
        outage_ends += trio.current_time()
        await first_reconcile()
        tickets = [await fleet.submit(Job(f"job-{index}")) for index in range(10)]
        await trio.sleep(300)
        during = fleet.statistics()
        for ticket in tickets:
            await ticket.wait_finished()
        after = fleet.statistics()

    assert during.launching == 4
    assert during.queued == 6
    assert provisioner.true_peak() <= 4
    assert len(provisioner.tasks) == 10
    assert after.active == 0
    assert after.launching == 0
    assert after.served == 10


async def test_blind_list_describe_after_timeout(autojump_clock):
    provisioner = FakeProvisioner(list_lag=math.inf, run_time=40)
    async with open_fleet(provisioner, config(max_workers=1, visibility_timeout=15)) as fleet:
        await first_reconcile()
        first = await fleet.submit(Job("a"))
        second = await fleet.submit(Job("b"))
        await first.wait_finished()
        freed_at = trio.current_time()
        await second.wait_started()

    # Work ends 40 s after launch; the next reconcile describes it.
    assert 40 <= freed_at <= 46
    assert provisioner.true_peak() == 1


async def test_audit_events_fields(autojump_clock):
    provisioner = FakeProvisioner(list_lag=math.inf, run_time=30)
    with capture_logs() as logs:
        async with open_fleet(provisioner, config(max_workers=1, fleet_id="audit-test")) as fleet:
            await first_reconcile()
            first = await fleet.submit(Job("a"))
            second = await fleet.submit(Job("b"))
            await first.wait_finished()
            await second.wait_started()

    events = [entry["event"] for entry in logs]
    assert events[0] == "fleet.started"
    assert events[-1] == "fleet.stopped"
    assert all(entry["fleet"] == "audit-test" for entry in logs)
    sequence = [entry["seq"] for entry in logs]
    assert sequence == sorted(set(sequence))
    assert all(entry["timestamp"].endswith("Z") for entry in logs)

    started = logs[0]
    assert started["max_workers"] == 1

    granted = next(entry for entry in logs if entry["event"] == "spawn.granted")
    assert granted["request_id"] == first.request_id
    assert granted["active"] == 1
    assert granted["visible"] == 0
    assert granted["pending"] == 1
    assert granted["foreign"] == 0
    assert granted["queued"] == 0
    assert granted["max_workers"] == 1
    assert len(granted["launch_id"]) <= 64

    queued = next(entry for entry in logs if entry["event"] == "spawn.queued")
    assert queued["request_id"] == second.request_id
    assert queued["active"] == 1
    assert queued["queued"] == 1
    assert queued["max_workers"] == 1

    succeeded = next(entry for entry in logs if entry["event"] == "launch.succeeded")
    assert succeeded["launch_id"] == granted["launch_id"]
    assert succeeded["task_id"] == first.task_id

    stopped = next(entry for entry in logs if entry["event"] == "worker.stopped")
    assert stopped["launch_id"] == granted["launch_id"]
    assert stopped["task_id"] == first.task_id
    assert stopped["status"] == "STOPPED"

    reconcile = next(entry for entry in logs if entry["event"] == "reconcile")
    assert {"visible", "pending", "foreign"} <= set(reconcile)


async def test_audit_launch_failed_fields(autojump_clock):
    provisioner = FakeProvisioner(launch_error=lambda job, token: LaunchRejected("bad image", retryable=False))
    with capture_logs() as logs:
        async with open_fleet(provisioner, config()) as fleet:
            await first_reconcile()
            ticket = await fleet.submit(Job("a"))
            with pytest.raises(LaunchFailedError):
                await ticket.wait_started()

    failed = next(entry for entry in logs if entry["event"] == "launch.failed")
    assert failed["reason"] == "bad image"
    assert failed["retryable"] is False
    assert failed["outcome"] == "failed"
    assert failed["active"] == 0


async def test_enum_statuses_release_slots(autojump_clock):
    class EnumStatuses(FakeProvisioner):
        async def describe(self, task_ids):
            statuses = await super().describe(task_ids)
            return {task_id: fleetactor.TaskStatus(status) for task_id, status in statuses.items()}

    provisioner = EnumStatuses(list_lag=math.inf, run_time=10)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        first = await fleet.submit(Job("a"))
        second = await fleet.submit(Job("b"))
        await first.wait_finished()
        await second.wait_started()

    assert provisioner.true_peak() == 1


async def test_stopping_task_described_between_listings(autojump_clock):
    provisioner = FakeProvisioner(run_time=30, stop_time=20)
    async with open_fleet(provisioner, config(max_workers=1, reconcile_interval=10, describe_interval=1)) as fleet:
        start = trio.current_time()
        await first_reconcile()
        first = await fleet.submit(Job("a"))
        second = await fleet.submit(Job("b"))
        await first.wait_finished()
        freed_after = trio.current_time() - start
        await second.wait_started()

    # Work ends at 30 s and the task is STOPPED at 50 s; listings run every 10 s.
    assert 50 <= freed_after <= 51.5
    assert provisioner.true_peak() == 1


async def test_unlisted_task_described_while_queue_waits(autojump_clock):
    provisioner = FakeProvisioner(list_lag=8, run_time=3)
    async with open_fleet(provisioner, config(max_workers=1, visibility_timeout=30)) as fleet:
        start = trio.current_time()
        await first_reconcile()
        first = await fleet.submit(Job("a"))
        second = await fleet.submit(Job("b"))
        await first.wait_finished()
        freed_after = trio.current_time() - start

    # The task ends before it is ever listed; the reconcile at 5 s describes
    # it because a request waits, long before the visibility timeout.
    assert 5 <= freed_after <= 6
    assert second.task_id is not None


async def test_throttle_after_lost_response_keeps_token(autojump_clock):
    class LoseThenThrottle(FakeProvisioner):
        """Creates the task but loses the response, then throttles the retry."""

        def __init__(self):
            super().__init__(run_time=10)
            self.tokens = []

        async def launch(self, job, *, client_token):
            self.tokens.append(client_token)
            if len(self.tokens) == 2:
                raise LaunchRejected("ThrottlingException: Rate exceeded", retryable=True)
            task_id = await super().launch(job, client_token=client_token)
            if len(self.tokens) == 1:
                raise TimeoutError("response lost")
            return task_id

    provisioner = LoseThenThrottle()
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        ticket = await fleet.submit(Job("a"))
        await ticket.wait_finished()

    assert len(provisioner.tokens) == 3
    assert len(set(provisioner.tokens)) == 1
    assert len(provisioner.tasks) == 1


async def test_blind_list_describes_between_listings(autojump_clock):
    provisioner = FakeProvisioner(list_lag=math.inf, run_time=40)
    settings = config(max_workers=1, reconcile_interval=10, visibility_timeout=15, describe_interval=1)
    async with open_fleet(provisioner, settings) as fleet:
        start = trio.current_time()
        await first_reconcile()
        first = await fleet.submit(Job("a"))
        second = await fleet.submit(Job("b"))
        await first.wait_finished()
        freed_after = trio.current_time() - start
        await second.wait_started()

    # Work ends 40 s after launch. Listings run every 10 s and never show the
    # task, but while a request waits it is described every second.
    assert 40 <= freed_after <= 41.5


async def test_hung_calls_time_out(autojump_clock):
    class Hanging(FakeProvisioner):
        """Hangs the first launch and every listing while ``hang_list`` is set."""

        hang_list = False
        launches = 0

        async def launch(self, job, *, client_token):
            self.launches += 1
            if self.launches == 1:
                await trio.sleep_forever()
            return await super().launch(job, client_token=client_token)

        async def list_running(self):
            if self.hang_list:
                await trio.sleep_forever()
            return await super().list_running()

    provisioner = Hanging(run_time=None)
    settings = config(max_workers=1, provisioner_timeout=10)
    with capture_logs() as logs:
        async with open_fleet(provisioner, settings) as fleet:
            await first_reconcile()
            ticket = await fleet.submit(Job("a"))
            await ticket.wait_started()
            provisioner.hang_list = True
            await trio.sleep(30)
            provisioner.hang_list = False

    retried = [entry for entry in logs if entry["event"] == "launch.retrying"]
    failed_listings = [entry for entry in logs if entry["event"] == "reconcile.failed"]
    assert retried[0]["error"] == "launch timed out after 10 s"
    assert len(provisioner.tasks) == 1
    assert failed_listings
    assert failed_listings[0]["error"] == "list_running timed out after 10 s"


async def test_lowercase_statuses_accepted(autojump_clock):
    class Lowercase(FakeProvisioner):
        async def describe(self, task_ids):
            statuses = await super().describe(task_ids)
            return {task_id: status.lower() for task_id, status in statuses.items()}

    provisioner = Lowercase(list_lag=math.inf, run_time=10)
    with capture_logs() as logs:
        async with open_fleet(provisioner, config(max_workers=1)) as fleet:
            await first_reconcile()
            first = await fleet.submit(Job("a"))
            second = await fleet.submit(Job("b"))
            await first.wait_finished()
            await second.wait_started()

    assert not [entry for entry in logs if entry["event"] == "describe.unknown_status"]


async def test_unknown_status_logged_once(autojump_clock):
    class Odd(FakeProvisioner):
        async def describe(self, task_ids):
            await super().describe(task_ids)
            return {task_id: "HIBERNATING" for task_id in task_ids}

    provisioner = Odd(list_lag=math.inf, run_time=None)
    with capture_logs() as logs:
        async with open_fleet(provisioner, config(max_workers=2, visibility_timeout=5)) as fleet:
            await first_reconcile()
            for key in ("a", "b"):
                await fleet.submit(Job(key))
            await trio.sleep(60)
            statistics = fleet.statistics()

    unknown = [entry for entry in logs if entry["event"] == "describe.unknown_status"]
    assert len(unknown) == 1
    assert unknown[0]["status"] == "HIBERNATING"
    assert statistics.active == 2


async def test_join_raises_queued_priority(autojump_clock):
    provisioner = FakeProvisioner(run_time=10)
    async with open_fleet(provisioner, config(max_workers=1)) as fleet:
        await first_reconcile()
        await fleet.submit(Job("busy"))
        low = await fleet.submit(Job("x", priority=0))
        other = await fleet.submit(Job("y", priority=1))
        joined = await fleet.submit(Job("x", priority=5))
        await other.wait_finished()

    launched = [task.job.key for task in sorted(provisioner.tasks.values(), key=lambda task: task.created_at)]
    assert launched == ["busy", "x", "y"]
    assert joined.request_id == low.request_id


async def test_listing_with_other_ids_warned(autojump_clock):
    # The listing names every task differently from its launch, so each
    # worker counts twice. The fleet cannot match them, but it logs one warning.
    class PrefixedListing(FakeProvisioner):
        async def list_running(self):
            return [f"arn:{task_id}" for task_id in await super().list_running()]

    provisioner = PrefixedListing(run_time=None)
    with capture_logs() as logs:
        async with open_fleet(provisioner, config(max_workers=2, visibility_timeout=20)) as fleet:
            await first_reconcile()
            for key in ("a", "b"):
                await fleet.submit(Job(key))
            await trio.sleep(60)

    warnings = [entry for entry in logs if entry["event"] == "launch.not_listed"]
    assert len(warnings) == 1
    assert warnings[0]["seconds_since_launch"] >= 20
    assert "same form of task id" in warnings[0]["hint"]
