"""Replay of an audit log: recompute occupancy from the events and check the cap.

An audit log is one JSON object per line, as a fleet's ``fleetactor.audit``
logger emits them (the fields are documented in docs/audit-log.md). The
replay trusts no count that the log reports. It keeps its own count of the
fleet's workers: +1 for each ``spawn.granted``, -1 for each
``launch.failed`` and for each ``worker.stopped`` with a ``launch_id``. The
number of foreign tasks is the ``foreign`` field of the latest event that
has one, minus the foreign tasks stopped since. From these counts it checks:

- no grant raised active workers above ``max_workers``;
- each grant, reconcile and failed reconcile reports the ``active`` count that
  the replay computes;
- ``seq`` increases strictly within each fleet;
- ``timestamp`` never goes back within one process of a fleet;
- every request reached an end: served (``launch.succeeded``), failed
  (``launch.failed`` with outcome ``failed``) or cancelled
  (``spawn.cancelled``). A launch that the fleet abandoned at shutdown
  (``launch.abandoned``) also ends its request in this log, because a
  journal hands it to the next process;
- launches and requests move through their states in a possible order, for
  example no launch is released twice.

A line that is not a JSON object, lacks a field the replay needs, or has a
timestamp that is not UTC is malformed: :func:`replay_lines` raises
:class:`MalformedLineError` for it. A broken rule is a :class:`Violation` in
the returned :class:`AuditReport`. A log without any event checks nothing,
so its report is not ``ok``. Several fleets may share one log; each is
replayed on its own.
"""

from __future__ import annotations

import datetime
import enum
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AuditReport",
    "FleetReport",
    "MalformedLineError",
    "Violation",
    "percentile",
    "replay_file",
    "replay_lines",
]


class MalformedLineError(ValueError):
    """A line of the log is not an audit record the replay can read."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True)
class Violation:
    """One broken rule, located at the line where the replay detected it."""

    line_number: int
    fleet: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.reason}"


def percentile(values: list[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of ``values`` (``fraction`` in [0, 1]), or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class FleetReport:
    """Totals that the replay counted for one fleet.

    ``waits_s`` contains, for each request that was queued, the seconds from its
    ``spawn.queued`` to its first ``spawn.granted``. ``peak_active`` is the
    highest active count the replay computed after a grant, a reconcile or a
    launch outcome, less the ``unconfirmed`` foreign tasks (listed before a
    launch that may have started them returned). It may exceed
    ``max_workers`` without a violation when a listing finds tasks that
    match no launch (foreign tasks), because no grant caused it.
    """

    fleet: str
    first_line: int
    max_workers: int | None = None
    requests: int = 0
    grants: int = 0
    queued: int = 0
    joined: int = 0
    served: int = 0
    failed: int = 0
    cancelled: int = 0
    abandoned: int = 0
    recovered: int = 0
    workers_stopped: int = 0
    foreign_stopped: int = 0
    launch_failures: int = 0
    requeued: int = 0
    launch_retries: int = 0
    reconciles: int = 0
    reconcile_failures: int = 0
    peak_active: int = 0
    # The line where ``peak_active`` was first reached.
    peak_active_line: int | None = None
    seq_gaps: int = 0
    restarts: int = 0
    stopped: bool = False
    waits_s: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet,
            "max_workers": self.max_workers,
            "requests": self.requests,
            "grants": self.grants,
            "queued": self.queued,
            "joined": self.joined,
            "served": self.served,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "abandoned": self.abandoned,
            "recovered": self.recovered,
            "workers_stopped": self.workers_stopped,
            "foreign_stopped": self.foreign_stopped,
            "launch_failures": self.launch_failures,
            "requeued": self.requeued,
            "launch_retries": self.launch_retries,
            "reconciles": self.reconciles,
            "reconcile_failures": self.reconcile_failures,
            "peak_active": self.peak_active,
            "peak_active_line": self.peak_active_line,
            "seq_gaps": self.seq_gaps,
            "restarts": self.restarts,
            "fleet_stopped": self.stopped,
            "waits": len(self.waits_s),
            "wait_p50_s": percentile(self.waits_s, 0.50),
            "wait_p95_s": percentile(self.waits_s, 0.95),
            "wait_max_s": max(self.waits_s, default=None),
        }


@dataclass
class AuditReport:
    """The outcome of a replay: one report per fleet and every violation, by line.

    ``lines`` is the number of events, because every line is one event.
    """

    lines: int
    fleets: list[FleetReport]
    violations: list[Violation]

    @property
    def empty(self) -> bool:
        """True when the log has no event, so no check could run."""
        return self.lines == 0

    @property
    def ok(self) -> bool:
        """True when the log has at least one event and no violation."""
        return not self.empty and not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "lines": self.lines,
            "fleets": [fleet.to_dict() for fleet in self.fleets],
            "violations": [
                {"line": violation.line_number, "fleet": violation.fleet, "reason": violation.reason}
                for violation in self.violations
            ],
        }


# Replay state


class _LaunchState(enum.Enum):
    # Granted, with no launch outcome yet. Occupies a slot.
    GRANTED = "granted"
    # launch.succeeded seen. Occupies a slot until its worker stops.
    LAUNCHED = "launched"
    # launch.failed or worker.stopped seen. The slot is free.
    RELEASED = "released"


class _RequestEnd(enum.Enum):
    SERVED = "served"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


@dataclass
class _Request:
    first_line: int
    key: str | None
    end: _RequestEnd | None = None
    # Launch id of the grant that occupies a slot for this request, if any.
    launch_id: str | None = None
    queued_at: datetime.datetime | None = None
    granted_once: bool = False
    # A launch that a later process repeats with the same client token
    # returns the same task, so the request counts as served once.
    served_once: bool = False


@dataclass
class _Launch:
    request_id: str
    state: _LaunchState = _LaunchState.GRANTED


class _Record:
    """One parsed line with typed access to its fields; a wrong type is malformed."""

    def __init__(self, line_number: int, data: dict[str, Any]) -> None:
        self.line_number = line_number
        self.data = data
        self.event: str = data["event"]

    def _malformed(self, name: str, expected: str) -> MalformedLineError:
        if name not in self.data:
            return MalformedLineError(self.line_number, f"{self.event} has no {name!r} field; it requires {expected}")
        value = self.data[name]
        return MalformedLineError(self.line_number, f"{self.event} field {name!r} is {value!r}; it must be {expected}")

    def integer(self, name: str) -> int:
        value = self.data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._malformed(name, "an integer >= 0")
        return value

    def optional_integer(self, name: str) -> int | None:
        return None if self.data.get(name) is None else self.integer(name)

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not value:
            raise self._malformed(name, "a non-empty string")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self.data.get(name) is None else self.text(name)


def _parse_line(line_number: int, raw: str | bytes) -> _Record:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedLineError(line_number, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise MalformedLineError(line_number, f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise MalformedLineError(line_number, f"a JSON {type(data).__name__}, not an object")

    for name in ("event", "fleet"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise MalformedLineError(line_number, f"no {name!r} string; every audit record has event, fleet, seq and timestamp")
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise MalformedLineError(line_number, f"'seq' is {seq!r}; every audit record has an integer seq")
    return _Record(line_number, data)


def _parse_timestamp(record: _Record) -> datetime.datetime:
    value = record.data.get("timestamp")
    expected = "it must be an ISO 8601 string in UTC, ending in Z or +00:00"
    # The suffix is checked on the text, because fromisoformat also accepts a
    # timestamp without an offset or with any other offset.
    if not isinstance(value, str) or not value.endswith(("Z", "+00:00")):
        raise MalformedLineError(record.line_number, f"'timestamp' is {value!r}; {expected}")
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        raise MalformedLineError(record.line_number, f"'timestamp' is {value!r}; {expected}") from None


class _FleetReplay:
    """Replays the records of one fleet, in log order."""

    def __init__(self, fleet: str, first_line: int, violations: list[Violation]) -> None:
        self.report = FleetReport(fleet=fleet, first_line=first_line)
        self._violations = violations
        self._last_seq: int | None = None
        self._last_seq_line = 0
        self._last_timestamp: datetime.datetime | None = None
        self._last_timestamp_text = ""
        self._last_timestamp_line = 0
        self._started = False
        self._reported_missing_start = False
        self._stopped_line: int | None = None
        self._own = 0
        self._foreign = 0
        self._unconfirmed = 0
        self._requests: dict[str, _Request] = {}
        self._launches: dict[str, _Launch] = {}

    def _violation(self, record: _Record, reason: str) -> None:
        self._violations.append(Violation(record.line_number, self.report.fleet, reason))

    @property
    def _active(self) -> int:
        return self._own + self._foreign

    # Every record

    def feed(self, record: _Record) -> None:
        timestamp = _parse_timestamp(record)
        if record.event == "fleet.started" and self._started:
            self._restart()
        self._check_order(record)
        self._check_timestamp(record, timestamp)
        handler = _HANDLERS.get(record.event)
        if handler is not None:
            handler(self, record, timestamp)

    def _check_order(self, record: _Record) -> None:
        seq = record.data["seq"]
        if self._last_seq is not None:
            if seq <= self._last_seq:
                self._violation(
                    record,
                    f"seq {seq} of fleet {self.report.fleet} does not increase "
                    f"(line {self._last_seq_line} has seq {self._last_seq})",
                )
            elif seq > self._last_seq + 1:
                self.report.seq_gaps += 1
        if self._last_seq is None or seq > self._last_seq:
            self._last_seq = seq
            self._last_seq_line = record.line_number

        if self._stopped_line is not None:
            self._violation(record, f"{record.event} after fleet.stopped on line {self._stopped_line}")
        if not self._started and not self._reported_missing_start and record.event != "fleet.started":
            self._reported_missing_start = True
            self._violation(
                record,
                f"fleet {self.report.fleet} has {record.event} before fleet.started; "
                "the replay needs the log from the fleet's start",
            )

    def _check_timestamp(self, record: _Record, timestamp: datetime.datetime) -> None:
        # One process stamps its events from one monotonic clock, so an
        # earlier timestamp means reordered or edited lines.
        if self._last_timestamp is not None and timestamp < self._last_timestamp:
            self._violation(
                record,
                f"timestamp {record.data['timestamp']} of fleet {self.report.fleet} is earlier than "
                f"{self._last_timestamp_text} on line {self._last_timestamp_line}",
            )
            return
        self._last_timestamp = timestamp
        self._last_timestamp_text = record.data["timestamp"]
        self._last_timestamp_line = record.line_number

    # Lifecycle

    def _fleet_started(self, record: _Record, timestamp: datetime.datetime) -> None:
        self._started = True
        self.report.max_workers = record.integer("max_workers")

    def _restart(self) -> None:
        """Begin a new process of the same fleet, as after a restart with a journal.

        The new process counts seq from 1 again and holds only the slots that
        its ``spawn.recovered`` events report, so the worker count and the
        launches start over. Requests stay known, so that a recovered request
        can reopen.
        """
        self.report.restarts += 1
        self._last_seq = None
        self._last_timestamp = None
        self._stopped_line = None
        self._own = 0
        self._foreign = 0
        self._unconfirmed = 0
        self._launches.clear()
        for request in self._requests.values():
            request.launch_id = None

    def _fleet_stopped(self, record: _Record, timestamp: datetime.datetime) -> None:
        self._stopped_line = record.line_number
        self.report.stopped = True

    # Requests

    def _request(self, record: _Record, request_id: str) -> _Request:
        request = self._requests.get(request_id)
        if request is None:
            request = _Request(first_line=record.line_number, key=record.data.get("key"))
            self._requests[request_id] = request
            self.report.requests += 1
        return request

    def _end_request(self, record: _Record, request_id: str | None, end: _RequestEnd) -> None:
        if request_id is None:
            return
        request = self._requests.get(request_id)
        if request is None:
            self._violation(record, f"{record.event} for request {request_id}, which was never submitted")
            return
        if request.end is not None:
            self._violation(record, f"{record.event} for request {request_id}, which already ended {request.end.value}")
            return
        request.end = end

    def _spawn_queued(self, record: _Record, timestamp: datetime.datetime) -> None:
        request_id = record.text("request_id")
        known = request_id in self._requests
        request = self._request(record, request_id)
        self.report.queued += 1
        if known:
            self._violation(record, f"spawn.queued for request {request_id}, which was already submitted")
            return
        request.queued_at = timestamp

    def _spawn_joined(self, record: _Record, timestamp: datetime.datetime) -> None:
        request_id = record.text("request_id")
        self.report.joined += 1
        request = self._requests.get(request_id)
        if request is None:
            self._violation(record, f"spawn.joined joins request {request_id}, which was never submitted")
        elif request.end is not None and request.end is not _RequestEnd.SERVED:
            self._violation(record, f"spawn.joined joins request {request_id}, which already ended {request.end.value}")

    def _spawn_cancelled(self, record: _Record, timestamp: datetime.datetime) -> None:
        request_id = record.text("request_id")
        self.report.cancelled += 1
        request = self._requests.get(request_id)
        if request is not None and request.launch_id is not None:
            self._violation(record, f"spawn.cancelled for request {request_id}, which holds launch {request.launch_id}")
        self._end_request(record, request_id, _RequestEnd.CANCELLED)

    # Grants and launches

    def _spawn_granted(self, record: _Record, timestamp: datetime.datetime) -> None:
        request_id = record.text("request_id")
        launch_id = record.text("launch_id")
        reported_active = record.integer("active")
        max_workers = record.integer("max_workers")
        self.report.grants += 1
        request = self._request(record, request_id)

        if request.end is not None:
            self._violation(record, f"spawn.granted for request {request_id}, which already ended {request.end.value}")
        elif request.launch_id is not None:
            self._violation(
                record, f"spawn.granted for request {request_id}, which still holds the slot of launch {request.launch_id}"
            )
        if launch_id in self._launches:
            self._violation(record, f"spawn.granted reuses launch id {launch_id}")
        else:
            self._launches[launch_id] = _Launch(request_id)
        request.launch_id = launch_id

        if request.queued_at is not None and not request.granted_once:
            self.report.waits_s.append((timestamp - request.queued_at).total_seconds())
        request.granted_once = True

        self._own += 1
        self._set_foreign(record)
        self._note_peak(record)
        cap = self.report.max_workers if self.report.max_workers is not None else max_workers
        if max_workers != cap:
            self._violation(record, f"spawn.granted reports max_workers {max_workers}, but fleet.started set {cap}")
        if self._active > cap:
            self._violation(
                record,
                f"spawn.granted for request {request_id} raises active to {self._active}, "
                f"above max_workers {cap} ({self._own} own workers + {self._foreign} foreign)",
            )
        self._check_reported_active(record, reported_active)

    def _spawn_recovered(self, record: _Record, timestamp: datetime.datetime) -> None:
        request_id = record.text("request_id")
        state = record.data.get("state")
        if state not in ("queued", "launching", "running"):
            raise MalformedLineError(
                record.line_number, f"spawn.recovered field 'state' is {state!r}; it must be 'queued', 'launching' or 'running'"
            )
        launch_id = record.optional_text("launch_id") if state == "queued" else record.text("launch_id")
        if state == "running":
            record.text("task_id")
        reported_active = record.integer("active")
        self.report.recovered += 1
        if request_id in self._requests and not self.report.restarts:
            self._violation(record, f"spawn.recovered for request {request_id}, which was already submitted")
            return
        request = self._request(record, request_id)
        # An earlier process of this fleet may have closed the request as
        # cancelled or abandoned. The journal reopens it.
        request.end = None

        if state != "queued" and launch_id is not None:
            if launch_id in self._launches:
                self._violation(record, f"spawn.recovered reuses launch id {launch_id}")
            launch = _Launch(request_id)
            self._launches[launch_id] = launch
            request.launch_id = launch_id
            request.granted_once = True
            self._own += 1
            if state == "running":
                # Served by an earlier process, and its worker still occupies a slot.
                launch.state = _LaunchState.LAUNCHED
                request.end = _RequestEnd.SERVED

        self._set_foreign(record)
        self._note_peak(record)
        self._check_reported_active(record, reported_active)

    def _launch_abandoned(self, record: _Record, timestamp: datetime.datetime) -> None:
        launch_id = record.text("launch_id")
        self.report.abandoned += 1
        launch = self._launch(record, launch_id, _LaunchState.GRANTED)
        if launch is not None:
            self._end_request(record, launch.request_id, _RequestEnd.ABANDONED)

    def _launch(self, record: _Record, launch_id: str, expected: _LaunchState) -> _Launch | None:
        launch = self._launches.get(launch_id)
        if launch is None:
            self._violation(record, f"{record.event} for launch {launch_id}, which was never granted")
            return None
        if launch.state is not expected:
            self._violation(record, f"{record.event} for launch {launch_id}, which is {launch.state.value}, not {expected.value}")
            return None
        return launch

    def _release(self, launch: _Launch, launch_id: str) -> None:
        launch.state = _LaunchState.RELEASED
        self._own -= 1
        request = self._requests.get(launch.request_id)
        if request is not None and request.launch_id == launch_id:
            request.launch_id = None

    def _launch_succeeded(self, record: _Record, timestamp: datetime.datetime) -> None:
        launch_id = record.text("launch_id")
        record.text("task_id")
        launch = self._launch(record, launch_id, _LaunchState.GRANTED)
        if launch is None:
            return
        launch.state = _LaunchState.LAUNCHED
        # A listing that showed this task before its launch returned counted
        # it as foreign; the launch merges it.
        self._note_launch_outcome(record)
        request = self._requests.get(launch.request_id)
        if request is not None and not request.served_once:
            request.served_once = True
            self.report.served += 1
        self._end_request(record, launch.request_id, _RequestEnd.SERVED)

    def _launch_failed(self, record: _Record, timestamp: datetime.datetime) -> None:
        launch_id = record.text("launch_id")
        outcome = record.data.get("outcome")
        if outcome not in ("requeued", "failed"):
            raise MalformedLineError(record.line_number, f"launch.failed field 'outcome' is {outcome!r}; it must be 'requeued' or 'failed'")
        self.report.launch_failures += 1
        launch = self._launch(record, launch_id, _LaunchState.GRANTED)
        if launch is None:
            return
        self._release(launch, launch_id)
        self._note_launch_outcome(record)
        if outcome == "failed":
            self.report.failed += 1
            self._end_request(record, launch.request_id, _RequestEnd.FAILED)
        else:
            self.report.requeued += 1

    def _launch_retrying(self, record: _Record, timestamp: datetime.datetime) -> None:
        self.report.launch_retries += 1

    def _worker_stopped(self, record: _Record, timestamp: datetime.datetime) -> None:
        launch_id = record.optional_text("launch_id")
        record.text("task_id")
        if launch_id is None:
            # A foreign task: the count from the latest listing shrinks by one.
            self.report.foreign_stopped += 1
            self._foreign = max(0, self._foreign - 1)
            self._unconfirmed = min(self._unconfirmed, self._foreign)
            return
        self.report.workers_stopped += 1
        launch = self._launch(record, launch_id, _LaunchState.LAUNCHED)
        if launch is not None:
            self._release(launch, launch_id)

    # Reconciliation

    def _reconcile(self, record: _Record, timestamp: datetime.datetime) -> None:
        if record.event == "reconcile":
            self.report.reconciles += 1
        else:
            self.report.reconcile_failures += 1
        self._set_foreign(record)
        reported_active = record.optional_integer("active")
        self._note_peak(record)
        if reported_active is not None:
            self._check_reported_active(record, reported_active)

    def _check_reported_active(self, record: _Record, reported_active: int) -> None:
        if reported_active != self._active:
            self._violation(
                record,
                f"{record.event} reports active {reported_active}, but the replay counts {self._active} "
                f"({self._own} own workers + {self._foreign} foreign)",
            )

    def _note_launch_outcome(self, record: _Record) -> None:
        # A returned or failed launch can confirm foreign tasks that only it
        # could have started, which raises the peak. A record without a
        # ``foreign`` field leaves the counts as they were.
        if "foreign" in record.data:
            self._set_foreign(record)
            self._note_peak(record)

    def _set_foreign(self, record: _Record) -> None:
        self._foreign = record.integer("foreign")
        # A record without this field counts every foreign task in the peak.
        self._unconfirmed = min(self._foreign, record.optional_integer("unconfirmed") or 0)

    def _note_peak(self, record: _Record) -> None:
        counted = self._active - self._unconfirmed
        if counted > self.report.peak_active:
            self.report.peak_active = counted
            self.report.peak_active_line = record.line_number

    # End of the log

    def finish(self) -> None:
        for request_id, request in self._requests.items():
            if request.end is not None:
                continue
            key = "" if request.key is None else f" (key {request.key})"
            reason = f"request {request_id}{key} never reached an end: not served, failed or cancelled"
            if not self.report.stopped:
                reason += f"; the log has no fleet.stopped for fleet {self.report.fleet}, so it may be cut short"
            self._violations.append(Violation(request.first_line, self.report.fleet, reason))


_HANDLERS = {
    "fleet.started": _FleetReplay._fleet_started,
    "fleet.stopped": _FleetReplay._fleet_stopped,
    "spawn.queued": _FleetReplay._spawn_queued,
    "spawn.joined": _FleetReplay._spawn_joined,
    "spawn.cancelled": _FleetReplay._spawn_cancelled,
    "spawn.granted": _FleetReplay._spawn_granted,
    "spawn.recovered": _FleetReplay._spawn_recovered,
    "launch.abandoned": _FleetReplay._launch_abandoned,
    "launch.succeeded": _FleetReplay._launch_succeeded,
    "launch.failed": _FleetReplay._launch_failed,
    "launch.retrying": _FleetReplay._launch_retrying,
    "worker.stopped": _FleetReplay._worker_stopped,
    "reconcile": _FleetReplay._reconcile,
    "reconcile.failed": _FleetReplay._reconcile,
}


def replay_lines(lines: Iterable[str | bytes]) -> AuditReport:
    """Replay an audit log given as lines and return what it found.

    Line numbers in violations and errors count from 1. Events the replay
    does not know are checked for ``seq`` and ``timestamp`` order and
    otherwise skipped.

    Raises:
        MalformedLineError: A line is not UTF-8, not a JSON object, lacks
            ``event``, ``fleet``, ``seq`` or ``timestamp``, has a timestamp
            that is not UTC, or lacks a field that its event requires. The
            replay stops at that line.
    """
    violations: list[Violation] = []
    fleets: dict[str, _FleetReplay] = {}
    line_number = 0
    for line_number, raw in enumerate(lines, start=1):
        record = _parse_line(line_number, raw)
        fleet = record.data["fleet"]
        replay = fleets.get(fleet)
        if replay is None:
            replay = fleets[fleet] = _FleetReplay(fleet, line_number, violations)
        replay.feed(record)

    for replay in fleets.values():
        replay.finish()
    violations.sort(key=lambda violation: violation.line_number)
    return AuditReport(lines=line_number, fleets=[replay.report for replay in fleets.values()], violations=violations)


def replay_file(path: str | os.PathLike[str]) -> AuditReport:
    """Replay the audit log in the file at ``path``.

    Raises:
        OSError: The file cannot be opened or read.
        MalformedLineError: As for :func:`replay_lines`.
    """
    with open(path, "rb") as file:
        return replay_lines(line.rstrip(b"\r\n") for line in file)
