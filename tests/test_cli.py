"""The fleetactor command line: demo, audit and bad input for every subcommand."""

import importlib.metadata
import json
import sqlite3
import socket
import subprocess
import sys

import pytest
import trio
from ecs_support import apply_fake_aws_environment

import fleetactor
from fleetactor import SqliteJournal
from fleetactor.cli import build_parser, main
from fleetactor.cli._burst import settings_from_arguments
from fleetactor.cli._demo import Scenario, run_scenario, scenario_from_arguments


def run_cli(*arguments):
    """Run ``python -m fleetactor`` in a subprocess and return the completed process."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "AKIAFLEETACTORTEST01",
        "AWS_SECRET_ACCESS_KEY": "fleetactor-test-secret-key-0000000000000",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/fleetactor-tests/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/fleetactor-tests/credentials",
    }
    return subprocess.run(
        [sys.executable, "-m", "fleetactor", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def demo_json(*arguments):
    completed = run_cli("demo", "--json", *arguments)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


# demo


def test_demo_default_holds_cap():
    figures = demo_json()

    assert figures["policy"] == "actor"
    assert figures["requests"] == 24
    assert figures["max_workers"] == 16
    assert figures["true_peak"] == 16
    assert figures["served"] == 24
    assert figures["failed"] == 0
    assert figures["dropped"] == 0
    assert figures["tasks_started"] == 24
    assert figures["duplicate_tasks"] == 0
    assert figures["run_task_calls"] == 24
    assert figures["queued"] == 8
    assert figures["fleet_peak_active"] == 16
    assert figures["timed_out"] is False


def test_demo_list_only_breaks_cap():
    figures = demo_json("--policy", "list-only")

    assert figures["true_peak"] == 24
    assert figures["served"] == 24
    assert figures["dropped"] == 0


def test_demo_table_output():
    completed = run_cli("demo", "--policy", "list-only")

    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("fleetactor demo: policy list-only, 24 requests, cap 16")
    assert any(line.split() == ["true", "peak", "24"] for line in lines)
    assert any(line.split() == ["served", "24"] for line in lines)
    assert "The cap was broken: 24 workers ran at once against a cap of 16." in completed.stdout
    # Not a terminal: no progress line.
    assert completed.stderr == ""


# A window shorter than the 8 s lag frees slots blindly. A long window
# keeps the cap until tasks stop. A stopping task leaves ListTasks
# (desiredStatus RUNNING) but occupies capacity for stop_time seconds, and
# the controller launches into those slots.
@pytest.mark.parametrize(("window", "stop_time", "peak"), [(5, 0, 24), (20, 0, 16), (20, 15, 24)])
def test_recent_launches_window(window, stop_time, peak):
    figures = run_scenario(Scenario(policy="recent-launches", window=window, stop_time=stop_time))

    assert figures["true_peak"] == peak
    assert figures["served"] == 24


def test_demo_faults_keep_cap():
    figures = run_scenario(
        Scenario(
            requests=40,
            launch_failure_rate=0.2,
            ambiguous_rate=0.2,
            throttle_rate=0.1,
            list_failure_rate=0.25,
            foreign_tasks=2,
            visibility_lag_max=20,
            arrival_interval=0.5,
            seed=3,
        )
    )

    assert figures["true_peak"] <= 16
    assert figures["duplicate_tasks"] == 0
    assert figures["dropped"] == 0
    assert figures["served"] + figures["failed"] == 40
    assert figures["ambiguous_launches"] > 0
    assert figures["launch_failures"] > 0


def test_demo_blind_list_holds_cap():
    figures = demo_json("--visibility-lag", "never")

    assert figures["true_peak"] == 16
    assert figures["served"] == 24
    assert figures["scenario"]["visibility_lag"] == "never"


def test_demo_time_limit_drops_open():
    figures = run_scenario(Scenario(run_time=600, time_limit=100))

    assert figures["timed_out"] is True
    assert figures["served"] == 16
    assert figures["dropped"] == 8


def test_demo_time_limit_exit_1(capsys):
    status = main(["demo", "--json", "--run-time", "600", "--time-limit", "100"])

    figures = json.loads(capsys.readouterr().out)
    assert status == 1
    assert figures["timed_out"] is True
    assert figures["dropped"] == 8


def test_demo_complete_run_exit_0(capsys):
    status = main(["demo", "--json", "--requests", "3", "--max-workers", "2", "--run-time", "10"])

    figures = json.loads(capsys.readouterr().out)
    assert status == 0
    assert figures["served"] == 3
    assert figures["dropped"] == 0


def test_demo_makespan_none_without_workers():
    # Every launch fails and is retried until the time limit, so no worker runs.
    timed_out = run_scenario(Scenario(requests=3, max_workers=2, launch_failure_rate=1.0, time_limit=10))
    # Every launch fails until the attempts are used up, well before the limit.
    failed = run_scenario(Scenario(requests=3, max_workers=2, launch_failure_rate=1.0))

    assert timed_out["timed_out"] is True
    assert timed_out["makespan_s"] is None
    assert failed["timed_out"] is False
    assert failed["failed"] == 3
    assert failed["makespan_s"] is None


def test_demo_table_makespan_dash(capsys):
    status = main(["demo", "--requests", "3", "--max-workers", "2", "--launch-failure-rate", "1", "--time-limit", "10"])

    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert ["makespan", "-"] in [line.split() for line in lines]


def test_demo_simulator_options_set_scenario():
    arguments = build_parser().parse_args(
        [
            "demo",
            "--visibility-lag", "2",
            "--visibility-lag-max", "6",
            "--boot-time", "3",
            "--run-time", "40",
            "--stop-time", "4",
            "--foreign-tasks", "5",
            "--launch-failure-rate", "0.1",
            "--ambiguous-rate", "0.2",
            "--throttle-rate", "0.3",
            "--list-failure-rate", "0.4",
        ]
    )

    scenario = scenario_from_arguments(arguments)

    assert scenario.visibility_lag == 2.0
    assert scenario.visibility_lag_max == 6.0
    assert scenario.boot_time == 3.0
    assert scenario.run_time == 40.0
    assert scenario.stop_time == 4.0
    assert scenario.foreign_tasks == 5
    assert scenario.launch_failure_rate == 0.1
    assert scenario.ambiguous_rate == 0.2
    assert scenario.throttle_rate == 0.3
    assert scenario.list_failure_rate == 0.4


def test_scenario_rejects_full_foreign():
    with pytest.raises(ValueError, match=r"foreign_tasks=16 leaves no room under max_workers=16"):
        Scenario(foreign_tasks=16)


# demo audit log and audit


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "audit.jsonl"
    completed = run_cli("demo", "--audit-log", str(path))
    assert completed.returncode == 0, completed.stderr
    return path


def test_audit_passes_demo_log(demo_log):
    completed = run_cli("audit", str(demo_log))

    assert completed.returncode == 0, completed.stderr
    assert "result: OK" in completed.stdout
    assert completed.stderr == ""


def test_audit_json_summary(demo_log, capsys):
    status = main(["audit", "--json", str(demo_log)])

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["ok"] is True
    [fleet] = report["fleets"]
    assert fleet["grants"] == 24
    assert fleet["queued"] == 8
    assert fleet["peak_active"] == 16
    assert fleet["served"] == 24
    assert fleet["waits"] == 8
    assert fleet["wait_max_s"] >= fleet["wait_p95_s"] >= fleet["wait_p50_s"] > 0


def test_audit_fails_extra_grant(demo_log, tmp_path):
    records = [json.loads(line) for line in demo_log.read_text().splitlines()]
    full = next(index for index, record in enumerate(records) if record["event"] == "spawn.granted" and record["active"] == 16)
    extra = dict(records[full], request_id="extra", launch_id="extra-launch", active=17)
    records.insert(full + 1, extra)
    for seq, record in enumerate(records, start=1):
        record["seq"] = seq
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(json.dumps(record) + "\n" for record in records))

    completed = run_cli("audit", str(tampered))

    assert completed.returncode == 1
    assert "result: FAILED" in completed.stdout
    error_lines = completed.stderr.splitlines()
    assert len(error_lines) == 1
    assert f"line {full + 2}: spawn.granted for request extra raises active to 17, above max_workers 16" in error_lines[0]


def test_audit_malformed_line(demo_log, tmp_path):
    lines = demo_log.read_text().splitlines()
    lines.insert(3, "{not json")
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n")

    completed = run_cli("audit", str(broken))

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [f"fleetactor audit: error: {broken}: line 4 is malformed: not JSON (Expecting property name enclosed in double quotes at column 2)"]


def test_audit_several_fleets(demo_log, tmp_path, capsys):
    # Two copies of the demo log under different fleet ids, interleaved.
    records = [json.loads(line) for line in demo_log.read_text().splitlines()]
    merged = []
    for record in records:
        merged.append(dict(record, fleet="first"))
        merged.append(dict(record, fleet="second"))
    path = tmp_path / "merged.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in merged))

    status = main(["audit", "--json", str(path)])

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [fleet["fleet"] for fleet in report["fleets"]] == ["first", "second"]
    assert [fleet["served"] for fleet in report["fleets"]] == [24, 24]


# Bad input: one line on stderr, exit status 2, no traceback


def occupied_port():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


BURST_TARGET = ["burst", "--endpoint-url", "http://127.0.0.1:9", "--region", "r", "--cluster", "c", "--task-definition", "t"]

BAD_INPUT = [
    ([], "the following arguments are required: COMMAND"),
    (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
    (["demo", "--requests", "0"], "argument --requests: invalid value '0': must be a whole number from 1 to 1000000"),
    (["demo", "--requests", "many"], "argument --requests: invalid value 'many': must be a whole number from 1 to 1000000"),
    (["demo", "--requests", "1000001"], "argument --requests: invalid value '1000001': must be a whole number from 1 to 1000000"),
    (
        ["demo", "--max-workers", "200000", "--foreign-tasks", "100001"],
        "argument --foreign-tasks: invalid value '100001': must be a whole number from 0 to 100000",
    ),
    (
        ["demo", "--visibility-lag", "never", "--visibility-lag-max", "10"],
        "argument --visibility-lag-max: 10 is below --visibility-lag never; it must be at least that",
    ),
    (["demo", "--max-workers", "-2"], "argument --max-workers: invalid value '-2': must be a whole number >= 1"),
    (["demo", "--visibility-lag", "-1"], "argument --visibility-lag: invalid value '-1': must be a number of seconds >= 0"),
    (["demo", "--visibility-lag", "nan"], "argument --visibility-lag: invalid value 'nan': must be a number of seconds >= 0"),
    (["demo", "--run-time", "soon"], "argument --run-time: invalid value 'soon': must be a number of seconds >= 0"),
    (["demo", "--launch-failure-rate", "1.5"], "argument --launch-failure-rate: invalid value '1.5': must be a probability from 0 to 1"),
    (["demo", "--throttle-rate", "-0.1"], "argument --throttle-rate: invalid value '-0.1': must be a probability from 0 to 1"),
    (["demo", "--policy", "greedy"], "argument --policy: invalid choice: 'greedy' (choose from"),
    (["demo", "--seed", "-1"], "argument --seed: invalid value '-1': must be a whole number >= 0"),
    (["demo", "--time-limit", "0"], "argument --time-limit: invalid value '0': must be a number of seconds > 0"),
    (["demo", "--visibility-lag-max", "2"], "argument --visibility-lag-max: 2 is below --visibility-lag 8"),
    (["demo", "--foreign-tasks", "16"], "argument --foreign-tasks: 16 leaves no room under --max-workers 16"),
    (["demo", "--audit-log", "x.jsonl", "--policy", "list-only"], "argument --audit-log: the list-only policy writes no audit events"),
    (["demo", "--window", "3"], "argument --window: the actor policy has no window; use it with --policy recent-launches"),
    (["demo", "--audit-log", "/nonexistent/dir/audit.jsonl"], "argument --audit-log: cannot write '/nonexistent/dir/audit.jsonl'"),
    (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["burst", "--region", "us-east-1"], "the following arguments are required: --endpoint-url, --cluster, --task-definition"),
    (
        ["burst", "--endpoint-url", "ftp://127.0.0.1", "--region", "r", "--cluster", "c", "--task-definition", "t"],
        "argument --endpoint-url: invalid value 'ftp://127.0.0.1': must be an http:// or https:// URL with a host",
    ),
    (
        ["burst", "--endpoint-url", "http://127.0.0.1:9", "--region", "r", "--cluster", "", "--task-definition", "t"],
        "argument --cluster: invalid value '': must not be empty",
    ),
    (
        ["burst", "--endpoint-url", "http://127.0.0.1:9", "--region", "r", "--cluster", "c", "--task-definition", "t", "--requests", "0"],
        "argument --requests: invalid value '0': must be a whole number from 1 to 1000000",
    ),
    ([*BURST_TARGET, "--requests", "1000001"], "argument --requests: invalid value '1000001': must be a whole number from 1 to 1000000"),
    ([*BURST_TARGET, "--list-filter", "service"], "argument --list-filter: invalid choice: 'service'"),
    ([*BURST_TARGET, "--journal", ""], "argument --journal: invalid value '': must be the path of a database file"),
    ([*BURST_TARGET, "--journal", ":memory:"], "argument --journal: invalid value ':memory:': must be the path of a database file"),
    ([*BURST_TARGET, "--journal", "/"], "argument --journal: '/' is a directory; give the path of a database file inside it"),
    (
        [*BURST_TARGET, "--journal", "/nonexistent/dir/journal.sqlite"],
        "argument --journal: cannot create '/nonexistent/dir/journal.sqlite': directory /nonexistent/dir does not exist",
    ),
    (
        ["burst", "--endpoint-url", "http://127.0.0.1:99999", "--region", "r", "--cluster", "c", "--task-definition", "t"],
        "argument --endpoint-url: invalid value 'http://127.0.0.1:99999': Port out of range 0-65535",
    ),
    (
        ["burst", "--endpoint-url", "http://127.0.0.1:9", "--region", "r", "--cluster", "c", "--task-definition", "t", "--launch-type", "SPOT"],
        "argument --launch-type: invalid choice: 'SPOT'",
    ),
    (
        ["burst", "--endpoint-url", "http://127.0.0.1:9", "--region", "r", "--cluster", "c", "--task-definition", "t", "--security-group", "sg-1"],
        "argument --security-group: needs at least one --subnet",
    ),
    (
        ["burst", "--endpoint-url", "http://127.0.0.1:9", "--region", "r", "--cluster", "c", "--task-definition", "t", "--reconcile-interval", "0"],
        "argument --reconcile-interval: invalid value '0': must be a number of seconds > 0",
    ),
    (["simulate-ecs", "--port", "70000"], "argument --port: invalid value '70000'"),
    (["simulate-ecs", "--visibility-lag", "5", "--visibility-lag-max", "1"], "--visibility-lag-max 1 is below --visibility-lag 5"),
    (["simulate-ecs", "--launch-failure-rate", "2"], "argument --launch-failure-rate: invalid value '2'"),
    (["simulate-ecs", "--visibility-lag", "never", "--visibility-lag-max", "10"], "--visibility-lag-max 10 is below --visibility-lag never"),
    (["simulate-ecs", "--foreign-tasks", "100001"], "argument --foreign-tasks: invalid value '100001': expected an integer from 0 to 100000"),
    (["simulate-ecs", "--seed", "-1"], "argument --seed: invalid value '-1': expected an integer >= 0"),
    (["simulate-ecs", "--host", ""], "argument --host: invalid value '': expected a host name or IP address"),
    (["audit"], "the following arguments are required: PATH"),
    (["audit", "/nonexistent/audit.jsonl"], "cannot read /nonexistent/audit.jsonl: No such file or directory"),
    (["audit", "/"], "cannot read /: Is a directory"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_INPUT, ids=[" ".join(arguments) or "no command" for arguments, _ in BAD_INPUT])
def test_bad_input_one_line(arguments, message, capsys):
    status = main(arguments)

    output = capsys.readouterr()
    assert status == 2
    assert output.out == ""
    assert len(output.err.splitlines()) == 1, output.err
    assert message in output.err


def test_bad_input_subprocess():
    completed = run_cli("demo", "--requests", "-3")

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr == (
        "fleetactor demo: error: argument --requests: invalid value '-3': must be a whole number from 1 to 1000000; "
        "see fleetactor demo --help\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://fleet-user:s3cret-password@127.0.0.1:9",
        "fleet-user:s3cret-password@127.0.0.1:9",
        "ftp://fleet-user:s3cret-password@127.0.0.1:9",
        "http://fleet-user:s3cret-password@127.0.0.1:99999",
    ],
)
def test_burst_endpoint_password_hidden(url, capsys):
    status = main(["burst", "--endpoint-url", url, "--region", "r", "--cluster", "c", "--task-definition", "t"])

    error = capsys.readouterr().err
    assert status == 2
    assert len(error.splitlines()) == 1, error
    assert "argument --endpoint-url: invalid value: the URL contains '@'" in error
    assert "s3cret-password" not in error


@pytest.mark.parametrize(("choice", "list_filter"), [(None, "started_by"), ("started-by", "started_by"), ("family", "family")])
def test_burst_list_filter_reaches_provisioner(choice, list_filter, monkeypatch):
    apply_fake_aws_environment(monkeypatch)
    arguments = ["burst", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1", "--cluster", "c", "--task-definition", "t"]
    if choice is not None:
        arguments += ["--list-filter", choice]

    settings = settings_from_arguments(build_parser().parse_args(arguments))

    assert settings.list_filter == list_filter
    assert settings.provisioner().list_filter == list_filter


def test_burst_journal_of_other_target(tmp_path):
    path = tmp_path / "journal.sqlite"
    owner = "burst http://127.0.0.1:1 other-cluster worker"

    async def create_journal():
        async with SqliteJournal(path, fleet=owner) as journal:
            await journal.load()

    trio.run(create_journal)
    # The journal is checked before the endpoint, so nothing needs to listen on port 1.
    completed = run_cli(
        "burst", "--endpoint-url", "http://127.0.0.1:1", "--region", "us-east-1",
        "--cluster", "default", "--task-definition", "worker", "--journal", str(path),
    )

    error_lines = completed.stderr.splitlines()
    assert completed.returncode == 2
    assert len(error_lines) == 1, completed.stderr
    assert error_lines[0].startswith(f"fleetactor burst: error: argument --journal: {path} was written for another target, {owner!r}")
    assert "use the same --endpoint-url, --cluster and --task-definition" in error_lines[0]
    assert "fleet=" not in error_lines[0]



def test_burst_journal_in_use_exit_2(tmp_path):
    path = tmp_path / "journal.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        # An open journal of another fleet keeps this lock until it closes.
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        completed = run_cli(
            "burst", "--endpoint-url", "http://127.0.0.1:1", "--region", "us-east-1",
            "--cluster", "default", "--task-definition", "worker", "--journal", str(path),
        )
    finally:
        holder.close()

    error_lines = completed.stderr.splitlines()
    assert completed.returncode == 2
    assert len(error_lines) == 1, completed.stderr
    assert error_lines[0].startswith(f"fleetactor burst: error: argument --journal: journal {path} is in use")
    assert "give each fleet its own journal" in error_lines[0]

def test_simulate_ecs_port_in_use(capsys):
    with occupied_port() as listener:
        port = listener.getsockname()[1]
        status = main(["simulate-ecs", "--port", str(port)])

    output = capsys.readouterr()
    assert status == 2
    assert len(output.err.splitlines()) == 1, output.err
    assert f"argument --port: cannot listen on 127.0.0.1:{port}" in output.err


def test_burst_unreachable_endpoint():
    with occupied_port() as listener:
        # A listening socket that never responds would hang, but a closed
        # port refuses the connection at once.
        port = listener.getsockname()[1]
    completed = run_cli(
        "burst", "--endpoint-url", f"http://127.0.0.1:{port}", "--region", "us-east-1", "--cluster", "c", "--task-definition", "t"
    )

    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert f"fleetactor burst: error: ListTasks at http://127.0.0.1:{port} failed: ConnectError" in completed.stderr


@pytest.mark.parametrize("command", ["demo", "burst", "simulate-ecs", "audit"])
def test_help_lists_units(command, capsys):
    status = main([command, "--help"])

    text = capsys.readouterr().out
    assert status == 0
    assert "usage: fleetactor " + command in text
    if command in ("demo", "burst"):
        assert "seconds" in text
        assert "--json" in text
    # Words joined again, because argparse wraps the help to the terminal width.
    words = " ".join(text.split())
    if command in ("demo", "burst"):
        assert "at most 1000000" in words
    if command in ("demo", "simulate-ecs"):
        assert "at most 100000" in words


def test_version_installed(capsys):
    status = main(["--version"])

    assert status == 0
    assert capsys.readouterr().out == f"fleetactor {importlib.metadata.version('fleetactor')}\n"


def test_version_attribute_preferred(monkeypatch, capsys):
    monkeypatch.setattr(fleetactor, "__version__", "9.8.7", raising=False)

    status = main(["--version"])

    assert status == 0
    assert capsys.readouterr().out == "fleetactor 9.8.7\n"


def test_module_entry_point():
    completed = run_cli("--help")

    assert completed.returncode == 0
    assert "demo" in completed.stdout
    assert "audit" in completed.stdout
