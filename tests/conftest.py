import os

import pytest
import structlog
import trio
import trio.testing

# botocore must never look for instance metadata or real credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def drop_event(logger, method_name, event_dict):
    raise structlog.DropEvent


# Tests read events through structlog.testing.capture_logs, which replaces
# these processors; everything else would only clutter the output.
structlog.configure(processors=[drop_event])


@pytest.fixture
def journal_clock(monkeypatch):
    """Run SQLite calls of a SqliteJournal on the trio thread and return an autojump clock.

    SqliteJournal runs SQLite through trio.to_thread.run_sync. An autojump
    clock jumps whenever every task waits, including a wait for a worker
    thread, so a commit slowed by a busy machine could move virtual time past
    reconcile intervals and the fleet's shutdown timeout. Run inline, the
    calls leave virtual time unchanged however long they take.
    """

    async def run_inline(function, *args, **options):
        await trio.lowlevel.checkpoint()
        return function(*args)

    monkeypatch.setattr(trio.to_thread, "run_sync", run_inline)
    return trio.testing.MockClock(autojump_threshold=0)
