"""Property-based test of the capacity ledger against a model of the cloud.

The model keeps the truth the ledger cannot see: which tasks exist and are not
STOPPED yet. Hypothesis drives random interleavings of submissions, launch
outcomes (including responses lost after a task was created), listings that
lag, describes, stops and cancellations.
"""

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fleetactor import _ledger
from fleetactor._ledger import CapacityLedger, ReservationState

CAP = 4
VISIBILITY_TIMEOUT = 10.0


@dataclass
class CloudTask:
    task_id: str
    foreign: bool
    listed: bool = False
    # The work ended: desiredStatus is STOPPED and the task is not listed,
    # but it occupies capacity until it is STOPPED.
    stopping: bool = False
    stopped: bool = False


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        counter = iter(range(1_000_000))
        self.ledger = CapacityLedger(
            CAP,
            visibility_timeout=VISIBILITY_TIMEOUT,
            launch_attempts=3,
            new_id=lambda: f"id{next(counter)}",
        )
        self.now = 0.0
        self.cloud: dict[str, CloudTask] = {}
        # Launch id -> task id created by the cloud whose response was lost.
        self.created_for_launch: dict[str, str] = {}
        self.ends: dict[str, int] = {}
        self.next_task = 0

    def _new_task(self, foreign):
        self.next_task += 1
        task = CloudTask(f"t{self.next_task}", foreign)
        self.cloud[task.task_id] = task
        return task

    def _record(self, events):
        for event in events:
            ended = None
            if isinstance(event, _ledger.LaunchFailed) and event.outcome == "failed":
                ended = event.request
            elif isinstance(event, (_ledger.Cancelled,)):
                ended = event.request
            elif isinstance(event, _ledger.WorkerStopped) and event.request is not None:
                ended = event.request
            if ended is not None:
                self.ends[ended.request_id] = self.ends.get(ended.request_id, 0) + 1

    def _granted_launches(self):
        return sorted(
            launch_id
            for launch_id, reservation in self.ledger.reservations.items()
            if reservation.state is ReservationState.GRANTED
        )

    @initialize(foreign=st.integers(min_value=0, max_value=CAP))
    def start(self, foreign):
        for _ in range(foreign):
            self._new_task(foreign=True).listed = True

    @rule(key=st.sampled_from("abcdefgh"), priority=st.integers(0, 2))
    def submit(self, key, priority):
        if self.ledger.closed:
            return
        _, events = self.ledger.submit(key, priority, self.now)
        self._record(events)

    @rule(data=st.data())
    def launch_returns(self, data):
        launches = self._granted_launches()
        if not launches:
            return
        launch_id = data.draw(st.sampled_from(launches))
        task_id = self.created_for_launch.pop(launch_id, None)
        if task_id is None:
            task_id = self._new_task(foreign=False).task_id
        self._record(self.ledger.launch_succeeded(launch_id, task_id, self.now))

    @rule(data=st.data())
    def launch_response_lost(self, data):
        launches = [launch for launch in self._granted_launches() if launch not in self.created_for_launch]
        if not launches:
            return
        launch_id = data.draw(st.sampled_from(launches))
        self.created_for_launch[launch_id] = self._new_task(foreign=False).task_id

    @rule(data=st.data(), retryable=st.booleans())
    def launch_rejected(self, data, retryable):
        launches = [launch for launch in self._granted_launches() if launch not in self.created_for_launch]
        if not launches:
            return
        launch_id = data.draw(st.sampled_from(launches))
        self._record(self.ledger.launch_failed(launch_id, "capacity unavailable", retryable, self.now))

    @rule(data=st.data())
    def requeue(self, data):
        deferred = sorted(
            request.request_id
            for request in self.ledger.requests.values()
            if request.state is _ledger.RequestState.DEFERRED
        )
        if deferred:
            self._record(self.ledger.requeue(data.draw(st.sampled_from(deferred)), self.now))

    @rule(data=st.data())
    def task_becomes_listed(self, data):
        hidden = sorted(task.task_id for task in self.cloud.values() if not task.listed and not task.stopping)
        if hidden:
            self.cloud[data.draw(st.sampled_from(hidden))].listed = True

    @rule(data=st.data())
    def work_ends(self, data):
        # A foreign task that stops before any listing showed it is invisible
        # to every listing of running tasks, so the model does not do that.
        alive = sorted(
            task.task_id
            for task in self.cloud.values()
            if not task.stopping and (not task.foreign or task.task_id in self.ledger.foreign)
        )
        if alive:
            task = self.cloud[data.draw(st.sampled_from(alive))]
            task.stopping = True
            task.listed = False

    @rule(data=st.data())
    def task_stops(self, data):
        stopping = sorted(task.task_id for task in self.cloud.values() if task.stopping and not task.stopped)
        if stopping:
            self.cloud[data.draw(st.sampled_from(stopping))].stopped = True

    @rule(data=st.data())
    def reconcile(self, data):
        listed = [task.task_id for task in self.cloud.values() if task.listed]
        known = [task_id for task_id in listed if task_id in self.ledger.foreign or task_id in self._own_task_ids()]
        # A listing may also miss tasks it showed before; tasks it never
        # showed are hidden only by the visibility lag (task_becomes_listed).
        dropped = set(data.draw(st.lists(st.sampled_from(known), unique=True))) if known else set()
        self._record(self.ledger.reconcile([task_id for task_id in listed if task_id not in dropped], self.now))

    def _own_task_ids(self):
        return {reservation.task_id for reservation in self.ledger.reservations.values() if reservation.task_id}

    @rule()
    def describe(self):
        statuses = {}
        for task_id in self.ledger.describe_candidates(self.now):
            task = self.cloud.get(task_id)
            if task is None:
                statuses[task_id] = "MISSING"
            else:
                statuses[task_id] = "STOPPED" if task.stopped else "RUNNING"
        self._record(self.ledger.described(statuses, self.now))

    @rule(seconds=st.sampled_from([1.0, 5.0, 11.0]))
    def time_passes(self, seconds):
        self.now += seconds

    @rule(data=st.data())
    def cancel(self, data):
        requests = sorted(self.ledger.requests)
        if requests:
            self._record(self.ledger.cancel(data.draw(st.sampled_from(requests))))

    @precondition(lambda self: not self.ledger.closed)
    @rule()
    def close(self):
        self._record(self.ledger.close())

    @invariant()
    def cap_holds(self):
        not_stopped = sum(1 for task in self.cloud.values() if not task.stopped)
        # A launch that has not returned may have started a task or may still start one.
        unreturned = sum(1 for launch in self._granted_launches() if launch not in self.created_for_launch)
        assert not_stopped + unreturned <= CAP

    @invariant()
    def counters_match_reservations(self):
        states = [reservation.state for reservation in self.ledger.reservations.values()]
        assert self.ledger.visible == states.count(ReservationState.VISIBLE)
        assert self.ledger.pending == len(states) - states.count(ReservationState.VISIBLE)
        assert self.ledger.pending_launches == states.count(ReservationState.GRANTED)
        waiting = [
            request
            for request in self.ledger.requests.values()
            if request.state in (_ledger.RequestState.QUEUED, _ledger.RequestState.DEFERRED)
        ]
        assert self.ledger.queued == len(waiting)

    @invariant()
    def requests_end_once(self):
        assert all(count == 1 for count in self.ends.values())

    @invariant()
    def no_idle_slot_while_queued(self):
        queued = [r for r in self.ledger.requests.values() if r.state is _ledger.RequestState.QUEUED]
        if self.ledger.synced and not self.ledger.closed and queued:
            assert self.ledger.active >= CAP

    @invariant()
    def peak_counts_each_worker_once(self):
        # Foreign tasks exist only from the start and number at most CAP, so
        # the fleet never has more than CAP workers, though a task listed
        # before its launch returned is counted twice until then.
        assert self.ledger.peak_active <= CAP

    @invariant()
    def peak_covers_every_task(self):
        # Leaving unconfirmed tasks out of the peak must never hide a task
        # that really exists.
        counted = self.ledger.active - self.ledger.counts().unconfirmed
        assert self.ledger.peak_active >= counted
        if self.ledger.synced:
            not_stopped = sum(1 for task in self.cloud.values() if not task.stopped)
            assert not_stopped <= counted

LedgerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestLedgerModel = LedgerMachine.TestCase

