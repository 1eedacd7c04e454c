"""A burst killed with SIGKILL mid-flight and run again with the same journal.

The simulator is served in its own process and keeps the ground truth: how
many tasks were started, how many a client token started twice, and the
peak of tasks not yet STOPPED. Every process talks only to 127.0.0.1.
"""

import json
import signal
import subprocess
import sys

import httpx
import pytest

from fleetactor.audit import replay_file
from test_cli_burst import ENVIRONMENT, burst_arguments, served_simulator

# Each ECS request takes 0.3 s, so launches are still in flight when the
# first run is killed. Tasks run 3 s, so some are still running too.
CRASH_SIMULATOR_OPTIONS = [
    "--task-definition", "worker",
    "--latency", "0.3",
    "--visibility-lag", "0.5",
    "--boot-time", "0.2",
    "--run-time", "3",
    "--stop-time", "0.2",
]


@pytest.fixture
def slow_simulator_url():
    with served_simulator(CRASH_SIMULATOR_OPTIONS) as url:
        yield url


def kill_after_launches(arguments, launches, audit_log=None):
    """Run ``fleetactor`` with its audit log on stdout and SIGKILL it after ``launches`` launch.succeeded events.

    With ``audit_log``, every line the process wrote before it died is copied there.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetactor", *arguments, "--audit-log", "/dev/stdout"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENVIRONMENT,
    )
    seen = 0
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if json.loads(line).get("event") == "launch.succeeded":
                seen += 1
                if seen == launches:
                    break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        lines.extend(process.stdout)
        process.stdout.close()
    if audit_log is not None:
        audit_log.write_text("".join(lines))
    return seen


def test_killed_burst_resumes_exactly_once(slow_simulator_url, tmp_path):
    journal = tmp_path / "state.db"
    arguments = burst_arguments(slow_simulator_url, "--requests", "24", "--max-workers", "16", "--journal", str(journal))

    audit_log = tmp_path / "audit.jsonl"

    launched_before_kill = kill_after_launches(arguments, 10, audit_log)
    truth_after_kill = httpx.get(f"{slow_simulator_url}/_simulator/ground-truth").json()

    second = subprocess.run(
        [sys.executable, "-m", "fleetactor", *arguments, "--json", "--audit-log", str(audit_log)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENVIRONMENT,
    )
    truth = httpx.get(f"{slow_simulator_url}/_simulator/ground-truth").json()

    assert launched_before_kill == 10
    assert truth_after_kill["tasks_started"] < 24
    assert second.returncode == 0, second.stdout + second.stderr
    figures = json.loads(second.stdout)
    assert figures["served"] == 24
    assert figures["dropped"] == 0
    assert figures["resumed"] >= 10
    assert truth["tasks_started"] == 24
    assert truth["duplicate_tasks"] == 0
    assert truth["peak_fleet_active"] <= 16

    # The second run added to the first run's audit log under the same fleet
    # id, so one replay covers both processes.
    report = replay_file(audit_log)
    assert report.ok, report.violations
    assert len(report.fleets) == 1
    assert report.fleets[0].restarts == 1
    assert report.fleets[0].served == 24
    assert report.fleets[0].peak_active <= 16


def test_finished_burst_rerun_sends_nothing(slow_simulator_url, tmp_path):
    journal = tmp_path / "state.db"
    arguments = burst_arguments(slow_simulator_url, "--requests", "4", "--journal", str(journal), "--json")

    first = subprocess.run([sys.executable, "-m", "fleetactor", *arguments], capture_output=True, text=True, timeout=60, env=ENVIRONMENT)
    second = subprocess.run([sys.executable, "-m", "fleetactor", *arguments], capture_output=True, text=True, timeout=60, env=ENVIRONMENT)
    truth = httpx.get(f"{slow_simulator_url}/_simulator/ground-truth").json()

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    figures = json.loads(second.stdout)
    assert figures["skipped"] == 4
    assert figures["served"] == 4
    assert figures["run_task_calls"] == 0
    assert truth["tasks_started"] == 4


def test_corrupt_journal_exit_2(slow_simulator_url, tmp_path):
    journal = tmp_path / "state.db"
    journal.write_bytes(b"not a database at all" * 50)

    completed = subprocess.run(
        [sys.executable, "-m", "fleetactor", *burst_arguments(slow_simulator_url, "--journal", str(journal))],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENVIRONMENT,
    )

    assert completed.returncode == 2
    assert "argument --journal: journal" in completed.stderr
    assert "cannot be read" in completed.stderr
    assert "Traceback" not in completed.stderr
