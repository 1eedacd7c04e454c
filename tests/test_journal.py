"""The durable journal: restarts lose no request and repeat no launch."""

import contextlib
import math
import os
import sqlite3

import pytest
import trio

from fleetactor import FleetConfig, Job, JournalError, SqliteJournal, open_fleet
from fleetactor.journal import JournalLockedError, Submitted
from fleetactor.testing import FakeProvisioner


def config(**overrides):
    return FleetConfig(**{"max_workers": 1, "reconcile_interval": 5, "visibility_timeout": 20, **overrides})


class CrashingProvisioner:
    """Delegates to a FakeProvisioner and cancels ``scope`` at one point of ``launch``.

    Cancelling the scope around ``open_fleet`` stops the fleet without a
    graceful shutdown, as a killed process would.
    """

    def __init__(self, inner, crash_at):
        self.inner = inner
        self.crash_at = crash_at
        self.scope = None

    async def launch(self, job, *, client_token):
        if self.crash_at == "before launch":
            self.scope.cancel()
            await trio.sleep_forever()
        task_id = await self.inner.launch(job, client_token=client_token)
        if self.crash_at == "after launch":
            self.scope.cancel()
            await trio.sleep_forever()
        return task_id

    async def list_running(self):
        return await self.inner.list_running()

    async def describe(self, task_ids):
        return await self.inner.describe(task_ids)


@pytest.mark.parametrize("crash_at", ["before launch", "after launch"])
async def test_crash_around_launch_one_task(tmp_path, journal_clock, crash_at):
    provisioner = FakeProvisioner(run_time=30)
    crashing = CrashingProvisioner(provisioner, crash_at)
    path = tmp_path / "journal.db"

    async with SqliteJournal(path, fleet="test") as journal:
        with trio.CancelScope() as scope:
            crashing.scope = scope
            async with open_fleet(crashing, config(), journal=journal) as fleet:
                await trio.sleep(0.01)
                await fleet.submit(Job("a"))
                await trio.sleep_forever()
    tasks_after_crash = len(provisioner.tasks)

    async with SqliteJournal(path, fleet="test") as journal:
        async with open_fleet(provisioner, config(), journal=journal) as fleet:
            ticket = fleet.ticket("a")
            assert ticket is not None
            await ticket.wait_finished()

    assert tasks_after_crash == (1 if crash_at == "after launch" else 0)
    assert len(provisioner.tasks) == 1
    token = next(iter(provisioner.calls.launch_by_token))
    assert provisioner.tasks_for_token(token) == 1
    assert provisioner.calls.launch_by_token[token] == (2 if crash_at == "after launch" else 1)


async def test_restart_resumes_queue_and_adopts(tmp_path, journal_clock):
    provisioner = FakeProvisioner(run_time=None)
    path = tmp_path / "journal.db"

    async with SqliteJournal(path, fleet="test") as journal:
        async with open_fleet(provisioner, config(), journal=journal) as fleet:
            await trio.sleep(0.01)
            running = await fleet.submit(Job("running"))
            task_id = await running.wait_started()
            for key in ("waiting-1", "waiting-2"):
                await fleet.submit(Job(key, overrides={"command": ["echo", key]}))

    async with SqliteJournal(path, fleet="test") as journal:
        async with open_fleet(provisioner, config(), journal=journal) as fleet:
            adopted = fleet.ticket("running")
            waiting = fleet.ticket("waiting-1")
            await trio.sleep(10)
            before_stop = provisioner.calls.launch
            provisioner.stop(task_id)
            await waiting.wait_started()
            statistics = fleet.statistics()

    assert adopted.task_id == task_id
    assert waiting.decision == "queued"
    assert waiting.job.overrides["command"] == ["echo", "waiting-1"]
    assert before_stop == 1
    assert provisioner.calls.launch == 2
    assert provisioner.tasks[waiting.task_id].job.key == "waiting-1"
    assert statistics.submitted == 3


async def test_finished_requests_not_resumed(tmp_path, journal_clock):
    provisioner = FakeProvisioner(run_time=10)
    path = tmp_path / "journal.db"
    async with SqliteJournal(path, fleet="test") as journal:
        async with open_fleet(provisioner, config(), journal=journal) as fleet:
            await trio.sleep(0.01)
            ticket = await fleet.submit(Job("done"))
            await ticket.wait_finished()

    async with SqliteJournal(path, fleet="test") as journal:
        assert await journal.load() == []


async def test_compaction_drops_ended(tmp_path, journal_clock):
    provisioner = FakeProvisioner(run_time=10)
    path = tmp_path / "journal.db"
    async with SqliteJournal(path, fleet="test") as journal:
        async with open_fleet(provisioner, config(journal_retention=0), journal=journal) as fleet:
            await trio.sleep(0.01)
            for key in ("a", "b"):
                ticket = await fleet.submit(Job(key))
                await ticket.wait_finished()
            await fleet.submit(Job("c"))

    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        keys = [row[0] for row in connection.execute("SELECT key FROM requests")]
    assert keys == ["c"]


async def test_corrupt_journal_rejected(tmp_path):
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not a database" * 100)
    journal = SqliteJournal(path, fleet="test")
    with pytest.raises(JournalError, match=r"journal .*journal.db cannot be read .*Move it aside"):
        async with open_fleet(FakeProvisioner(), config(), journal=journal):
            pass
    assert path.read_bytes().startswith(b"this is not a database")


async def test_future_schema_rejected(tmp_path):
    path = tmp_path / "journal.db"
    async with SqliteJournal(path, fleet="test") as journal:
        await journal.load()
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(JournalError, match=r"schema version 99, newer than the 1 .*upgrade fleetactor"):
        await SqliteJournal(path, fleet="test").load()


async def test_other_fleet_rejected(tmp_path):
    path = tmp_path / "journal.db"
    async with SqliteJournal(path, fleet="alpha") as journal:
        await journal.load()
    with pytest.raises(JournalError, match=r"belongs to fleet 'alpha', not 'beta'; open it with fleet='alpha'"):
        await SqliteJournal(path, fleet="beta").load()


async def test_foreign_sqlite_file_rejected(tmp_path):
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(JournalError, match="not a fleetactor journal"):
        await SqliteJournal(path, fleet="test").load()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", r"journal path '' is not a file"),
        ("missing/fleet.db", r"directory .*missing does not exist; create it first"),
        (".", r"is a directory; give the path of a database file inside it"),
    ],
)
async def test_unusable_path_rejected(tmp_path, monkeypatch, name, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JournalError, match=message):
        await SqliteJournal(name, fleet="test").load()


async def test_second_open_journal_rejected(tmp_path):
    path = tmp_path / "journal.db"
    async with SqliteJournal(path, fleet="test") as journal:
        await journal.load()
        with pytest.raises(JournalLockedError, match=r"journal .*journal.db is in use: .*give each fleet its own journal"):
            await SqliteJournal(path, fleet="test", lock_timeout=0).load()

    # Closing the first journal releases the file.
    async with SqliteJournal(path, fleet="test", lock_timeout=0) as journal:
        assert await journal.load() == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("UPDATE requests SET key = CAST(X'ff00fe' AS TEXT)", r"cannot be read"),
        ("UPDATE requests SET priority = 'high'", r"priority 'high' \(str\) in an open request"),
        ("UPDATE requests SET sequence = 'first'", r"sequence 'first' \(str\) in an open request"),
        ("UPDATE requests SET overrides = '[1, 2]'", r"overrides of type list for request"),
        ("UPDATE requests SET key = ''", r"key '' \(str\) in an open request"),
        ("UPDATE requests SET attempts = -3", r"attempts -3 \(int\) in an open request"),
        ("UPDATE requests SET launch_id = ''", r"launch_id '' \(str\) in an open request"),
        ("UPDATE requests SET submitted_at = 9e999", r"submitted_at inf \(float\) in an open request"),
        ("INSERT INTO requests SELECT 'other', 'b', priority, overrides, sequence + 1, submitted_at, attempts, "
         "launch_id, task_id, 'bogus', reason, ended_at FROM requests", r"end states \[\"'bogus'\"\], which a fleet never writes"),
        ("INSERT INTO requests SELECT 'copy', key, priority, overrides, sequence + 1, submitted_at, attempts, "
         "launch_id, task_id, end_state, reason, ended_at FROM requests", r"two open requests for key 'a'"),
    ],
)
async def test_damaged_rows_rejected(tmp_path, damage, message):
    path = tmp_path / "journal.db"
    async with SqliteJournal(path, fleet="test") as journal:
        await journal.write([Submitted("r1", "a", 0, {}, 1, 0.0)])
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(damage)

    with pytest.raises(JournalError, match=message):
        async with open_fleet(FakeProvisioner(), config(), journal=SqliteJournal(path, fleet="test")):
            pass


@pytest.mark.parametrize("lock_timeout", [-1, math.nan, math.inf, 2_147_484, True, "1"])
def test_invalid_lock_timeout_rejected(tmp_path, lock_timeout):
    with pytest.raises(ValueError, match=r"lock_timeout must be a number of seconds from 0 to 2147483"):
        SqliteJournal(tmp_path / "journal.db", fleet="test", lock_timeout=lock_timeout)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_read_only_journal_not_called_corrupt(tmp_path):
    path = tmp_path / "journal.db"
    async with SqliteJournal(path, fleet="test") as journal:
        await journal.load()
    path.chmod(0o444)

    with pytest.raises(JournalError, match=r"not readable and writable by this process; fix its permissions"):
        await SqliteJournal(path, fleet="test").load()
