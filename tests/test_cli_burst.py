"""``fleetactor burst`` in real time against the served simulator and against moto.

Every process gets fake AWS credentials, no shared config files and no
instance metadata lookups, and talks only to servers on 127.0.0.1.
"""

import contextlib
import json
import subprocess
import sys

import httpx
import pytest
from ecs_support import REGION, MotoEcs, moto_ecs, moto_url  # noqa: F401  (fixtures)
from process_support import default_sigint, interrupt

ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "AWS_ACCESS_KEY_ID": "AKIAFLEETACTORTEST01",
    "AWS_SECRET_ACCESS_KEY": "fleetactor-test-secret-key-0000000000000",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/fleetactor-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/fleetactor-tests/credentials",
}

# Short real-time lifecycle: each task is listed after 0.5 s and stops
# about 1.4 s after its launch.
SIMULATOR_OPTIONS = [
    "--task-definition", "worker",
    "--visibility-lag", "0.5",
    "--boot-time", "0.2",
    "--run-time", "1",
    "--stop-time", "0.2",
]


def fleetactor(*arguments, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "fleetactor", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENVIRONMENT,
    )


@contextlib.contextmanager
def served_simulator(options):
    """Serve the simulator with ``fleetactor simulate-ecs OPTIONS`` and yield its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetactor", "simulate-ecs", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENVIRONMENT,
        preexec_fn=default_sigint,
    )
    try:
        first_line = process.stdout.readline()
        assert first_line.startswith("fleetactor ECS simulator listening on http://127.0.0.1:"), first_line
        yield first_line.rsplit(" ", 1)[-1].strip()
    finally:
        try:
            exit_status = interrupt(process)
        finally:
            process.stdout.close()
            process.stderr.close()
    assert exit_status == 0


@pytest.fixture
def simulator_url():
    with served_simulator(SIMULATOR_OPTIONS) as url:
        yield url


def burst_arguments(url, *extra):
    return [
        "burst",
        "--endpoint-url", url,
        "--region", REGION,
        "--cluster", "default",
        "--task-definition", "worker",
        "--subnet", "subnet-1",
        "--reconcile-interval", "0.25",
        *extra,
    ]


def test_burst_on_simulator(simulator_url, tmp_path):
    audit_log = tmp_path / "audit.jsonl"

    completed = fleetactor(*burst_arguments(simulator_url, "--json", "--audit-log", str(audit_log)))

    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout)
    assert figures["requests"] == 24
    assert figures["served"] == 24
    assert figures["failed"] == 0
    assert figures["dropped"] == 0
    assert figures["peak_active"] == 16
    assert figures["run_task_calls"] == 24
    assert figures["makespan_s"] > 0
    truth = httpx.get(f"{simulator_url}/_simulator/ground-truth").json()
    # The fleet's own count above shows that 16 slots were granted at once.
    # The simulator counts 16 tasks at once only if all 16 RunTask calls arrive
    # within one task's 1.4 s lifetime, which a busy machine does not promise.
    assert truth["peak_fleet_active"] <= 16
    assert truth["tasks_started"] == 24
    audit = fleetactor("audit", str(audit_log))
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_burst_table_output(simulator_url):
    completed = fleetactor(*burst_arguments(simulator_url, "--requests", "3", "--max-workers", "2"))

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == f"fleetactor burst: 3 requests, cap 2, cluster default at {simulator_url}"
    assert any(line.split() == ["served", "3"] for line in lines)
    assert any(line.split() == ["peak", "active", "(fleet's", "count)", "2"] for line in lines)


def test_burst_rejected_launches_exit_1(simulator_url):
    arguments = burst_arguments(simulator_url, "--json", "--requests", "2")
    arguments[arguments.index("worker")] = "unregistered"

    completed = fleetactor(*arguments)

    assert completed.returncode == 1
    figures = json.loads(completed.stdout)
    assert figures["served"] == 0
    assert figures["failed"] == 2
    assert figures["dropped"] == 0
    assert all(failure.startswith("burst-") for failure in figures["failures"])


def test_burst_timeout_exit_1(simulator_url):
    completed = fleetactor(*burst_arguments(simulator_url, "--json", "--requests", "2", "--timeout", "0.3"))

    assert completed.returncode == 1
    figures = json.loads(completed.stdout)
    assert figures["timed_out"] is True
    assert figures["workers_stopped"] == 0


def test_burst_unknown_cluster(simulator_url):
    arguments = burst_arguments(simulator_url)
    arguments[arguments.index("default")] = "missing-cluster"

    completed = fleetactor(*arguments)

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.startswith(
        f"fleetactor burst: error: ListTasks on cluster 'missing-cluster' at {simulator_url} failed: ClusterNotFoundException"
    )
    assert len(completed.stderr.splitlines()) == 1


@pytest.mark.parametrize("list_filter", ["started-by", "family"])
def test_burst_on_moto(moto_ecs: MotoEcs, list_filter):
    # moto's tasks never exit by themselves, so the burst stops each one.
    completed = fleetactor(
        "burst",
        "--endpoint-url", moto_ecs.url,
        "--region", REGION,
        "--cluster", moto_ecs.cluster,
        "--task-definition", moto_ecs.task_definition,
        "--subnet", moto_ecs.subnet,
        "--security-group", moto_ecs.security_group,
        "--requests", "6",
        "--max-workers", "4",
        "--reconcile-interval", "0.25",
        "--visibility-timeout", "1",
        "--stop-after", "0.5",
        "--list-filter", list_filter,
        "--json",
    )

    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout)
    assert figures["served"] == 6
    assert figures["workers_stopped"] == 6
    assert figures["peak_active"] == 4
