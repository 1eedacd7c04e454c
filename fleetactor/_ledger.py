"""The capacity ledger: the counting rule as a pure, synchronous state machine.

The ledger performs no I/O and never reads a clock: every method that depends
on time takes ``now`` in seconds. Each method returns the events it caused, in
order, and the capacity actor turns them into audit records, ticket updates
and launches. The rule it enforces::

    active = reservations in GRANTED, LAUNCHED or VISIBLE state
           + listed tasks that match no reservation (foreign tasks)
    a request is granted only while active < max_workers

A reservation is released only on evidence: a definite launch failure, or
``describe`` reporting the task STOPPED (or MISSING once the visibility
timeout has passed since its launch). Nothing is released because time passed.
"""

from __future__ import annotations

import enum
import heapq
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Union

from fleetactor._types import TaskStatus


# Seconds a task that ``describe`` reported STOPPED is remembered, so that a
# stale listing that still shows it does not count it again as foreign.
# STOPPED is final in ECS. The hour is a wide margin, not a measured bound
# on how long a listing can lag.
STOPPED_MEMORY_S = 3600.0


class RequestState(enum.Enum):
    # Waiting in the priority queue for a free slot.
    QUEUED = "queued"
    # Rejected with a retryable reason; waits out a backoff delay, then
    # returns to the queue. Counted as queued.
    DEFERRED = "deferred"
    # Has a reservation whose launch has not returned yet.
    LAUNCHING = "launching"
    # Its worker exists: the launch returned a task id.
    RUNNING = "running"
    # Served and stopped, failed, or cancelled. Never changes again.
    ENDED = "ended"


class ReservationState(enum.Enum):
    # Slot taken; the provisioner's launch has not returned a task id yet.
    GRANTED = "granted"
    # Task id known, not yet seen in a listing.
    LAUNCHED = "launched"
    # Seen in a listing at least once.
    VISIBLE = "visible"


class EndReason(enum.Enum):
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class Request:
    request_id: str
    key: str
    priority: int
    sequence: int
    submitted_at: float
    state: RequestState = RequestState.QUEUED
    attempts: int = 0
    launch_id: str | None = None
    task_id: str | None = None
    end: EndReason | None = None
    last_reason: str | None = None


@dataclass(slots=True)
class Reservation:
    launch_id: str
    request_id: str
    granted_at: float
    state: ReservationState = ReservationState.GRANTED
    task_id: str | None = None
    launched_at: float | None = None
    # Position among all grants and restored launches, counted from 1.
    grant_number: int = 0
    # The task dropped out of the listing after being seen in it, so it may be
    # stopping; ``describe`` decides.
    vanished: bool = False
    # A NotListed event was returned for this reservation.
    reported_not_listed: bool = False


@dataclass(frozen=True, slots=True)
class Counts:
    """Occupancy right after an event, as the audit log records it."""

    active: int
    visible: int
    pending: int
    foreign: int
    queued: int
    max_workers: int
    # Foreign tasks that may be the task of a launch that has not returned
    # yet. They count in ``active``, but ``peak_active`` leaves them out.
    unconfirmed: int = 0


@dataclass(frozen=True, slots=True)
class Queued:
    request: Request
    counts: Counts


@dataclass(frozen=True, slots=True)
class Joined:
    request: Request
    key: str


@dataclass(frozen=True, slots=True)
class Granted:
    request: Request
    launch_id: str
    counts: Counts


@dataclass(frozen=True, slots=True)
class LaunchSucceeded:
    request: Request
    launch_id: str
    task_id: str
    counts: Counts


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    request: Request
    launch_id: str
    reason: str
    retryable: bool
    # "requeued" when the request waits for another attempt, else "failed".
    outcome: str
    counts: Counts


@dataclass(frozen=True, slots=True)
class WorkerStopped:
    # None for a foreign task.
    request: Request | None
    launch_id: str | None
    task_id: str
    status: str
    counts: Counts


@dataclass(frozen=True, slots=True)
class Cancelled:
    request: Request
    reason: str
    counts: Counts


@dataclass(frozen=True, slots=True)
class TaskShared:
    """Several launches returned the same task id: a backend or adapter bug."""

    task_id: str
    launch_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotListed:
    """``describe`` reports a launched task RUNNING that no listing has shown after the visibility timeout."""

    task_id: str
    launch_id: str
    # Seconds since the launch returned the task id.
    age: float


@dataclass(frozen=True, slots=True)
class Reconciled:
    listed: int
    counts: Counts


Event = Union[
    Queued, Joined, Granted, LaunchSucceeded, LaunchFailed, WorkerStopped, Cancelled, Reconciled, TaskShared, NotListed
]


class LedgerError(Exception):
    """An event does not fit the ledger's state; the caller has a bug."""


def _new_id() -> str:
    return uuid.uuid4().hex


class CapacityLedger:
    """Fleet state under the counting rule.

    Args:
        max_workers: The cap.
        visibility_timeout: Seconds after a launch before a task that is still
            not listed is checked with ``describe``, and before MISSING counts
            as evidence that it is gone.
        launch_attempts: Retryable rejections a request may receive before it
            fails.
        new_id: Makes request ids and launch ids (a launch id is also the
            client token, so it must be unique and at most 64 characters).
    """

    def __init__(
        self,
        max_workers: int,
        *,
        visibility_timeout: float,
        launch_attempts: int,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.max_workers = max_workers
        self.visibility_timeout = visibility_timeout
        self.launch_attempts = launch_attempts
        self._new_id = new_id

        self.requests: dict[str, Request] = {}
        self.reservations: dict[str, Reservation] = {}
        # Requests that are neither ENDED nor superseded, by job key.
        self._open_by_key: dict[str, str] = {}
        # Task id -> launch ids that returned it. Normally one; a backend
        # that returns one task for two client tokens gives two, and both
        # requests end when that task stops.
        self._launches_by_task: dict[str, list[str]] = {}
        # Foreign task id -> True when it dropped out of the latest listing.
        self.foreign: dict[str, bool] = {}
        # A listing can show a task before the launch that started it returns.
        # Until then the task counts twice, as a pending reservation and as
        # foreign. The cap should err high, so ``active`` keeps both, but
        # ``peak_active`` leaves such tasks out. The map is foreign task id ->
        # the grant number current when a listing first showed the task. The
        # task may be ours while a launch with a grant number at or below
        # that one has not returned.
        self._unconfirmed: dict[str, int] = {}
        self._grant_number = 0
        # (grant number, launch id) of launches that may not have returned.
        # Entries of returned launches are dropped lazily.
        self._unreturned: list[tuple[int, str]] = []
        # Task id -> when ``describe`` reported it STOPPED, oldest first.
        self._stopped: OrderedDict[str, float] = OrderedDict()
        self._queue: list[tuple[int, int, str]] = []
        self._sequence = 0

        self.synced = False
        # When the latest successful listing was matched; None before the first.
        self._listed_at: float | None = None
        self.closed = False
        self.queued = 0
        self.pending = 0
        # Reservations in GRANTED state: launches that have not returned yet.
        self.pending_launches = 0
        self.visible = 0
        self.peak_active = 0
        self.totals = {
            "submitted": 0,
            "recovered": 0,
            "granted": 0,
            "served": 0,
            "failed": 0,
            "cancelled": 0,
            "stopped": 0,
        }

    # Occupancy

    @property
    def active(self) -> int:
        return self.pending + self.visible + len(self.foreign)

    def counts(self) -> Counts:
        return Counts(
            active=self.active,
            visible=self.visible,
            pending=self.pending,
            foreign=len(self.foreign),
            queued=self.queued,
            max_workers=self.max_workers,
            unconfirmed=self._count_unconfirmed(),
        )

    def open_request(self, key: str) -> Request | None:
        """Return the request for ``key`` that is queued or has a worker."""
        request_id = self._open_by_key.get(key)
        return None if request_id is None else self.requests[request_id]

    # Submissions

    def submit(self, key: str, priority: int, now: float) -> tuple[Request, list[Event]]:
        """Queue a request for ``key``, or join the open request for it, then grant what fits."""
        if self.closed:
            raise LedgerError("the ledger is closed")

        existing = self.open_request(key)
        if existing is not None:
            if existing.state is RequestState.QUEUED and priority > existing.priority:
                existing.priority = priority
                heapq.heappush(self._queue, (-priority, existing.sequence, existing.request_id))
            return existing, [Joined(existing, key)]

        self._sequence += 1
        request = Request(
            request_id=self._new_id(),
            key=key,
            priority=priority,
            sequence=self._sequence,
            submitted_at=now,
        )
        self.requests[request.request_id] = request
        self._open_by_key[key] = request.request_id
        self.totals["submitted"] += 1
        self._enqueue(request)

        events = self._drain(now)
        if request.state is RequestState.QUEUED:
            events.insert(0, Queued(request, self.counts()))
        return request, events

    def restore(
        self,
        *,
        request_id: str,
        key: str,
        priority: int,
        sequence: int,
        submitted_at: float,
        attempts: int,
        launch_id: str | None,
        task_id: str | None,
        now: float,
    ) -> Request:
        """Rebuild a request that an earlier process left open.

        A request without a launch id waits in the queue again. One with a
        launch id but no task id gets a GRANTED reservation, and its launch
        must be repeated with the same client token. One with a task id gets
        a LAUNCHED reservation, treated as launched ``now`` so that MISSING
        frees it only after the visibility timeout.
        """
        if self.synced:
            raise LedgerError("requests can only be restored before the first reconcile")
        request = Request(request_id, key, priority, sequence, submitted_at, attempts=attempts)
        self.requests[request_id] = request
        self._open_by_key[key] = request_id
        self._sequence = max(self._sequence, sequence)
        self.totals["submitted"] += 1
        self.totals["recovered"] += 1

        if launch_id is None:
            self._enqueue(request)
            return request

        reservation = Reservation(launch_id, request_id, granted_at=now)
        self.reservations[launch_id] = reservation
        self.pending += 1
        request.launch_id = launch_id
        if task_id is None:
            request.state = RequestState.LAUNCHING
            self.pending_launches += 1
            self._number_launch(reservation)
        else:
            request.state = RequestState.RUNNING
            request.task_id = task_id
            reservation.state = ReservationState.LAUNCHED
            reservation.task_id = task_id
            reservation.launched_at = now
            self._launches_by_task.setdefault(task_id, []).append(launch_id)
        self._note_peak()
        return request

    def cancel(self, request_id: str, reason: str = "cancelled by caller") -> list[Event]:
        """Withdraw a queued or deferred request. A request holding a slot is left alone."""
        request = self.requests.get(request_id)
        if request is None or request.state not in (RequestState.QUEUED, RequestState.DEFERRED):
            return []
        self.queued -= 1
        self._end(request, EndReason.CANCELLED)
        request.last_reason = reason
        self.totals["cancelled"] += 1
        return [Cancelled(request, reason, self.counts())]

    def close(self) -> list[Event]:
        """Stop granting and cancel every request still waiting for a slot."""
        self.closed = True
        events: list[Event] = []
        for request in list(self.requests.values()):
            events.extend(self.cancel(request.request_id, reason="fleet closed"))
        return events

    def requeue(self, request_id: str, now: float) -> list[Event]:
        """Return a deferred request to the queue once its backoff delay has passed."""
        request = self.requests.get(request_id)
        if request is None or request.state is not RequestState.DEFERRED:
            return []
        request.state = RequestState.QUEUED
        self.queued -= 1
        self._enqueue(request)
        return self._drain(now)

    # Launch outcomes

    def launch_succeeded(self, launch_id: str, task_id: str, now: float) -> list[Event]:
        """Record the task id that a launch returned."""
        reservation = self._reservation(launch_id)
        if reservation.state is not ReservationState.GRANTED:
            msg = f"launch {launch_id} already returned task {reservation.task_id}"
            raise LedgerError(msg)
        request = self.requests[reservation.request_id]

        reservation.task_id = task_id
        reservation.launched_at = now
        self.pending_launches -= 1
        sharing = self._launches_by_task.setdefault(task_id, [])
        sharing.append(launch_id)
        request.task_id = task_id
        request.state = RequestState.RUNNING
        self.totals["served"] += 1

        # A listing may have shown the task before its launch returned; it was
        # counted as foreign until now and is one worker, not two. A task that
        # another launch already returned keeps that launch's state.
        already_listed = len(sharing) > 1 and self.reservations[sharing[0]].state is ReservationState.VISIBLE
        self._unconfirmed.pop(task_id, None)
        if self.foreign.pop(task_id, None) is not None or already_listed:
            reservation.state = ReservationState.VISIBLE
            self.pending -= 1
            self.visible += 1
        else:
            reservation.state = ReservationState.LAUNCHED
        self._note_peak()
        events: list[Event] = [LaunchSucceeded(request, launch_id, task_id, self.counts())]
        if len(sharing) > 1:
            events.append(TaskShared(task_id, tuple(sharing)))
        # Merging a task that was counted as foreign frees a slot.
        events.extend(self._drain(now))
        return events

    def launch_failed(self, launch_id: str, reason: str, retryable: bool, now: float) -> list[Event]:
        """Release the slot of a launch that started nothing, then requeue or fail its request."""
        reservation = self._reservation(launch_id)
        if reservation.state is not ReservationState.GRANTED:
            msg = f"launch {launch_id} already returned task {reservation.task_id}; it cannot fail now"
            raise LedgerError(msg)
        request = self.requests[reservation.request_id]
        self._release(reservation)
        self.pending_launches -= 1

        request.last_reason = reason
        request.launch_id = None
        if retryable and request.attempts < self.launch_attempts:
            request.state = RequestState.DEFERRED
            self.queued += 1
            outcome = "requeued"
        else:
            self._end(request, EndReason.FAILED)
            self.totals["failed"] += 1
            outcome = "failed"

        self._note_peak()
        events: list[Event] = [LaunchFailed(request, launch_id, reason, retryable, outcome, self.counts())]
        events.extend(self._drain(now))
        return events

    # Reconciliation

    def reconcile(self, listed: Iterable[str], now: float) -> list[Event]:
        """Match a successful listing of running tasks against the reservations by task id."""
        listed_ids = set(listed)
        listed_count = len(listed_ids)
        self._forget_stopped(now)
        if self._stopped:
            # Cost in proportion to the listing, not to an hour of stopped tasks.
            listed_ids = {task_id for task_id in listed_ids if task_id not in self._stopped}

        for task_id in listed_ids:
            launch_ids = self._launches_by_task.get(task_id)
            if launch_ids is None:
                if task_id not in self.foreign and self.pending_launches:
                    self._unconfirmed[task_id] = self._grant_number
                self.foreign[task_id] = False
                continue
            for launch_id in launch_ids:
                reservation = self.reservations[launch_id]
                reservation.vanished = False
                if reservation.state is ReservationState.LAUNCHED:
                    reservation.state = ReservationState.VISIBLE
                    self.pending -= 1
                    self.visible += 1

        for reservation in self.reservations.values():
            if reservation.state is ReservationState.VISIBLE and reservation.task_id not in listed_ids:
                reservation.vanished = True
        for task_id in self.foreign:
            if task_id not in listed_ids:
                self.foreign[task_id] = True

        self.synced = True
        self._listed_at = now
        self._note_peak()
        events: list[Event] = [Reconciled(listed_count, self.counts())]
        events.extend(self._drain(now))
        return events

    def describe_candidates(self, now: float) -> list[str]:
        """List the task ids whose fate only ``describe`` can settle, after a listing.

        These are listed tasks (this fleet's or foreign) that dropped out of
        the latest listing, and launched tasks not listed yet. Launched tasks
        past the visibility timeout are always included. Younger ones are
        included only while requests wait, because a task that ends before it
        is ever listed would otherwise keep its slot until the timeout.
        Describing early is safe: only STOPPED frees a slot before the timeout.
        """
        candidates = self._vanished_tasks()
        for reservation in self.reservations.values():
            if reservation.state is not ReservationState.LAUNCHED or reservation.task_id is None:
                continue
            if self.queued or self._past_visibility_timeout(reservation, now):
                candidates.append(reservation.task_id)
        return candidates

    def follow_up_candidates(self, now: float | None = None) -> list[str]:
        """List the tasks to describe again before the next listing.

        These are tasks that left the listing but were not reported STOPPED
        yet and, while requests wait and ``now`` is given, launched tasks
        still unlisted after the visibility timeout. A list that never shows
        new tasks would otherwise free a slot only at listings.
        """
        candidates = self._vanished_tasks()
        if now is None or not self.queued:
            return candidates
        for reservation in self.reservations.values():
            if (
                reservation.state is ReservationState.LAUNCHED
                and reservation.task_id is not None
                and self._past_visibility_timeout(reservation, now)
            ):
                candidates.append(reservation.task_id)
        return candidates

    def _vanished_tasks(self) -> list[str]:
        candidates = [
            reservation.task_id
            for reservation in self.reservations.values()
            if reservation.vanished and reservation.task_id is not None
        ]
        candidates.extend(task_id for task_id, vanished in self.foreign.items() if vanished)
        return candidates

    def described(self, statuses: Mapping[str, str], now: float) -> list[Event]:
        """Release every task that ``describe`` proved gone; keep the rest."""
        events: list[Event] = []
        for task_id, status in statuses.items():
            launch_ids = self._launches_by_task.get(task_id)
            if launch_ids is not None:
                for launch_id in list(launch_ids):
                    events.extend(self._described_own(self.reservations[launch_id], status, now))
            elif task_id in self.foreign and status in (TaskStatus.STOPPED, TaskStatus.MISSING):
                if status == TaskStatus.STOPPED:
                    self._remember_stopped(task_id, now)
                del self.foreign[task_id]
                self._unconfirmed.pop(task_id, None)
                self.totals["stopped"] += 1
                events.append(WorkerStopped(None, None, task_id, str(TaskStatus(status).value), self.counts()))
        events.extend(self._drain(now))
        return events

    def _described_own(self, reservation: Reservation, status: str, now: float) -> list[Event]:
        gone = status == TaskStatus.STOPPED or (
            status == TaskStatus.MISSING and self._past_visibility_timeout(reservation, now)
        )
        if not gone:
            # Only a listing that succeeded after the visibility timeout
            # shows that the task should have been listed by now.
            if (
                status == TaskStatus.RUNNING
                and reservation.state is ReservationState.LAUNCHED
                and not reservation.reported_not_listed
                and self._listed_at is not None
                and reservation.launched_at is not None
                and self._listed_at - reservation.launched_at >= self.visibility_timeout
            ):
                reservation.reported_not_listed = True
                assert reservation.task_id is not None
                return [NotListed(reservation.task_id, reservation.launch_id, now - reservation.launched_at)]
            return []

        request = self.requests[reservation.request_id]
        task_id = reservation.task_id
        assert task_id is not None
        self._release(reservation)
        if status == TaskStatus.STOPPED:
            self._remember_stopped(task_id, now)
        sharing = self._launches_by_task[task_id]
        sharing.remove(reservation.launch_id)
        if not sharing:
            del self._launches_by_task[task_id]
        self._end(request, EndReason.STOPPED)
        self.totals["stopped"] += 1
        return [WorkerStopped(request, reservation.launch_id, task_id, str(TaskStatus(status).value), self.counts())]

    # Internals

    def _past_visibility_timeout(self, reservation: Reservation, now: float) -> bool:
        return reservation.launched_at is not None and now - reservation.launched_at >= self.visibility_timeout

    def _reservation(self, launch_id: str) -> Reservation:
        try:
            return self.reservations[launch_id]
        except KeyError:
            msg = f"no reservation has launch id {launch_id!r}"
            raise LedgerError(msg) from None

    def _enqueue(self, request: Request) -> None:
        self.queued += 1
        heapq.heappush(self._queue, (-request.priority, request.sequence, request.request_id))

    def _pop_next(self) -> Request | None:
        while self._queue:
            negative_priority, _, request_id = heapq.heappop(self._queue)
            request = self.requests.get(request_id)
            # Entries left behind by a cancellation or a priority raise are skipped.
            if request is not None and request.state is RequestState.QUEUED and request.priority == -negative_priority:
                return request
        return None

    def _drain(self, now: float) -> list[Event]:
        events: list[Event] = []
        while self.synced and not self.closed and self.queued and self.active < self.max_workers:
            request = self._pop_next()
            if request is None:
                break
            events.append(self._grant(request, now))
        return events

    def _grant(self, request: Request, now: float) -> Granted:
        launch_id = self._new_id()
        self.reservations[launch_id] = Reservation(launch_id, request.request_id, granted_at=now)
        self.pending += 1
        self.pending_launches += 1
        self.queued -= 1
        request.state = RequestState.LAUNCHING
        request.launch_id = launch_id
        request.attempts += 1
        self.totals["granted"] += 1
        self._number_launch(self.reservations[launch_id])
        self._note_peak()
        return Granted(request, launch_id, self.counts())

    def _release(self, reservation: Reservation) -> None:
        del self.reservations[reservation.launch_id]
        if reservation.state is ReservationState.VISIBLE:
            self.visible -= 1
        else:
            self.pending -= 1

    def _end(self, request: Request, end: EndReason) -> None:
        request.state = RequestState.ENDED
        request.end = end
        if self._open_by_key.get(request.key) == request.request_id:
            del self._open_by_key[request.key]

    def _remember_stopped(self, task_id: str, now: float) -> None:
        self._stopped[task_id] = now
        self._stopped.move_to_end(task_id)

    def _forget_stopped(self, now: float) -> None:
        stopped = self._stopped
        while stopped:
            task_id, stopped_at = next(iter(stopped.items()))
            if now - stopped_at < STOPPED_MEMORY_S:
                break
            stopped.popitem(last=False)

    def _number_launch(self, reservation: Reservation) -> None:
        self._grant_number += 1
        reservation.grant_number = self._grant_number
        heapq.heappush(self._unreturned, (self._grant_number, reservation.launch_id))

    def _count_unconfirmed(self) -> int:
        """Drop foreign tasks that no unreturned launch can explain; count the rest."""
        unreturned = self._unreturned
        while unreturned:
            reservation = self.reservations.get(unreturned[0][1])
            if reservation is not None and reservation.state is ReservationState.GRANTED:
                break
            heapq.heappop(unreturned)

        if len(unreturned) > 2 * self.pending_launches + 64:
            # Returned launches behind a slow one pile up, so rebuild the heap.
            unreturned[:] = [
                (reservation.grant_number, launch_id)
                for launch_id, reservation in self.reservations.items()
                if reservation.state is ReservationState.GRANTED
            ]
            heapq.heapify(unreturned)

        if not self._unconfirmed:
            return 0
        if not unreturned:
            self._unconfirmed.clear()
            return 0
        oldest = unreturned[0][0]
        for task_id in [task_id for task_id, number in self._unconfirmed.items() if number < oldest]:
            del self._unconfirmed[task_id]

        # Each unreturned launch explains at most one task, and only a task
        # that a listing showed after the launch was granted. Matching tasks
        # in order of first sighting to the launches granted by then gives
        # the largest number of tasks that may be this fleet's.
        granted = sorted(
            number
            for number, launch_id in unreturned
            if (reservation := self.reservations.get(launch_id)) is not None
            and reservation.state is ReservationState.GRANTED
        )
        matched = 0
        available = 0
        for sighted in sorted(self._unconfirmed.values()):
            while available < len(granted) and granted[available] <= sighted:
                available += 1
            if available > matched:
                matched += 1
        return matched

    def _note_peak(self) -> None:
        self.peak_active = max(self.peak_active, self.active - self._count_unconfirmed())

    def forget(self, request_id: str) -> None:
        """Drop an ended request from memory."""
        request = self.requests.get(request_id)
        if request is not None and request.state is RequestState.ENDED:
            del self.requests[request_id]
