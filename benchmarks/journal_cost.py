"""Journal cost: the fleet with a SqliteJournal in a temporary file against the fleet without one.

Two workloads, both over an instant fake provisioner in real time:

- sequential: one caller runs jobs one after another, so each latency is the
  cost of one request with nothing to batch with. Submit latency runs from
  the ``submit`` call to its return, by which time a journal has made the
  submission durable. Start latency runs to the return of ``wait_started``,
  and a journal made the launch id durable before the launch was sent.
- concurrent: many callers at once, as in decision_cost.py; the journal
  writer then commits everything queued in one transaction, so the cost per
  decision falls.

Each journal write is one SQLite transaction committed with
``synchronous=FULL`` in WAL mode, so the figures depend on the disk and file
system under ``--directory``; the report names the file system.

Run: python benchmarks/journal_cost.py [--jobs 300] [--tasks 200] [--jobs-per-task 5] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import trio

import _support
from fleetactor import FleetConfig, SqliteJournal

DEFAULTS = {"jobs": 300, "tasks": 200, "jobs_per_task": 5, "cap": 50, "rounds": 3, "reconcile_interval": 0.001}
SMOKE = {"jobs": 10, "tasks": 10, "jobs_per_task": 2, "cap": 4, "rounds": 1}


@contextlib.asynccontextmanager
async def _journal(directory: str | None, enabled: bool) -> AsyncIterator[SqliteJournal | None]:
    if not enabled:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="fleetactor-journal-", dir=directory) as folder:
        async with SqliteJournal(Path(folder) / "journal.db", fleet="benchmark") as journal:
            yield journal


async def run_variant(arguments: argparse.Namespace, *, journal: bool, sequential: bool) -> dict[str, Any]:
    config = FleetConfig(
        max_workers=arguments.cap,
        reconcile_interval=arguments.reconcile_interval,
        visibility_timeout=0.0,
        launch_attempts=1,
        shutdown_timeout=5.0,
    )
    tasks, jobs_per_task = (1, arguments.jobs) if sequential else (arguments.tasks, arguments.jobs_per_task)
    async with _journal(arguments.directory, journal) as store:
        run = await _support.run_fleet_jobs(
            config, tasks=tasks, jobs_per_task=jobs_per_task, journal=store, record_latencies=sequential
        )
    return {
        "elapsed_s": run.elapsed_s,
        "decisions": run.decisions,
        "decisions_per_s": run.decisions / run.elapsed_s,
        "jobs_per_s": run.totals["stopped"] / run.elapsed_s,
        "peak_active": run.peak_active,
        "true_peak": run.true_peak,
        "submit_latency_s": _quantiles(run.submit_latencies),
        "start_latency_s": _quantiles(run.start_latencies),
    }


def _quantiles(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": _support.percentile(values, 0.50),
        "p95": _support.percentile(values, 0.95),
        "max": max(values) if values else None,
    }


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    # Recorded before measuring, so it describes the code this run imported.
    host = _support.machine()
    variants = {
        ("sequential", "none"): {"journal": False, "sequential": True},
        ("sequential", "sqlite"): {"journal": True, "sequential": True},
        ("concurrent", "none"): {"journal": False, "sequential": False},
        ("concurrent", "sqlite"): {"journal": True, "sequential": False},
    }
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(arguments.rounds):
        for name, options in variants.items():
            runs[name].append(trio.run(lambda: run_variant(arguments, **options)))

    results: dict[str, dict[str, Any]] = {"sequential": {}, "concurrent": {}}
    for (workload, journal), rounds in runs.items():
        results[workload][journal] = _summarize(rounds)

    comparison = {}
    for workload, pair in results.items():
        without, with_journal = pair["none"], pair["sqlite"]
        comparison[workload] = {
            "throughput_ratio": with_journal["decisions_per_s"] / without["decisions_per_s"],
            "added_s_per_decision": 1 / with_journal["decisions_per_s"] - 1 / without["decisions_per_s"],
        }
    sequential = results["sequential"]
    for latency in ("submit_latency_s", "start_latency_s"):
        comparison["sequential"][f"added_{latency}_p50"] = (
            sequential["sqlite"][latency]["p50"] - sequential["none"][latency]["p50"]
        )

    directory = arguments.directory or tempfile.gettempdir()
    return {
        "benchmark": "journal_cost",
        "command": _support.command_line(),
        "machine": host,
        "parameters": {
            "sequential_jobs": arguments.jobs,
            "concurrent_tasks": arguments.tasks,
            "jobs_per_task": arguments.jobs_per_task,
            "cap": arguments.cap,
            "rounds": arguments.rounds,
            "reconcile_interval_s": arguments.reconcile_interval,
            "journal_directory": directory,
            "file_system": _support.filesystem_of(directory),
        },
        "results": results,
        "comparison": comparison,
    }


def _summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Take the median of each figure over the rounds."""

    def middle(values: list[float | None]) -> float | None:
        present = [value for value in values if value is not None]
        return _support.median(present) if present else None

    summary: dict[str, Any] = {
        "decisions_per_s": middle([round_["decisions_per_s"] for round_ in rounds]),
        "jobs_per_s": middle([round_["jobs_per_s"] for round_ in rounds]),
        "decisions_per_round": rounds[0]["decisions"],
        "max_peak_active": max(round_["peak_active"] for round_ in rounds),
        "max_true_peak": max(round_["true_peak"] for round_ in rounds),
    }
    for latency in ("submit_latency_s", "start_latency_s"):
        summary[latency] = {
            quantile: middle([round_[latency][quantile] for round_ in rounds]) for quantile in ("p50", "p95", "max")
        }
    return summary


def render(report: dict[str, Any]) -> None:
    parameters = report["parameters"]
    print(
        f"journal in {parameters['journal_directory']} ({parameters['file_system']}), "
        f"cap {parameters['cap']}, median of {parameters['rounds']} rounds"
    )
    rows = []
    for workload, pair in report["results"].items():
        for journal, result in pair.items():
            rows.append(
                [
                    workload,
                    journal,
                    result["decisions_per_s"],
                    _milliseconds(result["submit_latency_s"]["p50"]),
                    _milliseconds(result["submit_latency_s"]["p95"]),
                    _milliseconds(result["start_latency_s"]["p50"]),
                    _milliseconds(result["start_latency_s"]["p95"]),
                ]
            )
    _support.print_table(
        ["workload", "journal", "decisions/s", "submit p50 ms", "submit p95 ms", "start p50 ms", "start p95 ms"],
        rows,
    )
    print()
    for workload, comparison in report["comparison"].items():
        print(
            f"{workload}: throughput with journal / without = {comparison['throughput_ratio']:.3f}, "
            f"added cost per decision = {comparison['added_s_per_decision'] * 1e6:.0f} us"
        )


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=DEFAULTS["jobs"], help="jobs of the sequential workload")
    parser.add_argument("--tasks", type=int, default=DEFAULTS["tasks"], help="callers of the concurrent workload")
    parser.add_argument(
        "--jobs-per-task", type=int, default=DEFAULTS["jobs_per_task"], help="jobs per caller in the concurrent workload"
    )
    parser.add_argument("--cap", type=int, default=DEFAULTS["cap"], help="max_workers of the fleet")
    parser.add_argument("--rounds", type=int, default=DEFAULTS["rounds"], help="runs of each variant, alternated")
    parser.add_argument(
        "--reconcile-interval", type=float, default=DEFAULTS["reconcile_interval"], help="seconds between reaper rounds"
    )
    parser.add_argument(
        "--directory", default=None, help="folder for the temporary journal file (default: the system temp folder)"
    )
    _support.add_output_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _support.apply_smoke_defaults(build_parser(), argv, SMOKE)
    _support.drop_audit_events()
    report = measure(arguments)
    _support.emit(report, arguments.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
