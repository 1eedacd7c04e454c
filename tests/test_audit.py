"""The audit log replay, on logs that real fleets wrote in virtual time."""

import contextlib
import json
import math

import pytest
import trio

from fleetactor import FleetConfig, Job, LaunchFailedError, LaunchRejected, SqliteJournal, open_fleet
from fleetactor.audit import MalformedLineError, percentile, replay_file, replay_lines
from fleetactor.cli import main
from fleetactor.cli._logging import configure_logging
from fleetactor.testing import FakeProvisioner


def fleet_config(**overrides):
    settings = {"max_workers": 16, "reconcile_interval": 5, "visibility_timeout": 30, "seed": 1}
    settings.update(overrides)
    return FleetConfig(**settings)


async def run_burst(provisioner, config, requests, prefix="job"):
    async with open_fleet(provisioner, config) as fleet:
        await trio.sleep(0.1)
        tickets = [await fleet.submit(Job(key=f"{prefix}-{index}")) for index in range(requests)]
        for ticket in tickets:
            with contextlib.suppress(LaunchFailedError):
                await ticket.wait_finished()


async def record_burst(path, provisioner=None, requests=24, **overrides):
    provisioner = provisioner or FakeProvisioner(list_lag=8, run_time=60)
    with configure_logging(path):
        await run_burst(provisioner, fleet_config(**overrides), requests)
    return provisioner


def read_records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_records(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def renumber(records):
    """Give every record of each fleet consecutive seq numbers, in file order."""
    counters = {}
    for record in records:
        counters[record["fleet"]] = counters.get(record["fleet"], 0) + 1
        record["seq"] = counters[record["fleet"]]


@pytest.fixture
async def burst_log(tmp_path):
    # pytest-trio picks the clock from the test's own arguments, so each test
    # that uses this fixture also requests autojump_clock.
    path = tmp_path / "audit.jsonl"
    await record_burst(path)
    return path


# Logs that pass


async def test_burst_log_passes(burst_log, autojump_clock):
    report = replay_file(burst_log)

    assert report.ok, report.violations
    [fleet] = report.fleets
    assert fleet.max_workers == 16
    assert fleet.requests == 24
    assert fleet.grants == 24
    assert fleet.queued == 8
    assert fleet.served == 24
    assert fleet.workers_stopped == 24
    assert fleet.peak_active == 16
    assert fleet.stopped


async def test_waits_measured_from_timestamps(burst_log, autojump_clock):
    [fleet] = replay_file(burst_log).fleets

    # Workers run 60 s from their launch at 0.1 s. Queued requests wait for
    # the first stop, which the reaper detects within one reconcile interval.
    assert len(fleet.waits_s) == 8
    assert all(59.9 <= wait <= 66 for wait in fleet.waits_s)
    assert percentile(fleet.waits_s, 0.5) <= max(fleet.waits_s)


async def test_foreign_tasks_counted(tmp_path, autojump_clock):
    path = tmp_path / "audit.jsonl"
    provisioner = FakeProvisioner(list_lag=8, run_time=60)
    provisioner.add_foreign_task(run_time=30)
    provisioner.add_foreign_task(run_time=30)
    await record_burst(path, provisioner, requests=20)

    report = replay_file(path)

    assert report.ok, report.violations
    assert report.fleets[0].foreign_stopped == 2
    assert report.fleets[0].peak_active == 16
    assert provisioner.true_peak(include_foreign=True) == 16


async def test_failures_and_retries_pass(tmp_path, autojump_clock):
    path = tmp_path / "audit.jsonl"
    calls = {"launch": 0, "lost": 0}

    def launch_error(job, client_token):
        calls["launch"] += 1
        if job.key == "job-3":
            return LaunchRejected("invalid task definition", retryable=False)
        if calls["launch"] % 4 == 0:
            return LaunchRejected("capacity is unavailable", retryable=True)
        return None

    def lost_response(job, client_token):
        calls["lost"] += 1
        return TimeoutError("read timed out") if calls["lost"] % 5 == 0 else None

    provisioner = FakeProvisioner(list_lag=8, run_time=60, launch_error=launch_error, lost_response=lost_response)
    await record_burst(path, provisioner, requests=24)

    report = replay_file(path)

    assert report.ok, report.violations
    fleet = report.fleets[0]
    assert fleet.failed == 1
    assert fleet.served == 23
    assert fleet.requeued >= 1
    assert fleet.launch_failures == fleet.requeued + fleet.failed
    assert fleet.launch_retries >= 1
    assert fleet.peak_active <= 16


async def test_two_fleets_in_one_file(tmp_path, autojump_clock):
    path = tmp_path / "audit.jsonl"
    with configure_logging(path):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_burst, FakeProvisioner(list_lag=8), fleet_config(max_workers=4, fleet_id="left"), 6, "left")
            nursery.start_soon(run_burst, FakeProvisioner(list_lag=8), fleet_config(max_workers=3, fleet_id="right"), 5, "right")

    report = replay_file(path)

    assert report.ok, report.violations
    fleets = {fleet.fleet: fleet for fleet in report.fleets}
    assert fleets["left"].peak_active == 4
    assert fleets["right"].peak_active == 3
    assert fleets["left"].served == 6
    assert fleets["right"].served == 5


async def test_restart_with_journal_passes(tmp_path, journal_clock):
    # The first process closes with one worker running and two requests
    # queued. The second recovers all three from the journal into the same
    # log and serves them.
    path = tmp_path / "audit.jsonl"
    provisioner = FakeProvisioner(run_time=30)
    config = fleet_config(max_workers=1, fleet_id="restarted")
    keys = ("running", "waiting-1", "waiting-2")
    with configure_logging(path):
        async with SqliteJournal(tmp_path / "journal.db", fleet="restarted") as journal:
            async with open_fleet(provisioner, config, journal=journal) as fleet:
                await trio.sleep(0.1)
                for key in keys:
                    await fleet.submit(Job(key))
        async with SqliteJournal(tmp_path / "journal.db", fleet="restarted") as journal:
            async with open_fleet(provisioner, config, journal=journal) as fleet:
                tickets = [fleet.ticket(key) for key in keys]
                for ticket in tickets:
                    await ticket.wait_finished()

    report = replay_file(path)

    assert report.ok, report.violations
    [fleet] = report.fleets
    assert fleet.restarts == 1
    assert fleet.recovered == 3
    assert fleet.served == 3
    assert fleet.peak_active == 1
    assert provisioner.true_peak() == 1


async def test_restart_keeps_cap_check(tmp_path, journal_clock):
    # A grant in the second process that ignores a recovered worker breaks the cap.
    path = tmp_path / "audit.jsonl"
    config = fleet_config(max_workers=1, fleet_id="restarted")
    with configure_logging(path):
        async with SqliteJournal(tmp_path / "journal.db", fleet="restarted") as journal:
            async with open_fleet(FakeProvisioner(run_time=None), config, journal=journal) as fleet:
                await trio.sleep(0.1)
                await fleet.submit(Job("running"))
                await trio.sleep(1)
        async with SqliteJournal(tmp_path / "journal.db", fleet="restarted") as journal:
            async with open_fleet(FakeProvisioner(run_time=None), config, journal=journal):
                await trio.sleep(1)
    records = read_records(path)
    recovered = next(index for index, record in enumerate(records) if record["event"] == "spawn.recovered")
    extra = {
        "event": "spawn.granted",
        "timestamp": records[recovered]["timestamp"],
        "fleet": "restarted",
        "request_id": "extra-request",
        "launch_id": "extra-launch",
        "active": 2,
        "foreign": 0,
        "max_workers": 1,
    }
    records.insert(recovered + 1, extra)
    renumber_from = records[recovered]["seq"]
    for offset, record in enumerate(records[recovered + 1 :], start=1):
        record["seq"] = renumber_from + offset
    tampered = tmp_path / "tampered.jsonl"
    write_records(tampered, records)

    report = replay_file(tampered)

    assert report.violations[0].line_number == recovered + 2
    assert "raises active to 2, above max_workers 1" in report.violations[0].reason


# Logs that fail


async def test_extra_grant_past_cap_fails(burst_log, tmp_path, autojump_clock):
    records = read_records(burst_log)
    full_grant = next(
        index for index, record in enumerate(records) if record["event"] == "spawn.granted" and record["active"] == 16
    )
    extra = dict(records[full_grant], request_id="extra-request", launch_id="extra-launch", key="extra", active=17, pending=17)
    records.insert(full_grant + 1, extra)
    renumber(records)
    tampered = tmp_path / "tampered.jsonl"
    write_records(tampered, records)

    report = replay_file(tampered)

    assert not report.ok
    first = report.violations[0]
    assert first.line_number == full_grant + 2
    assert "raises active to 17, above max_workers 16" in first.reason


async def test_wrong_reported_active_fails(burst_log, tmp_path, autojump_clock):
    records = read_records(burst_log)
    grant = next(index for index, record in enumerate(records) if record["event"] == "spawn.granted")
    records[grant]["active"] += 3
    tampered = tmp_path / "tampered.jsonl"
    write_records(tampered, records)

    report = replay_file(tampered)

    assert report.violations[0].line_number == grant + 1
    assert "reports active 4, but the replay counts 1" in report.violations[0].reason


async def test_dropped_release_fails(burst_log, tmp_path, autojump_clock):
    # Without the first worker.stopped, the replay still counts that worker,
    # so the next grant reports one active worker fewer than the replay.
    records = read_records(burst_log)
    stop = next(index for index, record in enumerate(records) if record["event"] == "worker.stopped")
    del records[stop]
    renumber(records)
    tampered = tmp_path / "tampered.jsonl"
    write_records(tampered, records)

    report = replay_file(tampered)

    assert not report.ok
    first = report.violations[0]
    assert records[first.line_number - 1]["event"] == "spawn.granted"
    assert f"reports active {records[first.line_number - 1]['active']}, but the replay counts" in first.reason


async def test_seq_not_increasing_fails(burst_log, tmp_path, autojump_clock):
    records = read_records(burst_log)
    records[5]["seq"] = records[4]["seq"]
    tampered = tmp_path / "tampered.jsonl"
    write_records(tampered, records)

    report = replay_file(tampered)

    assert report.violations[0].line_number == 6
    assert f"seq {records[4]['seq']} of fleet" in report.violations[0].reason
    assert "does not increase" in report.violations[0].reason


async def test_cut_log_reports_open_requests(burst_log, tmp_path, autojump_clock):
    records = read_records(burst_log)
    grants = [index for index, record in enumerate(records) if record["event"] == "spawn.granted"]
    tampered = tmp_path / "tampered.jsonl"
    write_records(tampered, records[: grants[0] + 1])

    report = replay_file(tampered)

    assert [violation.line_number for violation in report.violations] == [grants[0] + 1]
    assert "never reached an end" in report.violations[0].reason
    assert "no fleet.stopped" in report.violations[0].reason


async def test_double_release_fails(burst_log, tmp_path, autojump_clock):
    records = read_records(burst_log)
    stop = next(index for index, record in enumerate(records) if record["event"] == "worker.stopped")
    records.insert(stop + 1, dict(records[stop]))
    renumber(records)
    tampered = tmp_path / "tampered.jsonl"
    write_records(tampered, records)

    report = replay_file(tampered)

    assert report.violations[0].line_number == stop + 2
    assert "which is released, not launched" in report.violations[0].reason


def test_missing_fleet_started_fails():
    line = json.dumps(
        {"event": "reconcile", "fleet": "f", "seq": 1, "timestamp": "2026-01-01T00:00:00Z", "foreign": 0, "active": 0}
    )

    report = replay_lines([line])

    assert report.violations[0].line_number == 1
    assert "before fleet.started" in report.violations[0].reason


# Malformed lines


def started(**overrides):
    record = {"event": "fleet.started", "fleet": "f", "seq": 1, "timestamp": "2026-01-01T00:00:00Z", "max_workers": 2}
    record.update(overrides)
    return json.dumps(record)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        (started(seq=None), "'seq' is None"),
        (started(seq=True), "'seq' is True"),
        (started(fleet=""), "no 'fleet' string"),
        (started(event=7), "no 'event' string"),
        (started(timestamp="yesterday"), "'timestamp' is 'yesterday'"),
        (started(timestamp="2026-01-01T00:00:00"), "'timestamp' is '2026-01-01T00:00:00'; it must be an ISO 8601 string in UTC"),
        (started(timestamp="2026-01-01T02:00:00+02:00"), "'timestamp' is '2026-01-01T02:00:00+02:00'; it must be"),
        (started(timestamp="2026-01-01Z"), "'timestamp' is '2026-01-01Z'"),
        (started(timestamp=1767225600), "'timestamp' is 1767225600"),
        (started(max_workers="16"), "field 'max_workers' is '16'"),
    ],
)
def test_malformed_line_rejected(line, reason):
    with pytest.raises(MalformedLineError) as caught:
        replay_lines([started(), line])

    assert caught.value.line_number == 2
    assert reason in caught.value.reason


def test_grant_without_active_rejected():
    grant = json.loads(started(seq=2))
    grant.update(event="spawn.granted", request_id="r", launch_id="l", foreign=0)
    grant.pop("max_workers")

    with pytest.raises(MalformedLineError, match=r"^line 2: spawn.granted has no 'active' field"):
        replay_lines([started(), json.dumps(grant)])


def test_invalid_utf8_rejected():
    with pytest.raises(MalformedLineError, match=r"^line 1: not UTF-8"):
        replay_lines([b"\xff\xfe{}"])


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        replay_file(tmp_path / "absent.jsonl")


# Percentiles


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, None),
        ([3.0], 0.95, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(value) for value in range(1, 101)], 0.95, 95.0),
        ([5.0, 1.0, 3.0], 1.0, 5.0),
        ([5.0, 1.0, 3.0], 0.0, 1.0),
    ],
)
def test_percentile_nearest_rank(values, fraction, expected):
    assert percentile(values, fraction) == expected


def test_blind_list_log_passes():
    # A log written by hand: two grants under a cap of 2, one queued request
    # granted after a stop, every request ending.
    def record(seq, event, **fields):
        return json.dumps({"event": event, "fleet": "f", "seq": seq, "timestamp": f"2026-01-01T00:00:{seq:02d}Z", **fields})

    counts = {"visible": 0, "pending": 0, "foreign": 0, "queued": 0, "max_workers": 2}
    lines = [
        record(1, "fleet.started", max_workers=2),
        record(2, "reconcile", listed=0, **counts, active=0),
        record(3, "spawn.granted", request_id="a", launch_id="la", key="a", attempt=1, **{**counts, "active": 1}),
        record(4, "spawn.granted", request_id="b", launch_id="lb", key="b", attempt=1, **{**counts, "active": 2}),
        record(5, "spawn.queued", request_id="c", key="c", priority=0, active=2, queued=1, max_workers=2),
        record(6, "launch.succeeded", launch_id="la", task_id="ta", request_id="a"),
        record(7, "launch.failed", launch_id="lb", request_id="b", reason="no", retryable=False, outcome="failed", attempt=1, active=1),
        record(8, "spawn.granted", request_id="c", launch_id="lc", key="c", attempt=1, **{**counts, "active": 2}),
        record(9, "launch.succeeded", launch_id="lc", task_id="tc", request_id="c"),
        record(10, "worker.stopped", launch_id="la", task_id="ta", status="STOPPED", request_id="a", active=1),
        record(11, "fleet.stopped", submitted=3, granted=3, served=2, failed=1, cancelled=0, stopped=1, peak_active=2),
    ]

    report = replay_lines(lines)

    assert report.ok, report.violations
    assert report.fleets[0].waits_s == [3.0]
    assert report.fleets[0].failed == 1
    assert report.fleets[0].peak_active == 2
    assert math.isclose(percentile(report.fleets[0].waits_s, 0.95), 3.0)


def test_foreign_peak_noted(tmp_path, capsys):
    # A listing finds a task that matches no launch while both slots are
    # granted: active 3 under a cap of 2, but no grant caused it.
    def record(seq, event, **fields):
        return json.dumps({"event": event, "fleet": "f", "seq": seq, "timestamp": f"2026-01-01T00:00:{seq:02d}Z", **fields})

    counts = {"visible": 0, "pending": 0, "foreign": 0, "queued": 0, "max_workers": 2}
    lines = [
        record(1, "fleet.started", max_workers=2),
        record(2, "reconcile", listed=0, **counts, active=0),
        record(3, "spawn.granted", request_id="a", launch_id="la", key="a", attempt=1, **{**counts, "active": 1}),
        record(4, "spawn.granted", request_id="b", launch_id="lb", key="b", attempt=1, **{**counts, "active": 2}),
        record(5, "launch.succeeded", launch_id="la", task_id="ta", request_id="a"),
        record(6, "launch.succeeded", launch_id="lb", task_id="tb", request_id="b"),
        record(7, "reconcile", listed=1, **{**counts, "foreign": 1, "active": 3}),
        record(8, "fleet.stopped", submitted=2, granted=2, served=2, failed=0, cancelled=0, stopped=0, peak_active=3),
    ]
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n")

    report = replay_file(path)
    status = main(["audit", str(path)])

    output = capsys.readouterr().out
    assert report.ok, report.violations
    assert report.fleets[0].peak_active == 3
    assert report.fleets[0].peak_active_line == 7
    assert status == 0
    assert "note: active reached 3 on line 7, above max_workers 2" in output




def _record(seq, event, **fields):
    """Return one audit line of fleet "f", with a timestamp of seq seconds."""
    return json.dumps({"event": event, "fleet": "f", "seq": seq, "timestamp": f"2026-01-01T00:00:{seq:02d}Z", **fields})


def test_peak_skips_unconfirmed_foreign():
    # A listing shows the task of launch lb before RunTask returns. The
    # fleet counts it as foreign and unconfirmed, then the launch merges it.
    counts = {"visible": 0, "pending": 0, "foreign": 0, "unconfirmed": 0, "queued": 0, "max_workers": 2}
    lines = [
        _record(1, "fleet.started", max_workers=2),
        _record(2, "reconcile", listed=0, **counts, active=0),
        _record(3, "spawn.granted", request_id="a", launch_id="la", key="a", attempt=1, **{**counts, "active": 1}),
        _record(4, "spawn.granted", request_id="b", launch_id="lb", key="b", attempt=1, **{**counts, "active": 2}),
        _record(5, "launch.succeeded", launch_id="la", task_id="ta", request_id="a", active=2, foreign=0, unconfirmed=0),
        _record(6, "reconcile", listed=1, **{**counts, "foreign": 1, "unconfirmed": 1, "active": 3}),
        _record(7, "launch.succeeded", launch_id="lb", task_id="tb", request_id="b", active=2, foreign=0, unconfirmed=0),
        _record(8, "reconcile", listed=2, **{**counts, "visible": 2, "active": 2}),
        _record(9, "fleet.stopped", submitted=2, granted=2, served=2, failed=0, cancelled=0, stopped=0, peak_active=2),
    ]

    report = replay_lines(lines)

    assert report.ok, report.violations
    assert report.fleets[0].peak_active == 2
    assert report.fleets[0].peak_active_line == 4


def test_peak_rises_when_launch_confirms_foreign():
    # The outsider listed while launch lb was out becomes certain foreign
    # when lb returns another task: three workers ran, until la stopped.
    counts = {"visible": 0, "pending": 0, "foreign": 0, "unconfirmed": 0, "queued": 0, "max_workers": 4}
    lines = [
        _record(1, "fleet.started", max_workers=4),
        _record(2, "reconcile", listed=0, **counts, active=0),
        _record(3, "spawn.granted", request_id="a", launch_id="la", key="a", attempt=1, **{**counts, "pending": 1, "active": 1}),
        _record(4, "launch.succeeded", launch_id="la", task_id="ta", request_id="a", active=1, foreign=0, unconfirmed=0),
        _record(5, "spawn.granted", request_id="b", launch_id="lb", key="b", attempt=1, **{**counts, "pending": 2, "active": 2}),
        _record(6, "reconcile", listed=2, **{**counts, "visible": 1, "pending": 1, "foreign": 1, "unconfirmed": 1, "active": 3}),
        _record(7, "launch.succeeded", launch_id="lb", task_id="tb", request_id="b", active=3, foreign=1, unconfirmed=0),
        _record(8, "worker.stopped", launch_id="la", task_id="ta", status="STOPPED", request_id="a", active=2),
    ]

    report = replay_lines(lines)

    assert report.ok, report.violations
    assert report.fleets[0].peak_active == 3
    assert report.fleets[0].peak_active_line == 7

def test_utc_offset_timestamp_accepted():
    lines = [
        started(timestamp="2026-01-01T00:00:00.000001+00:00"),
        started(seq=2, event="fleet.stopped", timestamp="2026-01-01T00:00:01Z"),
    ]

    report = replay_lines(lines)

    assert report.ok, report.violations


def test_non_utc_timestamp_exit_2(tmp_path, capsys):
    path = tmp_path / "audit.jsonl"
    path.write_text(started(timestamp="2026-01-01T02:00:00+02:00") + "\n")

    status = main(["audit", str(path)])

    output = capsys.readouterr()
    assert status == 2
    assert output.out == ""
    assert f"{path}: line 1 is malformed: 'timestamp' is '2026-01-01T02:00:00+02:00'" in output.err


# Timestamps going back


def hand_written_record(seq, event, second, **fields):
    return json.dumps({"event": event, "fleet": "f", "seq": seq, "timestamp": f"2026-01-01T00:00:{second:02d}Z", **fields})


def test_timestamp_going_back_fails():
    counts = {"visible": 0, "pending": 0, "foreign": 0, "queued": 0, "max_workers": 2}
    lines = [
        hand_written_record(1, "fleet.started", 1, max_workers=2),
        hand_written_record(2, "reconcile", 5, listed=0, **counts, active=0),
        hand_written_record(3, "reconcile", 4, listed=0, **counts, active=0),
        hand_written_record(4, "fleet.stopped", 6),
    ]

    report = replay_lines(lines)

    assert not report.ok
    assert len(report.violations) == 1, report.violations
    assert report.violations[0].line_number == 3
    assert report.violations[0].reason == (
        "timestamp 2026-01-01T00:00:04Z of fleet f is earlier than 2026-01-01T00:00:05Z on line 2"
    )


def test_equal_timestamps_pass():
    lines = [hand_written_record(1, "fleet.started", 1, max_workers=2), hand_written_record(2, "fleet.stopped", 1)]

    assert replay_lines(lines).ok


def test_timestamps_compared_per_fleet():
    # The second fleet's clock is behind the first's; each fleet's own lines go forward.
    lines = [
        hand_written_record(1, "fleet.started", 9, max_workers=2),
        json.dumps({"event": "fleet.started", "fleet": "g", "seq": 1, "timestamp": "2026-01-01T00:00:01Z", "max_workers": 2}),
        hand_written_record(2, "fleet.stopped", 10),
        json.dumps({"event": "fleet.stopped", "fleet": "g", "seq": 2, "timestamp": "2026-01-01T00:00:02Z"}),
    ]

    assert replay_lines(lines).ok


def test_timestamps_restart_per_process():
    # A restarted process on another host may stamp earlier times than the
    # first process did; only the order within one process is checked.
    lines = [
        hand_written_record(1, "fleet.started", 30, max_workers=2),
        hand_written_record(2, "fleet.stopped", 31),
        hand_written_record(1, "fleet.started", 10, max_workers=2),
        hand_written_record(2, "fleet.stopped", 11),
    ]

    report = replay_lines(lines)

    assert report.ok, report.violations
    assert report.fleets[0].restarts == 1


def test_timestamp_going_back_exit_1(tmp_path, capsys):
    path = tmp_path / "audit.jsonl"
    path.write_text(
        hand_written_record(1, "fleet.started", 5, max_workers=2) + "\n" + hand_written_record(2, "fleet.stopped", 4) + "\n"
    )

    status = main(["audit", str(path)])

    error = capsys.readouterr().err
    assert status == 1
    assert f"{path}: line 2: timestamp 2026-01-01T00:00:04Z of fleet f is earlier than" in error


# Logs without events


def test_no_events_not_ok():
    report = replay_lines([])

    assert report.empty
    assert not report.ok
    assert report.to_dict()["ok"] is False


def test_empty_file_exit_1(tmp_path, capsys):
    path = tmp_path / "audit.jsonl"
    path.write_text("")

    status = main(["audit", str(path)])

    output = capsys.readouterr()
    assert status == 1
    assert "result: FAILED: no audit events" in output.out
    assert "result: OK" not in output.out
    assert output.err.splitlines() == [f"fleetactor audit: error: {path}: no audit events; the file is empty, so there is nothing to check"]


def test_empty_file_json_not_ok(tmp_path, capsys):
    path = tmp_path / "audit.jsonl"
    path.write_text("")

    status = main(["audit", "--json", str(path)])

    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["ok"] is False
    assert report["lines"] == 0
