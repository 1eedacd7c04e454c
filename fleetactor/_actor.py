"""The capacity actor: one trio task that owns the ledger and every decision.

Callers, launcher tasks and the reaper change fleet state only by sending a
message to the actor's inbox. The actor handles one message at a time and
never awaits I/O while it handles one, so decisions are serialized without a
lock and a caller gets "granted" or "queued" as soon as its message is read.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import trio

from fleetactor import _ledger, journal as _journal
from fleetactor._audit import AuditLog
from fleetactor._config import FleetConfig
from fleetactor._reaper import ReaperReport, run_reaper
from fleetactor._ticket import Ticket
from fleetactor._types import FleetClosedError, Job, LaunchFailedError, LaunchRejected, TaskStatus
from fleetactor.journal import Journal, JournalWriter

_KNOWN_STATUSES = frozenset(status.value for status in TaskStatus)

# Messages to the actor. `CapacityActor._handle` dispatches on their type.


@dataclass(slots=True)
class Submit:
    ticket: Ticket


@dataclass(slots=True)
class Cancel:
    ticket: Ticket
    withdrawn: trio.Event = field(default_factory=trio.Event)
    result: bool = False


@dataclass(slots=True)
class Launched:
    launch_id: str
    task_id: str


@dataclass(slots=True)
class Rejected:
    launch_id: str
    reason: str
    retryable: bool


@dataclass(slots=True)
class Listed:
    task_ids: Collection[str]
    report: ReaperReport


@dataclass(slots=True)
class ListFailed:
    error: str
    report: ReaperReport


@dataclass(slots=True)
class Described:
    statuses: Mapping[str, str]
    report: ReaperReport | None = None


@dataclass(slots=True)
class RequeueDue:
    request_id: str


@dataclass(slots=True)
class Close:
    pass


Message = Union[Submit, Cancel, Launched, Rejected, Listed, ListFailed, Described, RequeueDue, Close]


@dataclass(frozen=True, slots=True)
class LaunchOrder:
    launch_id: str
    request_id: str
    job: Job
    attempt: int
    # True when the journal already contains this launch id, after a restart.
    journaled: bool = False


def backoff_delay(attempt: int, config: FleetConfig, rng: random.Random) -> float:
    """Return a delay for ``attempt`` (1-based): capped exponential backoff with equal jitter.

    Half of the exponential step is fixed and half is random, so a run of
    attempts spreads out but always waits at least half of each step.
    """
    ceiling = min(config.retry_max_delay, config.retry_base_delay * 2 ** min(attempt - 1, 62))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class CapacityActor:
    """Owns a :class:`CapacityLedger`, its launcher pool and its reaper.

    Only :meth:`run` and the message handlers touch the ledger. Other tasks
    talk to the actor through ``inbox``.
    """

    def __init__(
        self,
        provisioner: Any,
        config: FleetConfig,
        audit: AuditLog,
        journal: Journal | None = None,
        inbox_size: int = 1024,
    ) -> None:
        assert config.max_workers is not None
        self.provisioner = provisioner
        self.config = config
        self.audit = audit
        self.ledger = _ledger.CapacityLedger(
            config.max_workers,
            visibility_timeout=config.visibility_timeout,
            launch_attempts=config.launch_attempts,
        )
        self.inbox, self._inbox_receive = trio.open_memory_channel[Message](inbox_size)
        self._orders, self._orders_receive = trio.open_memory_channel[LaunchOrder](math.inf)
        self._rng = random.Random(config.seed)
        self._tickets: dict[str, list[Ticket]] = {}
        self._jobs: dict[str, Job] = {}
        self._nursery: trio.Nursery | None = None
        # The Fleet handle, set by open_fleet; recovered tickets refer to it.
        self.fleet: Any = None
        # Open requests loaded from the journal by open_fleet.
        self.recovered_entries: list[_journal.JournalEntry] = []
        self.journal = None if journal is None else JournalWriter(journal, retention=config.journal_retention)
        self._unknown_statuses: set[str] = set()
        self._reported_not_listed = False
        self.closing = False
        self.stopped = trio.Event()

    # Lifecycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve messages until a :class:`Close` arrives, then shut down in order.

        Shutdown rejects queued requests, lets launches in flight finish for up
        to ``shutdown_timeout`` seconds, then cancels the launchers and the
        reaper and fails every ticket still waiting.
        """
        self.audit.emit("fleet.started", max_workers=self.config.max_workers)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.journal is not None:
                    self._recover(self.recovered_entries)
                    nursery.start_soon(self.journal.run)
                for _ in range(self.config.launch_concurrency):
                    nursery.start_soon(self._launcher, self._orders_receive.clone())
                nursery.start_soon(run_reaper, self.provisioner, self.inbox.clone(), self.config)
                task_status.started()

                await self._serve(lambda: self.closing)
                self._orders.close()
                with trio.move_on_after(self.config.shutdown_timeout):
                    await self._serve(lambda: self.ledger.pending_launches == 0)
                    if self.journal is not None:
                        self.journal.close()
                        await self.journal.flushed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._finish()

    async def _serve(self, done: Any) -> None:
        # Handle every message already waiting before yielding to the
        # scheduler: a burst of submissions costs one wake-up, not one each.
        while not done():
            message = await self._inbox_receive.receive()
            self._handle(message)
            while not done():
                try:
                    message = self._inbox_receive.receive_nowait()
                except trio.WouldBlock:
                    break
                self._handle(message)

    def _finish(self) -> None:
        """Fail what is left after shutdown; runs even when the actor is cancelled."""
        self.closing = True
        self._dispatch(self.ledger.close())
        for reservation in self.ledger.reservations.values():
            if reservation.state is _ledger.ReservationState.GRANTED:
                # The task may exist. A journal keeps the launch open, so the
                # next process repeats it with the same client token.
                self.audit.warning(
                    "launch.abandoned",
                    launch_id=reservation.launch_id,
                    request_id=reservation.request_id,
                    reason="fleet closed before the launch returned",
                )
        for tickets in self._tickets.values():
            for ticket in tickets:
                ticket._fail(FleetClosedError("the fleet closed before this worker stopped"))
        self._tickets.clear()
        self._reject_waiting_submissions()
        self.audit.emit("fleet.stopped", **dict(self.ledger.totals), peak_active=self.ledger.peak_active)
        self.stopped.set()

    def _reject_waiting_submissions(self) -> None:
        self._inbox_receive.close()
        while True:
            try:
                message = self._inbox_receive.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError, trio.EndOfChannel):
                return
            if isinstance(message, Submit):
                message.ticket._fail(FleetClosedError("the fleet closed before this request was read"))
            elif isinstance(message, Cancel):
                message.withdrawn.set()

    # Message handlers

    def _handle(self, message: Message) -> None:
        now = trio.current_time()
        if isinstance(message, Submit):
            self._submit(message.ticket, now)
        elif isinstance(message, Cancel):
            self._cancel(message, now)
        elif isinstance(message, Launched):
            self._dispatch(self.ledger.launch_succeeded(message.launch_id, message.task_id, now))
        elif isinstance(message, Rejected):
            self._dispatch(self.ledger.launch_failed(message.launch_id, message.reason, message.retryable, now))
        elif isinstance(message, Listed):
            self._dispatch(self.ledger.reconcile(message.task_ids, now))
            message.report.reply(self.ledger.describe_candidates(now))
        elif isinstance(message, ListFailed):
            # Fail closed: the last known state stays as it is.
            self.audit.warning("reconcile.failed", error=message.error, **_counts_fields(self.ledger.counts()))
            message.report.reply(self.ledger.describe_candidates(now))
        elif isinstance(message, Described):
            self._dispatch(self.ledger.described(self._checked_statuses(message.statuses), now))
            if message.report is not None:
                message.report.reply(self.ledger.follow_up_candidates(now))
        elif isinstance(message, RequeueDue):
            if not self.closing:
                self._dispatch(self.ledger.requeue(message.request_id, now))
        elif isinstance(message, Close):
            self.closing = True
            self._dispatch(self.ledger.close())

    def _submit(self, ticket: Ticket, now: float) -> None:
        if self.closing:
            ticket._fail(FleetClosedError("the fleet is closing and accepts no new requests"))
            return

        job = ticket.job
        request, events = self.ledger.submit(job.key, job.priority, now)
        is_new = request.request_id not in self._jobs
        self._tickets.setdefault(request.request_id, []).append(ticket)
        self._jobs.setdefault(request.request_id, job)
        if is_new and self.journal is not None:
            record = _journal.Submitted(
                request.request_id, job.key, job.priority, job.overrides, request.sequence, time.time()
            )
            ticket._durable = trio.Event()
            self.journal.enqueue(record, ticket._durable)
        self._dispatch(events)

        granted = request.state in (_ledger.RequestState.LAUNCHING, _ledger.RequestState.RUNNING)
        ticket._decide(request.request_id, "granted" if granted else "queued")
        if request.state is _ledger.RequestState.RUNNING and request.task_id is not None:
            ticket._start(request.task_id)

    def _cancel(self, message: Cancel, now: float) -> None:
        ticket = message.ticket
        tickets = self._tickets.get(ticket.request_id or "", [])
        request = self.ledger.requests.get(ticket.request_id or "")
        still_waiting = request is not None and request.state in (
            _ledger.RequestState.QUEUED,
            _ledger.RequestState.DEFERRED,
        )
        if still_waiting and ticket in tickets:
            tickets.remove(ticket)
            ticket._fail(trio.ClosedResourceError("this ticket was cancelled"))
            message.result = True
            if not tickets:
                self._dispatch(self.ledger.cancel(ticket.request_id or ""))
        message.withdrawn.set()

    def _checked_statuses(self, statuses: Mapping[str, str]) -> dict[str, str]:
        checked = {}
        for task_id, status in statuses.items():
            normalized = status.upper()
            if normalized not in _KNOWN_STATUSES:
                # An unknown status counts as a task that still occupies its
                # slot. Each distinct status is logged once, not per task.
                if status not in self._unknown_statuses and len(self._unknown_statuses) < 100:
                    self._unknown_statuses.add(status)
                    self.audit.warning("describe.unknown_status", task_id=task_id, status=status)
                normalized = TaskStatus.PENDING.value
            checked[task_id] = normalized
        return checked

    # Effects of ledger events

    def _dispatch(self, events: list[_ledger.Event]) -> None:
        for event in events:
            self._apply(event)

    def _apply(self, event: _ledger.Event) -> None:
        if isinstance(event, _ledger.Granted):
            self.audit.emit(
                "spawn.granted",
                request_id=event.request.request_id,
                launch_id=event.launch_id,
                key=event.request.key,
                attempt=event.request.attempts,
                **_counts_fields(event.counts),
            )
            self._mark_granted(event.request.request_id)
            order = LaunchOrder(
                event.launch_id, event.request.request_id, self._jobs[event.request.request_id], event.request.attempts
            )
            self._orders.send_nowait(order)
        elif isinstance(event, _ledger.Queued):
            counts = event.counts
            self.audit.emit(
                "spawn.queued",
                request_id=event.request.request_id,
                key=event.request.key,
                priority=event.request.priority,
                active=counts.active,
                queued=counts.queued,
                max_workers=counts.max_workers,
            )
        elif isinstance(event, _ledger.Joined):
            self.audit.emit("spawn.joined", request_id=event.request.request_id, key=event.key)
        elif isinstance(event, _ledger.LaunchSucceeded):
            self.audit.emit(
                "launch.succeeded",
                launch_id=event.launch_id,
                task_id=event.task_id,
                request_id=event.request.request_id,
                # A listing may have counted this task as foreign before the
                # launch returned; foreign shows the count after the merge.
                active=event.counts.active,
                foreign=event.counts.foreign,
                unconfirmed=event.counts.unconfirmed,
            )
            for ticket in self._tickets.get(event.request.request_id, []):
                ticket._start(event.task_id)
            self._journal(_journal.Launched(event.request.request_id, event.launch_id, event.task_id))
        elif isinstance(event, _ledger.LaunchFailed):
            self._launch_failed(event)
        elif isinstance(event, _ledger.WorkerStopped):
            self._worker_stopped(event)
        elif isinstance(event, _ledger.Cancelled):
            self.audit.emit(
                "spawn.cancelled",
                request_id=event.request.request_id,
                reason=event.reason,
                active=event.counts.active,
                queued=event.counts.queued,
            )
            error: Exception
            if event.reason == "fleet closed":
                # The journal keeps the request open: the next process queues it again.
                error = FleetClosedError("the fleet closed while this request was queued")
            else:
                error = trio.ClosedResourceError("this ticket was cancelled")
                self._journal(_journal.Ended(event.request.request_id, "cancelled", event.reason, time.time()))
            self._end_request(event.request.request_id, error)
        elif isinstance(event, _ledger.NotListed):
            # A provisioner whose listing names tasks differently from its
            # launches (an ARN against a short id, say) makes every worker
            # count twice. Reported for the first such task only.
            if not self._reported_not_listed:
                self._reported_not_listed = True
                self.audit.warning(
                    "launch.not_listed",
                    task_id=event.task_id,
                    launch_id=event.launch_id,
                    seconds_since_launch=round(event.age, 3),
                    hint="list_running has not returned this task id although describe reports it RUNNING; "
                    "check that list_running and launch return the same form of task id and that the "
                    "listing's filter covers this fleet's tasks",
                )
        elif isinstance(event, _ledger.TaskShared):
            # Each launch keeps its own slot, so the count errs high, not low.
            self.audit.warning("launch.shared_task", task_id=event.task_id, launch_ids=list(event.launch_ids))
        elif isinstance(event, _ledger.Reconciled):
            counts = event.counts
            self.audit.emit(
                "reconcile",
                listed=event.listed,
                visible=counts.visible,
                pending=counts.pending,
                foreign=counts.foreign,
                unconfirmed=counts.unconfirmed,
                active=counts.active,
                queued=counts.queued,
            )

    def _mark_granted(self, request_id: str) -> None:
        for ticket in self._tickets.get(request_id, []):
            ticket._grant()

    def _launch_failed(self, event: _ledger.LaunchFailed) -> None:
        request = event.request
        self.audit.emit(
            "launch.failed",
            launch_id=event.launch_id,
            request_id=request.request_id,
            reason=event.reason,
            retryable=event.retryable,
            outcome=event.outcome,
            attempt=request.attempts,
            active=event.counts.active,
            foreign=event.counts.foreign,
            unconfirmed=event.counts.unconfirmed,
        )
        requeued = event.outcome == "requeued"
        self._journal(_journal.LaunchFailed(request.request_id, event.launch_id, requeued, event.reason))
        if requeued:
            for ticket in self._tickets.get(request.request_id, []):
                ticket._requeue()
            delay = backoff_delay(request.attempts, self.config, self._rng)
            assert self._nursery is not None
            self._nursery.start_soon(self._requeue_after, request.request_id, delay)
            return
        error = LaunchFailedError(request.key, event.reason, event.retryable)
        self._journal(_journal.Ended(request.request_id, "failed", event.reason, time.time()))
        self._end_request(request.request_id, error)

    def _worker_stopped(self, event: _ledger.WorkerStopped) -> None:
        self.audit.emit(
            "worker.stopped",
            launch_id=event.launch_id,
            task_id=event.task_id,
            status=event.status,
            request_id=None if event.request is None else event.request.request_id,
            active=event.counts.active,
        )
        if event.request is not None:
            self._journal(_journal.Ended(event.request.request_id, "stopped", event.status, time.time()))
            self._end_request(event.request.request_id, None)

    def _end_request(self, request_id: str, error: BaseException | None) -> None:
        for ticket in self._tickets.pop(request_id, []):
            if error is None:
                ticket._finish()
            else:
                ticket._fail(error)
        self._jobs.pop(request_id, None)
        self.ledger.forget(request_id)

    def _journal(self, record: _journal.Record) -> None:
        if self.journal is not None:
            self.journal.enqueue(record)

    def _recover(self, entries: list[_journal.JournalEntry]) -> None:
        """Rebuild the requests an earlier process left open, before the first reconcile."""
        now = trio.current_time()
        for entry in entries:
            request = self.ledger.restore(
                request_id=entry.request_id,
                key=entry.key,
                priority=entry.priority,
                sequence=entry.sequence,
                submitted_at=now,
                attempts=entry.attempts,
                launch_id=entry.launch_id,
                task_id=entry.task_id,
                now=now,
            )
            job = Job(entry.key, entry.priority, entry.overrides)
            assert self.fleet is not None
            ticket = Ticket(job, self.fleet)
            self._tickets[request.request_id] = [ticket]
            self._jobs[request.request_id] = job
            granted = request.state is not _ledger.RequestState.QUEUED
            ticket._decide(request.request_id, "granted" if granted else "queued")
            if entry.task_id is not None:
                ticket._start(entry.task_id)
            elif entry.launch_id is not None:
                order = LaunchOrder(entry.launch_id, request.request_id, job, entry.attempts, journaled=True)
                self._orders.send_nowait(order)
            self.audit.emit(
                "spawn.recovered",
                request_id=request.request_id,
                key=entry.key,
                state=request.state.value,
                launch_id=entry.launch_id,
                task_id=entry.task_id,
                **_counts_fields(self.ledger.counts()),
            )

    def open_tickets(self, key: str) -> list[Ticket]:
        request = self.ledger.open_request(key)
        return [] if request is None else list(self._tickets.get(request.request_id, []))

    # Tasks in the actor's nursery

    async def _requeue_after(self, request_id: str, delay: float) -> None:
        await trio.sleep(delay)
        await self.inbox.send(RequeueDue(request_id))

    async def _launcher(self, orders: trio.MemoryReceiveChannel[LaunchOrder]) -> None:
        async with orders:
            async for order in orders:
                await self._launch(order)

    async def _launch(self, order: LaunchOrder) -> None:
        """Call the provisioner until the launch has a definite outcome.

        Any exception other than LaunchRejected may hide a started task, so the
        call is repeated with the same client token, which the backend treats
        as the same launch.
        """
        if self.journal is not None and not order.journaled:
            # Durable before the call: after a crash the launch is repeated
            # with this client token instead of a new one.
            await self.journal.write(_journal.LaunchStarted(order.request_id, order.launch_id, order.attempt))

        attempt = 0
        # Set once an attempt may have started the task. After that a
        # retryable rejection (a throttle, say) proves nothing about the
        # earlier attempt, so the launch is repeated with the same token until
        # it returns a task id or a rejection that is not retryable.
        outcome_unknown = False
        while True:
            attempt += 1
            try:
                with trio.fail_after(self.config.provisioner_timeout):
                    task_id = await self.provisioner.launch(order.job, client_token=order.launch_id)
            except trio.TooSlowError:
                outcome_unknown = True
                problem = f"launch timed out after {self.config.provisioner_timeout:g} s"
            except LaunchRejected as rejection:
                if not (outcome_unknown and rejection.retryable):
                    await self.inbox.send(Rejected(order.launch_id, str(rejection.reason), bool(rejection.retryable)))
                    return
                problem = f"LaunchRejected after an attempt with an unknown outcome: {rejection.reason}"
            except Exception as error:  # noqa: BLE001 - any other error is an ambiguous outcome
                outcome_unknown = True
                problem = f"{type(error).__name__}: {error}"
            else:
                if isinstance(task_id, str) and task_id:
                    await self.inbox.send(Launched(order.launch_id, task_id))
                    return
                problem = f"provisioner.launch returned {task_id!r} instead of a task id string"

            delay = backoff_delay(attempt, self.config, self._rng)
            self.audit.warning(
                "launch.retrying",
                launch_id=order.launch_id,
                request_id=order.request_id,
                attempt=attempt,
                error=problem,
                delay_s=round(delay, 3),
            )
            await trio.sleep(delay)


def _counts_fields(counts: _ledger.Counts) -> dict[str, int]:
    return {
        "active": counts.active,
        "visible": counts.visible,
        "pending": counts.pending,
        "foreign": counts.foreign,
        "unconfirmed": counts.unconfirmed,
        "queued": counts.queued,
        "max_workers": counts.max_workers,
    }
