"""The public entry point: ``open_fleet`` and the ``Fleet`` handle it yields."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from fleetactor._actor import Cancel, CapacityActor, Close, Submit
from fleetactor._audit import AuditLog
from fleetactor._config import FleetConfig
from fleetactor._ticket import Ticket
from fleetactor._types import FleetClosedError, Job
from fleetactor.journal import Journal

_PROVISIONER_METHODS = ("launch", "list_running", "describe")


@dataclass(frozen=True)
class FleetStatistics:
    """A snapshot of a fleet's occupancy and running totals.

    ``active`` is ``visible + pending + foreign``, the number the cap bounds.
    ``pending`` counts this fleet's workers not yet seen in a listing,
    ``launching`` those of them whose launch has not returned yet.
    ``peak_active`` is the highest ``active`` count so far, less the foreign
    tasks that a launch still out may have started (a listing can show a
    task before RunTask returns). So a ``peak_active`` above ``max_workers``
    means that listings found tasks that match no launch of this fleet.
    """

    max_workers: int
    active: int
    visible: int
    pending: int
    launching: int
    foreign: int
    queued: int
    peak_active: int
    synced: bool
    submitted: int
    # Requests loaded from a journal at start; also counted in submitted.
    recovered: int
    granted: int
    served: int
    failed: int
    cancelled: int
    stopped: int


def _check_provisioner(provisioner: Any) -> None:
    for name in _PROVISIONER_METHODS:
        method = getattr(provisioner, name, None)
        if method is None or not inspect.iscoroutinefunction(method):
            msg = (
                f"{type(provisioner).__name__} is not a provisioner: it needs an async method {name}(); "
                "a provisioner has async launch(job, *, client_token), list_running() and describe(task_ids)"
            )
            raise TypeError(msg)


class Fleet:
    """A running fleet. Obtain one from :func:`open_fleet`."""

    def __init__(self, actor: CapacityActor) -> None:
        self._actor = actor
        self.fleet_id = actor.audit.fleet_id
        self.config = actor.config

    async def submit(self, job: Job) -> Ticket:
        """Ask for a worker for ``job`` and return its ticket with a decision.

        Returns a ticket whose ``decision`` is "granted" or "queued", or raises
        Cancelled leaving fleet state unchanged.

        Raises:
            TypeError: ``job`` is not a :class:`Job`.
            FleetClosedError: The fleet is closing or closed.
        """
        if not isinstance(job, Job):
            msg = f"submit() takes a fleetactor.Job, got {type(job).__name__}; wrap the key as Job(key=...)"
            raise TypeError(msg)
        if self._actor.closing:
            raise FleetClosedError("the fleet is closed; submit jobs inside the open_fleet block")

        ticket = Ticket(job, self)
        try:
            await self._actor.inbox.send(Submit(ticket))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise FleetClosedError("the fleet is closed; submit jobs inside the open_fleet block") from None

        # The actor decides without awaiting I/O, so this wait is short. It is
        # shielded because once the message is sent the request exists, and a
        # caller that is cancelled now must still get its ticket.
        with trio.CancelScope(shield=True):
            await ticket._decided.wait()
            if ticket._durable is not None:
                await ticket._durable.wait()
        if ticket.decision is None:
            assert ticket.error is not None
            raise ticket.error
        return ticket

    def ticket(self, key: str) -> Ticket | None:
        """Return a ticket of the request for ``key`` that is queued or has a worker.

        Requests recovered from a journal are reachable this way; None when no
        open request has this key.
        """
        tickets = self._actor.open_tickets(key)
        return tickets[0] if tickets else None

    def statistics(self) -> FleetStatistics:
        """Return a snapshot of occupancy and totals."""
        ledger = self._actor.ledger
        totals = ledger.totals
        return FleetStatistics(
            max_workers=ledger.max_workers,
            active=ledger.active,
            visible=ledger.visible,
            pending=ledger.pending,
            launching=ledger.pending_launches,
            foreign=len(ledger.foreign),
            queued=ledger.queued,
            peak_active=ledger.peak_active,
            synced=ledger.synced,
            submitted=totals["submitted"],
            recovered=totals["recovered"],
            granted=totals["granted"],
            served=totals["served"],
            failed=totals["failed"],
            cancelled=totals["cancelled"],
            stopped=totals["stopped"],
        )

    async def _cancel(self, ticket: Ticket) -> bool:
        if self._actor.stopped.is_set():
            await trio.lowlevel.checkpoint()
            return False
        message = Cancel(ticket)
        try:
            await self._actor.inbox.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        with trio.CancelScope(shield=True):
            await message.withdrawn.wait()
        return message.result

    async def _close(self) -> None:
        if not self._actor.stopped.is_set():
            try:
                await self._actor.inbox.send(Close())
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        await self._actor.stopped.wait()


@asynccontextmanager
async def open_fleet(
    provisioner: Any,
    config: FleetConfig | None = None,
    *,
    journal: Journal | None = None,
) -> AsyncIterator[Fleet]:
    """Run a fleet for the duration of the ``async with`` block.

    With a ``journal`` (see :mod:`fleetactor.journal`), the requests that an
    earlier process left open are recovered before the first reconcile.
    Waiting ones are queued again, launches without a recorded outcome are
    repeated with the same client token, and launched tasks are adopted by id.

    The fleet grants nothing until its first successful listing of running
    tasks. Leaving the block stops accepting submissions, fails queued
    tickets with :class:`FleetClosedError`, waits up to
    ``config.shutdown_timeout`` seconds for launches in flight, and then
    stops the reaper and the launchers. Running workers are left running.

    Raises:
        JournalError: The journal cannot be read or belongs to another fleet.
        TypeError: ``provisioner`` lacks one of the async methods
            ``launch``, ``list_running`` and ``describe``.
    """
    _check_provisioner(provisioner)
    config = FleetConfig() if config is None else config
    fleet_id = config.fleet_id or uuid.uuid4().hex[:12]
    recovered = [] if journal is None else await journal.load()

    async with trio.open_nursery() as nursery:
        actor = CapacityActor(provisioner, config, AuditLog(fleet_id), journal)
        fleet = Fleet(actor)
        actor.fleet = fleet
        actor.recovered_entries = recovered
        await nursery.start(actor.run)
        try:
            yield fleet
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(config.shutdown_timeout + 1):
                    await fleet._close()
            nursery.cancel_scope.cancel()
