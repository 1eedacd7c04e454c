"""fleetactor: a hard cap for fleets of ephemeral cloud workers."""

from fleetactor._config import FleetConfig
from fleetactor._fleet import Fleet, FleetStatistics, open_fleet
from fleetactor._ticket import Ticket, TicketState
from fleetactor._types import FleetClosedError, Job, LaunchFailedError, LaunchRejected, TaskStatus
from fleetactor.journal import Journal, JournalError, SqliteJournal

__all__ = [
    "Fleet",
    "FleetClosedError",
    "FleetConfig",
    "FleetStatistics",
    "Job",
    "Journal",
    "JournalError",
    "LaunchFailedError",
    "LaunchRejected",
    "SqliteJournal",
    "TaskStatus",
    "Ticket",
    "TicketState",
    "open_fleet",
]
