"""Unit tests of the capacity ledger's counting rule."""

import pytest

from fleetactor import _ledger
from fleetactor._ledger import CapacityLedger, LedgerError, ReservationState


def make_ledger(max_workers=2):
    counter = iter(range(1000))
    return CapacityLedger(max_workers, visibility_timeout=30, launch_attempts=2, new_id=lambda: f"id-{next(counter)}")


def launched_ledger(now=0.0):
    ledger = make_ledger()
    ledger.reconcile([], now)
    request, events = ledger.submit("job", 0, now)
    ledger.launch_succeeded(request.launch_id, "task-1", now)
    return ledger, request


def test_nothing_granted_before_listing():
    ledger = make_ledger()
    request, events = ledger.submit("job", 0, 0)
    assert [type(event) for event in events] == [_ledger.Queued]
    events = ledger.reconcile([], 1)
    assert [type(event) for event in events] == [_ledger.Reconciled, _ledger.Granted]


@pytest.mark.parametrize("status", ["PENDING", "RUNNING"])
def test_describe_keeps_live_task(status):
    ledger, request = launched_ledger()
    assert ledger.describe_candidates(29) == []
    assert ledger.describe_candidates(30) == ["task-1"]
    events = ledger.described({"task-1": status}, 31)
    assert all(isinstance(event, _ledger.NotListed) for event in events)
    assert ledger.active == 1


@pytest.mark.parametrize("status", ["STOPPED", "MISSING"])
def test_describe_frees_gone_task(status):
    ledger, request = launched_ledger()
    events = ledger.described({"task-1": status}, 31)
    assert [type(event) for event in events] == [_ledger.WorkerStopped]
    assert events[0].status == status
    assert ledger.active == 0
    assert request.state is _ledger.RequestState.ENDED


def test_missing_soon_after_launch_kept():
    ledger, request = launched_ledger()
    assert ledger.described({"task-1": "MISSING"}, 5) == []
    assert ledger.active == 1


def test_listed_task_counted_once():
    ledger, request = launched_ledger()
    ledger.reconcile(["task-1"], 10)
    assert ledger.active == 1
    assert ledger.visible == 1
    assert ledger.foreign == {}


def test_vanished_task_described_not_released():
    ledger, request = launched_ledger()
    ledger.reconcile(["task-1"], 10)
    ledger.reconcile([], 15)
    assert ledger.active == 1
    assert ledger.describe_candidates(15) == ["task-1"]


def test_listing_before_launch_returns():
    ledger = make_ledger()
    ledger.reconcile([], 0)
    request, _ = ledger.submit("job", 0, 0)
    ledger.reconcile(["task-1"], 1)
    assert ledger.active == 2
    ledger.launch_succeeded(request.launch_id, "task-1", 2)
    assert ledger.active == 1
    assert ledger.reservations[request.launch_id].state is ReservationState.VISIBLE


def test_failed_launch_releases_and_requeues():
    ledger = make_ledger(max_workers=1)
    ledger.reconcile([], 0)
    request, _ = ledger.submit("job", 0, 0)
    events = ledger.launch_failed(request.launch_id, "Capacity is unavailable", True, 1)
    assert events[0].outcome == "requeued"
    assert ledger.active == 0
    assert ledger.queued == 1
    events = ledger.requeue(request.request_id, 2)
    assert [type(event) for event in events] == [_ledger.Granted]
    events = ledger.launch_failed(request.launch_id, "Capacity is unavailable", True, 3)
    assert events[0].outcome == "failed"
    assert ledger.queued == 0


def test_launch_answered_twice_raises():
    ledger, request = launched_ledger()
    with pytest.raises(LedgerError, match="already returned task task-1"):
        ledger.launch_succeeded(request.launch_id, "task-2", 1)
    with pytest.raises(LedgerError, match="no reservation has launch id 'nope'"):
        ledger.launch_failed("nope", "x", False, 1)


def test_close_cancels_waiting_requests():
    ledger = make_ledger(max_workers=1)
    ledger.reconcile([], 0)
    ledger.submit("a", 0, 0)
    waiting, _ = ledger.submit("b", 0, 0)
    events = ledger.close()
    assert [type(event) for event in events] == [_ledger.Cancelled]
    assert events[0].request is waiting
    assert events[0].reason == "fleet closed"
    with pytest.raises(LedgerError, match="closed"):
        ledger.submit("c", 0, 1)


def test_foreign_merge_grants_waiting():
    ledger = make_ledger(max_workers=2)
    ledger.reconcile([], 0)
    first, _ = ledger.submit("a", 0, 0)
    ledger.reconcile(["task-1"], 1)
    waiting, _ = ledger.submit("b", 0, 1)
    assert waiting.state is _ledger.RequestState.QUEUED

    events = ledger.launch_succeeded(first.launch_id, "task-1", 2)

    assert [type(event) for event in events] == [_ledger.LaunchSucceeded, _ledger.Granted]
    assert events[1].request is waiting
    assert ledger.active == 2


def test_peak_skips_task_listed_early():
    ledger = make_ledger(max_workers=2)
    ledger.reconcile([], 0)
    first, _ = ledger.submit("a", 0, 0)
    ledger.submit("b", 0, 0)

    ledger.reconcile(["task-1"], 1)
    # Counted twice while the launch is out: the cap errs high.
    assert ledger.active == 3
    assert ledger.counts().unconfirmed == 1
    assert ledger.peak_active == 2

    ledger.launch_succeeded(first.launch_id, "task-1", 2)
    assert ledger.active == 2
    assert ledger.counts().unconfirmed == 0
    assert ledger.peak_active == 2


def test_peak_counts_confirmed_foreign():
    ledger = make_ledger(max_workers=2)
    ledger.reconcile([], 0)
    first, _ = ledger.submit("a", 0, 0)
    second, _ = ledger.submit("b", 0, 0)
    ledger.reconcile(["outsider"], 1)
    ledger.launch_succeeded(first.launch_id, "task-1", 2)
    assert ledger.peak_active == 2

    ledger.launch_succeeded(second.launch_id, "task-2", 3)

    assert ledger.counts().unconfirmed == 0
    assert ledger.peak_active == 3


def test_peak_counts_late_foreign_at_once():
    ledger = make_ledger(max_workers=1)
    ledger.reconcile([], 0)
    first, _ = ledger.submit("a", 0, 0)
    ledger.launch_succeeded(first.launch_id, "task-1", 1)

    ledger.reconcile(["task-1", "outsider"], 2)

    assert ledger.counts().unconfirmed == 0
    assert ledger.peak_active == 2


def test_later_launch_explains_no_foreign():
    ledger = make_ledger(max_workers=3)
    ledger.reconcile([], 0)
    first, _ = ledger.submit("a", 0, 0)
    ledger.reconcile(["outsider"], 1)
    later, _ = ledger.submit("b", 0, 1)
    assert ledger.peak_active == 2

    ledger.launch_failed(first.launch_id, "capacity unavailable", retryable=False, now=2)

    # The launch still out was granted after the listing, so the outsider is
    # foreign for certain.
    assert later.state is _ledger.RequestState.LAUNCHING
    assert ledger.counts().unconfirmed == 0
    assert ledger.peak_active == 2


def test_later_launches_explain_no_earlier_tasks():
    ledger = make_ledger(max_workers=10)
    ledger.reconcile([], 0)
    ledger.submit("a", 0, 0)
    ledger.reconcile([f"outsider-{number}" for number in range(5)], 1)
    for key in "bcde":
        ledger.submit(key, 0, 2)

    # Only launch "a" was out when the outsiders were listed, so at most one
    # of them can be this fleet's.
    assert ledger.active == 10
    assert ledger.counts().unconfirmed == 1
    assert ledger.peak_active == 9


def test_stale_listing_ignores_stopped_task():
    ledger = make_ledger(max_workers=1)
    ledger.reconcile([], 0)
    first, _ = ledger.submit("a", 0, 0)
    ledger.launch_succeeded(first.launch_id, "task-1", 1)
    ledger.reconcile(["task-1"], 2)
    ledger.reconcile([], 3)
    ledger.described({"task-1": "STOPPED"}, 4)
    second, _ = ledger.submit("b", 0, 5)

    # A lagging listing still shows the stopped task.
    events = ledger.reconcile(["task-1"], 6)

    assert ledger.foreign == {}
    assert ledger.active == 1
    assert ledger.peak_active == 1
    assert events[0].listed == 1
    assert second.state is _ledger.RequestState.LAUNCHING


def test_stopped_task_forgotten_after_an_hour():
    ledger = make_ledger(max_workers=2)
    ledger.reconcile(["outsider"], 0)
    ledger.reconcile([], 1)
    ledger.described({"outsider": "STOPPED"}, 2)
    ledger.reconcile(["outsider"], 3)
    assert ledger.foreign == {}

    ledger.reconcile(["outsider"], 2 + _ledger.STOPPED_MEMORY_S)

    assert list(ledger.foreign) == ["outsider"]


def test_running_task_never_listed_reported_once():
    ledger = make_ledger(max_workers=1)
    ledger.reconcile([], 0)
    request, _ = ledger.submit("a", 0, 0)
    ledger.launch_succeeded(request.launch_id, "task-1", 1)

    early = ledger.described({"task-1": "RUNNING"}, 10)
    # No listing has succeeded since the timeout, for example while
    # ListTasks fails, so a missing task proves nothing yet.
    unlisted = ledger.described({"task-1": "RUNNING"}, 31)
    ledger.reconcile([], 31)
    late = ledger.described({"task-1": "RUNNING"}, 31)
    again = ledger.described({"task-1": "RUNNING"}, 40)

    assert early == []
    assert unlisted == []
    assert [type(event) for event in late] == [_ledger.NotListed]
    assert late[0].task_id == "task-1"
    assert late[0].age == 30
    assert again == []
