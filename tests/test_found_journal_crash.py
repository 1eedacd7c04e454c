"""A journal whose creating process died must still open on the next run."""

import subprocess
import sys
import textwrap

import trio

from fleetactor import SqliteJournal

# Runs in a child process: create a journal, but die (as kill -9 would) just
# before the row with the schema version and the fleet name is inserted. The
# tables are already committed then, because the schema script runs in
# autocommit mode.
CRASH_BEFORE_META_ROWS = textwrap.dedent(
    """
    import os, sqlite3, sys
    import trio
    import fleetactor.journal as journal_module

    class CrashingConnection(sqlite3.Connection):
        def executemany(self, sql, parameters):
            if "INSERT INTO meta" in sql:
                os._exit(137)
            return super().executemany(sql, parameters)

    real_connect = sqlite3.connect

    def connect(*arguments, **keywords):
        return real_connect(*arguments, factory=CrashingConnection, **keywords)

    journal_module.sqlite3.connect = connect

    async def main():
        await journal_module.SqliteJournal(sys.argv[1], fleet="file-workers").load()

    trio.run(main)
    """
)


async def test_journal_opens_after_crash_during_creation(tmp_path):
    path = tmp_path / "fleet.db"
    child = await trio.run_process(
        [sys.executable, "-c", CRASH_BEFORE_META_ROWS, str(path)], check=False, capture_stderr=True
    )
    assert child.returncode == 137, child.stderr.decode()

    # The child recorded no request, so the rerun must find an empty journal.
    async with SqliteJournal(path, fleet="file-workers") as journal:
        assert await journal.load() == []
