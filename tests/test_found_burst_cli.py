"""``fleetactor burst`` cases found by trying the command as a user.

Every process gets fake AWS credentials, no shared config files and no
instance metadata lookups, and talks only to servers on 127.0.0.1.
"""

import json

import httpx
from test_cli_burst import burst_arguments, fleetactor, served_simulator

# Three tasks of the fleet's own family, started by someone else, run throughout.
FOREIGN_FAMILY_OPTIONS = [
    "--task-definition", "worker",
    "--visibility-lag", "0.5",
    "--boot-time", "0.2",
    "--run-time", "1",
    "--stop-time", "0.2",
    "--foreign-tasks", "3",
    "--foreign-family", "worker",
]


def test_burst_empty_journal_path_exit_2():
    # Nothing listens on port 1, so a burst that got past the option checks
    # would fail on the endpoint instead of naming --journal.
    result = fleetactor(*burst_arguments("http://127.0.0.1:1", "--journal", ""))

    assert result.returncode == 2
    assert "--journal" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_burst_counts_foreign_tasks_of_its_family():
    with served_simulator(FOREIGN_FAMILY_OPTIONS) as url:
        result = fleetactor(
            *burst_arguments(url, "--requests", "12", "--max-workers", "6", "--list-filter", "family", "--json"),
            timeout=120,
        )
        ground_truth = httpx.get(f"{url}/_simulator/ground-truth").json()

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["served"] == 12
    assert ground_truth["peak_active"] <= 6, ground_truth["peak_active"]
