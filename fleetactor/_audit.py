"""Emission of audit events: one structlog event per fleet decision.

The field names are a public contract documented in docs/audit-log.md. The
library only emits; the application decides how events are rendered.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import structlog
import trio

logger = structlog.get_logger("fleetactor.audit")


class AuditLog:
    """Adds ``fleet``, ``seq`` and ``timestamp`` to every event of one fleet.

    ``timestamp`` is the wall-clock time when the fleet started plus the time
    elapsed on trio's clock since then. In real time it matches the wall
    clock; under a virtual clock it follows the virtual time, so waits read
    from the log stay meaningful.
    """

    def __init__(self, fleet_id: str) -> None:
        self.fleet_id = fleet_id
        self._logger = logger.bind(fleet=fleet_id)
        self._seq = 0
        self._wall_start = time.time()
        self._clock_start = trio.current_time()

    def timestamp(self) -> str:
        seconds = self._wall_start + (trio.current_time() - self._clock_start)
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")

    def emit(self, event: str, **fields: Any) -> None:
        self._seq += 1
        self._logger.info(event, seq=self._seq, timestamp=self.timestamp(), **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._seq += 1
        self._logger.warning(event, seq=self._seq, timestamp=self.timestamp(), **fields)
