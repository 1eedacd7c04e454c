"""Tickets: a caller's handle on one submitted job."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Literal

import trio

from fleetactor._types import Job

if TYPE_CHECKING:
    from fleetactor._fleet import Fleet


_ALREADY_SET = trio.Event()
_ALREADY_SET.set()


class TicketState(enum.Enum):
    # Sent to the actor, no decision yet.
    SUBMITTED = "submitted"
    # Waiting for a slot.
    QUEUED = "queued"
    # Holds a slot; the launch has not returned a task id yet.
    LAUNCHING = "launching"
    # The worker exists.
    STARTED = "started"
    # The worker stopped.
    FINISHED = "finished"
    # Launch failed, ticket cancelled, or fleet closed: see ``Ticket.error``.
    FAILED = "failed"


class Ticket:
    """A submitted job's place in the fleet.

    ``decision`` is what the actor replied to the submission: ``"granted"``
    when a slot was reserved at once, ``"queued"`` when the request waits. A
    submission that joined an open request for the same key shares that
    request's worker.
    """

    __slots__ = ("job", "decision", "request_id", "task_id", "state", "error", "_fleet", "_decided", "_started", "_finished", "_durable")

    def __init__(self, job: Job, fleet: Fleet) -> None:
        self.job = job
        self.decision: Literal["granted", "queued"] | None = None
        self.request_id: str | None = None
        self.task_id: str | None = None
        self.state = TicketState.SUBMITTED
        self.error: BaseException | None = None
        self._fleet = fleet
        self._decided = trio.Event()
        self._started: trio.Event | None = None
        self._finished: trio.Event | None = None
        # Set once the journal has stored the submission; None without a journal.
        self._durable: trio.Event | None = None

    def __repr__(self) -> str:
        return f"<Ticket key={self.job.key!r} decision={self.decision} state={self.state.value}>"

    @property
    def key(self) -> str:
        return self.job.key

    async def wait_started(self) -> str:
        """Wait until the worker exists and return its task id.

        Raises:
            LaunchFailedError: The launch was rejected for good.
            FleetClosedError: The fleet closed before the worker started.
            trio.ClosedResourceError: This ticket was cancelled.

        Cancelling the wait leaves the request in the fleet.
        """
        if self.task_id is None and self.error is None:
            if self._started is None:
                self._started = trio.Event()
            await self._started.wait()
        else:
            await trio.lowlevel.checkpoint()
        if self.task_id is None:
            assert self.error is not None
            raise self.error
        return self.task_id

    async def wait_finished(self) -> None:
        """Wait until the worker has stopped, as ``describe`` reports it.

        Raises the same errors as :meth:`wait_started`; :class:`FleetClosedError`
        also when the fleet closes while the worker still runs.
        """
        if self.state not in (TicketState.FINISHED, TicketState.FAILED):
            if self._finished is None:
                self._finished = trio.Event()
            await self._finished.wait()
        else:
            await trio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error

    async def cancel(self) -> bool:
        """Withdraw this ticket while its request waits in the queue.

        Returns True when the ticket was withdrawn; its waits then raise
        ``trio.ClosedResourceError``. Returns False when the request already
        has a slot or has ended; the worker is left running. Other tickets
        that joined the same request keep it alive.
        """
        return await self._fleet._cancel(self)

    # Called by the actor only.

    def _decide(self, request_id: str, decision: Literal["granted", "queued"]) -> None:
        self.request_id = request_id
        self.decision = decision
        self.state = TicketState.LAUNCHING if decision == "granted" else TicketState.QUEUED
        self._decided.set()
        # A queued ticket can wait for a long time; one shared event saves memory.
        self._decided = _ALREADY_SET

    def _grant(self) -> None:
        if self.state in (TicketState.SUBMITTED, TicketState.QUEUED):
            self.state = TicketState.LAUNCHING

    def _requeue(self) -> None:
        if self.state is TicketState.LAUNCHING:
            self.state = TicketState.QUEUED

    def _start(self, task_id: str) -> None:
        self.task_id = task_id
        self.state = TicketState.STARTED
        if self._started is not None:
            self._started.set()

    def _finish(self) -> None:
        self.state = TicketState.FINISHED
        self._wake_all()

    def _fail(self, error: BaseException) -> None:
        if self.state in (TicketState.FINISHED, TicketState.FAILED):
            return
        self.error = error
        self.state = TicketState.FAILED
        self._wake_all()

    def _wake_all(self) -> None:
        self._decided.set()
        if self._started is not None:
            self._started.set()
        if self._finished is not None:
            self._finished.set()
