"""A durable journal of requests and launches, so a restart repeats nothing.

The fleet writes a record before anything depends on it: a submission before
``submit`` returns, a launch id (the client token) before the provisioner is
called, then launch outcomes and request ends. On start, ``open_fleet`` loads
the requests that never ended, queues the waiting ones again, calls
``launch`` again with the same client token for every launch whose outcome
was never recorded, and adopts launched tasks by id.

:class:`SqliteJournal` is the default store. Another store implements the
:class:`Journal` protocol.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, Union

import trio

__all__ = [
    "Ended",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalLockedError",
    "JournalOwnerError",
    "LaunchFailed",
    "LaunchStarted",
    "Launched",
    "Record",
    "SCHEMA_VERSION",
    "SqliteJournal",
    "Submitted",
]

SCHEMA_VERSION = 1


class JournalError(Exception):
    """The journal cannot be used: unreadable, from a newer version, or another fleet's."""


class JournalLockedError(JournalError):
    """Another connection, usually a fleet in another process, has the file open."""


class JournalOwnerError(JournalError):
    """The journal was written by a fleet of another name.

    ``path`` is the file, ``owner`` the fleet name stored in it and
    ``requested`` the name it was opened with.
    """

    def __init__(self, path: str, owner: str | None, requested: str) -> None:
        super().__init__(
            f"journal {path} belongs to fleet {owner!r}, not {requested!r}; "
            f"open it with fleet={owner!r} or use another path"
        )
        self.path = path
        self.owner = owner
        self.requested = requested


# Records, in the order the fleet writes them for one request.


@dataclass(frozen=True, slots=True)
class Submitted:
    request_id: str
    key: str
    priority: int
    overrides: Mapping[str, Any]
    sequence: int
    # Wall-clock seconds since the epoch.
    at: float


@dataclass(frozen=True, slots=True)
class LaunchStarted:
    request_id: str
    launch_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Launched:
    request_id: str
    launch_id: str
    task_id: str


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    """A definite failure: nothing started. ``requeued`` is True when the request waits again."""

    request_id: str
    launch_id: str
    requeued: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Ended:
    request_id: str
    # "stopped", "failed" or "cancelled".
    end: str
    reason: str | None
    at: float


Record = Union[Submitted, LaunchStarted, Launched, LaunchFailed, Ended]


@dataclass(frozen=True)
class JournalEntry:
    """A request that had not ended when the journal was last written."""

    request_id: str
    key: str
    priority: int
    sequence: int
    submitted_at: float
    attempts: int
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # Set while a launch is in flight or its task runs.
    launch_id: str | None = None
    # Set once the launch returned a task id.
    task_id: str | None = None


class Journal(Protocol):
    """Storage for the fleet's records. Methods are called from one task at a time."""

    async def load(self) -> list[JournalEntry]:
        """Open the store and return the requests that have not ended, oldest first."""

    async def write(self, records: Sequence[Record]) -> None:
        """Store ``records`` in order; they must be durable when this returns."""

    async def compact(self, ended_before: float) -> int:
        """Delete requests that ended before ``ended_before`` (epoch seconds); return how many."""

    async def aclose(self) -> None:
        """Release the store."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    priority INTEGER NOT NULL,
    overrides TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    submitted_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    launch_id TEXT,
    task_id TEXT,
    end_state TEXT,
    reason TEXT,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS requests_open ON requests (end_state, sequence);
CREATE INDEX IF NOT EXISTS requests_ended_at ON requests (ended_at);
"""


# The values of Ended.end.
_END_STATES = ("stopped", "failed", "cancelled")

# SQLite keeps its busy timeout as a C int of milliseconds.
_MAX_LOCK_TIMEOUT_S = 2_147_483


def _corrupt(path: str, problem: str) -> JournalError:
    return JournalError(f"journal {path} {problem}; it is corrupt. Move it aside and start with a new path")


def _unreadable(path: str, error: BaseException) -> JournalError:
    return JournalError(
        f"journal {path} cannot be read ({error}); it is not a fleetactor journal or it is corrupt. "
        "Move it aside to keep it for inspection, and start with a new path"
    )


class SqliteJournal:
    """A :class:`Journal` in one SQLite file, in WAL mode with synchronous commits.

    Every call runs in a worker thread, so the trio loop never waits on the
    disk. Each :meth:`write` is one transaction committed with
    ``synchronous=FULL``, because a lost launch record could repeat a launch
    after a crash.

    Args:
        path: The database file; created when missing.
        fleet: Names the fleet that owns the file. Opening a file written by
            another fleet raises :class:`JournalError`, because two fleets
            resuming each other's launches would break both caps.
        lock_timeout: Seconds to wait for another connection to release the
            file before raising :class:`JournalLockedError`.

    An open journal keeps an exclusive lock on the file until
    :meth:`aclose`, so a second journal on the same file, in this or another
    process, cannot resume the same requests at the same time.
    """

    def __init__(self, path: str | os.PathLike[str], *, fleet: str, lock_timeout: float = 2.0) -> None:
        if not isinstance(fleet, str) or not fleet:
            msg = f"SqliteJournal fleet must be a non-empty string, got {fleet!r}"
            raise ValueError(msg)
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, (int, float))
            or not 0 <= lock_timeout <= _MAX_LOCK_TIMEOUT_S
        ):
            msg = f"SqliteJournal lock_timeout must be a number of seconds from 0 to {_MAX_LOCK_TIMEOUT_S}, got {lock_timeout!r}"
            raise ValueError(msg)
        self.path = os.fspath(path)
        self.fleet = fleet
        self.lock_timeout = float(lock_timeout)
        self._connection: sqlite3.Connection | None = None
        self._lock = trio.Lock()

    async def __aenter__(self) -> SqliteJournal:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def load(self) -> list[JournalEntry]:
        async with self._lock:
            return await trio.to_thread.run_sync(self._load_sync)

    async def write(self, records: Sequence[Record]) -> None:
        if not records:
            return
        async with self._lock:
            await trio.to_thread.run_sync(self._write_sync, list(records))

    async def compact(self, ended_before: float) -> int:
        async with self._lock:
            return await trio.to_thread.run_sync(self._compact_sync, ended_before)

    async def finished(self) -> dict[str, str]:
        """Map each job key with no open request to how its latest request ended.

        The values are "stopped", "failed" or "cancelled". Keys whose requests
        were compacted away are absent.
        """
        async with self._lock:
            return await trio.to_thread.run_sync(self._finished_sync)

    async def aclose(self) -> None:
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await trio.to_thread.run_sync(connection.close)

    # Synchronous parts, run in a worker thread.

    def _open_sync(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        self._check_path()
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.lock_timeout
            )
        except sqlite3.Error as error:
            raise _unreadable(self.path, error) from error
        try:
            # The connection keeps an exclusive lock on the file from its
            # first write until it closes, so a second fleet (or a second run
            # of the same command) cannot resume the same requests at once.
            # The operating system drops the lock when the process dies.
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            # One transaction, so a crash while creating the file leaves it
            # empty rather than with tables but no schema version.
            connection.execute("BEGIN IMMEDIATE")
            try:
                self._check_or_create_schema(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except BaseException as error:
            connection.close()
            if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
                msg = (
                    f"journal {self.path} is in use: another connection holds it open, usually a fleet in this "
                    "or another process. Stop that fleet or tool, or wait for it to finish, before resuming; "
                    "give each fleet its own journal"
                )
                raise JournalLockedError(msg) from error
            if isinstance(error, (sqlite3.DatabaseError, UnicodeDecodeError)):
                raise _unreadable(self.path, error) from error
            raise
        self._connection = connection
        return connection

    def _check_path(self) -> None:
        if self.path == "" or self.path == ":memory:":
            msg = f"journal path {self.path!r} is not a file; give the path of a database file"
            raise JournalError(msg)
        if os.path.isdir(self.path):
            msg = f"journal {self.path} is a directory; give the path of a database file inside it"
            raise JournalError(msg)
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            msg = f"journal {self.path} cannot be created: directory {parent} does not exist; create it first"
            raise JournalError(msg)
        # SQLite writes the file and creates its -wal file next to it. A
        # permission problem is not damage, so it must not read as such.
        if os.path.exists(self.path) and not os.access(self.path, os.R_OK | os.W_OK):
            msg = (
                f"journal {self.path} is not readable and writable by this process; fix its permissions "
                "(the journal itself may be intact, so do not move it aside)"
            )
            raise JournalError(msg)
        if not os.access(parent, os.W_OK | os.X_OK):
            msg = (
                f"journal {self.path} cannot be used: this process cannot create files in {parent}, "
                "which SQLite needs for the journal's -wal file; fix the directory's permissions"
            )
            raise JournalError(msg)

    def _check_or_create_schema(self, connection: sqlite3.Connection) -> None:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [("schema_version", str(SCHEMA_VERSION)), ("fleet", self.fleet)],
            )
            return
        if "meta" not in tables or "requests" not in tables:
            msg = f"journal {self.path} is an SQLite database but not a fleetactor journal; use another path"
            raise JournalError(msg)

        meta = dict(connection.execute("SELECT name, value FROM meta"))
        version = meta.get("schema_version", "")
        if not version.isdigit():
            msg = f"journal {self.path} has an invalid schema version {version!r}; move it aside and start with a new path"
            raise JournalError(msg)
        if int(version) > SCHEMA_VERSION:
            msg = (
                f"journal {self.path} has schema version {version}, newer than the {SCHEMA_VERSION} this "
                "fleetactor reads; upgrade fleetactor to resume it"
            )
            raise JournalError(msg)
        owner = meta.get("fleet")
        if owner != self.fleet:
            raise JournalOwnerError(self.path, owner, self.fleet)

    def _load_sync(self) -> list[JournalEntry]:
        connection = self._open_sync()
        try:
            rows = connection.execute(
                "SELECT request_id, key, priority, overrides, sequence, submitted_at, attempts, launch_id, task_id "
                "FROM requests WHERE end_state IS NULL ORDER BY sequence"
            ).fetchall()
            end_states = {row[0] for row in connection.execute("SELECT DISTINCT end_state FROM requests")}
        except (sqlite3.DatabaseError, UnicodeDecodeError) as error:
            raise _unreadable(self.path, error) from error
        unknown = end_states - {None, *_END_STATES}
        if unknown:
            problem = f"has end states {sorted(map(repr, unknown))}, which a fleet never writes, so requests may have been lost"
            raise _corrupt(self.path, problem)
        entries = []
        open_keys: set[str] = set()
        for row in rows:
            request_id, key, priority, overrides, sequence, submitted_at, attempts, launch_id, task_id = row
            self._check_row(row)
            if key in open_keys:
                raise _corrupt(self.path, f"has two open requests for key {key!r}, which a fleet never writes")
            open_keys.add(key)
            try:
                parsed_overrides = json.loads(overrides)
            except ValueError as error:
                msg = f"journal {self.path} has unreadable overrides for request {request_id}: {error}"
                raise JournalError(msg) from error
            if not isinstance(parsed_overrides, dict):
                kind = type(parsed_overrides).__name__
                raise _corrupt(self.path, f"has overrides of type {kind} for request {request_id}, not a JSON object")
            entries.append(
                JournalEntry(
                    request_id=request_id,
                    key=key,
                    priority=priority,
                    sequence=sequence,
                    submitted_at=submitted_at,
                    attempts=attempts,
                    overrides=parsed_overrides,
                    launch_id=launch_id,
                    task_id=task_id,
                )
            )
        return entries

    def _check_row(self, row: tuple[Any, ...]) -> None:
        expected = (
            ("request_id", str),
            ("key", str),
            ("priority", int),
            ("overrides", str),
            ("sequence", int),
            ("submitted_at", (int, float)),
            ("attempts", int),
            ("launch_id", (str, type(None))),
            ("task_id", (str, type(None))),
        )
        for (column, types), value in zip(expected, row):
            if isinstance(value, bool) or not isinstance(value, types):
                self._reject_value(column, value)
        request_id, key, _, _, _, submitted_at, attempts, launch_id, _ = row
        if not request_id:
            self._reject_value("request_id", request_id)
        if not key:
            self._reject_value("key", key)
        if not math.isfinite(submitted_at):
            self._reject_value("submitted_at", submitted_at)
        if attempts < 0:
            self._reject_value("attempts", attempts)
        # The launch id is also the RunTask client token: 1 to 64 characters.
        if launch_id is not None and not 1 <= len(launch_id) <= 64:
            self._reject_value("launch_id", launch_id)

    def _reject_value(self, column: str, value: Any) -> NoReturn:
        problem = f"has {column} {value!r} ({type(value).__name__}) in an open request, which a fleet never writes"
        raise _corrupt(self.path, problem)

    def _write_sync(self, records: list[Record]) -> None:
        connection = self._open_sync()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                self._apply(connection, record)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @staticmethod
    def _apply(connection: sqlite3.Connection, record: Record) -> None:
        if isinstance(record, Submitted):
            connection.execute(
                "INSERT OR IGNORE INTO requests (request_id, key, priority, overrides, sequence, submitted_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.request_id,
                    record.key,
                    record.priority,
                    json.dumps(dict(record.overrides), sort_keys=True, default=str),
                    record.sequence,
                    record.at,
                ),
            )
        elif isinstance(record, LaunchStarted):
            connection.execute(
                "UPDATE requests SET launch_id = ?, task_id = NULL, attempts = ? WHERE request_id = ?",
                (record.launch_id, record.attempt, record.request_id),
            )
        elif isinstance(record, Launched):
            connection.execute(
                "UPDATE requests SET task_id = ? WHERE request_id = ? AND launch_id = ?",
                (record.task_id, record.request_id, record.launch_id),
            )
        elif isinstance(record, LaunchFailed):
            connection.execute(
                "UPDATE requests SET launch_id = NULL, task_id = NULL, reason = ? WHERE request_id = ? AND launch_id = ?",
                (record.reason, record.request_id, record.launch_id),
            )
        elif isinstance(record, Ended):
            connection.execute(
                "UPDATE requests SET end_state = ?, reason = ?, ended_at = ? WHERE request_id = ?",
                (record.end, record.reason, record.at, record.request_id),
            )
        else:
            msg = f"unknown journal record {record!r}"
            raise TypeError(msg)

    def _finished_sync(self) -> dict[str, str]:
        connection = self._open_sync()
        rows = connection.execute(
            "SELECT key, end_state FROM requests AS ended WHERE end_state IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM requests AS open WHERE open.key = ended.key AND open.end_state IS NULL) "
            "ORDER BY sequence"
        )
        # Later rows overwrite earlier ones, so each key keeps its latest end.
        return {key: end_state for key, end_state in rows}

    def _compact_sync(self, ended_before: float) -> int:
        connection = self._open_sync()
        cursor = connection.execute(
            "DELETE FROM requests WHERE end_state IS NOT NULL AND ended_at < ?", (ended_before,)
        )
        return cursor.rowcount


class JournalWriter:
    """Writes records in the order they were queued, batching what is waiting.

    The actor queues records without waiting. A caller that must not go on
    before a record is durable passes an event and waits for it.
    """

    def __init__(self, journal: Journal, *, retention: float, compact_interval: float = 300.0) -> None:
        self.journal = journal
        self.retention = retention
        self.compact_interval = compact_interval
        self._send, self._receive = trio.open_memory_channel[tuple[Record, Union[trio.Event, None]]](math.inf)
        self.flushed = trio.Event()
        self.records_written = 0

    def enqueue(self, record: Record, done: trio.Event | None = None) -> None:
        self._send.send_nowait((record, done))

    async def write(self, record: Record) -> None:
        """Queue ``record`` and wait until it is durable."""
        done = trio.Event()
        self.enqueue(record, done)
        await done.wait()

    def close(self) -> None:
        self._send.close()

    async def run(self) -> None:
        """Write until :meth:`close` is called and every queued record is written.

        Ended requests older than the retention are deleted after the first
        batch, then at most every ``compact_interval`` seconds, and once more
        at the end.
        """
        next_compaction = trio.current_time()
        async with self._receive:
            async for first in self._receive:
                batch = [first]
                while True:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self.journal.write([record for record, _ in batch])
                self.records_written += len(batch)
                for _, done in batch:
                    if done is not None:
                        done.set()
                if trio.current_time() >= next_compaction:
                    await self.journal.compact(time.time() - self.retention)
                    next_compaction = trio.current_time() + self.compact_interval
        await self.journal.compact(time.time() - self.retention)
        self.flushed.set()
