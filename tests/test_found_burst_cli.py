"""``fleetactor burst`` cases found by trying the command as a user.

Every process gets fake AWS credentials, no shared config files and no
instance metadata lookups, and talks only to servers on 127.0.0.1.
"""

import json
import signal
import subprocess
import sys

import httpx

ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "AWS_ACCESS_KEY_ID": "AKIAFLEETACTORTEST01",
    "AWS_SECRET_ACCESS_KEY": "fleetactor-test-secret-key-0000000000000",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/fleetactor-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/fleetactor-tests/credentials",
}


def fleetactor(*arguments, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "fleetactor", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENVIRONMENT,
    )


def burst_arguments(url, *extra):
    return [
        "burst",
        "--endpoint-url", url,
        "--region", "us-east-1",
        "--cluster", "default",
        "--task-definition", "worker",
        "--subnet", "subnet-1",
        "--reconcile-interval", "0.25",
        *extra,
    ]


def test_burst_empty_journal_path_exit_2():
    # Nothing listens on port 1, so a burst that got past the option checks
    # would fail on the endpoint instead of naming --journal.
    result = fleetactor(*burst_arguments("http://127.0.0.1:1", "--journal", ""))

    assert result.returncode == 2
    assert "--journal" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_burst_counts_foreign_tasks_of_its_family():
    simulator = subprocess.Popen(
        [
            sys.executable, "-m", "fleetactor", "simulate-ecs", "--port", "0",
            "--task-definition", "worker",
            "--visibility-lag", "0.5", "--boot-time", "0.2", "--run-time", "1", "--stop-time", "0.2",
            "--foreign-tasks", "3", "--foreign-family", "worker",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENVIRONMENT,
    )
    try:
        first_line = simulator.stdout.readline()
        assert first_line.startswith("fleetactor ECS simulator listening on http://127.0.0.1:"), first_line
        url = first_line.rsplit(" ", 1)[-1].strip()

        result = fleetactor(
            *burst_arguments(url, "--requests", "12", "--max-workers", "6", "--list-filter", "family", "--json")
        )
        ground_truth = httpx.get(f"{url}/_simulator/ground-truth").json()
    finally:
        simulator.send_signal(signal.SIGINT)
        simulator.wait(timeout=10)
        simulator.stdout.close()
        simulator.stderr.close()

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["served"] == 12
    # The 3 foreign tasks run throughout and use the same task definition family.
    assert ground_truth["peak_active"] <= 6, ground_truth["peak_active"]
