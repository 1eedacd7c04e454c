"""The naive reference controllers: they serve every request and break the cap as designed."""

import math

import pytest
import trio

from fleetactor import Job, LaunchRejected
from fleetactor.policies import ListOnlyController, RecentLaunchesController
from fleetactor.testing import FakeProvisioner


async def serve_burst(controller, count, prefix="job"):
    task_ids = [None] * count

    async def serve_one(index):
        task_ids[index] = await controller.serve(Job(key=f"{prefix}-{index}"))

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(serve_one, index)
    return task_ids


async def test_list_only_overshoots_on_lag(autojump_clock):
    provisioner = FakeProvisioner(list_lag=8, run_time=60)
    controller = ListOnlyController(provisioner, 16)

    task_ids = await serve_burst(controller, 24)

    assert provisioner.true_peak() == 24
    assert None not in task_ids
    assert controller.stats.served == 24
    assert controller.stats.waits_s == [0] * 24


async def test_list_only_holds_cap_without_lag(autojump_clock):
    provisioner = FakeProvisioner(list_lag=0, run_time=60)
    controller = ListOnlyController(provisioner, 16, poll_interval=1)

    # Requests one at a time: with a current listing, the check works.
    for index in range(24):
        assert await controller.serve(Job(key=f"job-{index}")) is not None

    assert provisioner.true_peak() == 16
    assert controller.stats.served == 24
    assert max(controller.stats.waits_s) == pytest.approx(60, abs=1)


async def test_list_only_polls_at_cap(autojump_clock):
    provisioner = FakeProvisioner(list_lag=0, run_time=30)
    controller = ListOnlyController(provisioner, 1, poll_interval=2)

    await controller.serve(Job(key="first"))
    await controller.serve(Job(key="second"))

    # Polls at t=0, 2, ..., 30: sixteen listings for the second request.
    assert controller.stats.list_calls == 1 + 16
    assert controller.stats.waits_s[1] == 30


async def test_recent_launches_overshoots_short_window(autojump_clock):
    # The window ends at 5 s while new tasks stay unlisted for 8 s, so the
    # queued requests see an empty fleet and launch.
    provisioner = FakeProvisioner(list_lag=8, run_time=60)
    controller = RecentLaunchesController(provisioner, 16, window=5)

    task_ids = await serve_burst(controller, 24)

    assert provisioner.true_peak() == 24
    assert None not in task_ids
    assert max(controller.stats.waits_s) == 5


async def test_recent_launches_holds_long_window(autojump_clock):
    provisioner = FakeProvisioner(list_lag=8, run_time=60)
    controller = RecentLaunchesController(provisioner, 16, window=20)

    await serve_burst(controller, 24)

    assert provisioner.true_peak() == 16
    assert controller.stats.served == 24


async def test_recent_launches_double_counts(autojump_clock):
    # Eight tasks are listed from t=2 but still count as recent launches
    # until t=20, so a ninth request waits although only 8 of 16 slots run.
    provisioner = FakeProvisioner(list_lag=2, run_time=600)
    controller = RecentLaunchesController(provisioner, 16, window=20, poll_interval=1)
    await serve_burst(controller, 8)
    await trio.sleep(5)

    await controller.serve(Job(key="ninth"))

    assert provisioner.alive() == 9
    assert controller.stats.waits_s[-1] == 15


async def test_launch_errors_counted(autojump_clock):
    def launch_error(job, client_token):
        return LaunchRejected("capacity is unavailable", retryable=True) if job.key.endswith("-3") else None

    def lost_response(job, client_token):
        return TimeoutError("read timed out") if job.key.endswith("-5") else None

    for controller_class in (ListOnlyController, RecentLaunchesController):
        provisioner = FakeProvisioner(launch_error=launch_error, lost_response=lost_response)
        arguments = {"window": 5} if controller_class is RecentLaunchesController else {}
        controller = controller_class(provisioner, 4, **arguments)

        task_ids = await serve_burst(controller, 8)

        assert controller.stats.failed == 2, controller_class
        assert controller.stats.served == 6, controller_class
        assert task_ids.count(None) == 2, controller_class
        assert "launch rejected: capacity is unavailable" in controller.stats.failures
        assert "launch failed: TimeoutError: read timed out" in controller.stats.failures


async def test_list_errors_polled_again(autojump_clock):
    for controller_class in (ListOnlyController, RecentLaunchesController):
        # The first three listings fail, then every listing succeeds.
        failures = iter([RuntimeError("ListTasks failed with HTTP 503")] * 3)
        provisioner = FakeProvisioner(list_error=lambda failures=failures: next(failures, None))
        arguments = {"window": 5} if controller_class is RecentLaunchesController else {}
        controller = controller_class(provisioner, 4, poll_interval=1, **arguments)

        task_id = await controller.serve(Job(key="after-errors"))

        assert task_id is not None, controller_class
        assert controller.stats.list_errors == 3, controller_class
        assert controller.stats.list_calls == 4, controller_class
        assert controller.stats.waits_s == [3], controller_class


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_workers": 0}, r"max_workers must be an int >= 1, got 0"),
        ({"max_workers": True}, r"max_workers must be an int >= 1, got True"),
        ({"poll_interval": 0}, r"poll_interval must be a number of seconds > 0, got 0"),
        ({"poll_interval": math.nan}, r"poll_interval must be a number of seconds > 0, got nan"),
        ({"window": -1}, r"window must be a number of seconds >= 0, got -1"),
    ],
)
def test_invalid_arguments_rejected(arguments, message):
    settings = {"max_workers": 2, "window": 5, **arguments}
    with pytest.raises(ValueError, match=message):
        RecentLaunchesController(FakeProvisioner(), **settings)
