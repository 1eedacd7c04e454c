"""Shared parts of the benchmark scripts: the machine record, output and fakes.

Every script in this folder imports this module as ``_support``; Python puts
the script's own folder first on ``sys.path``, so no installation is needed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from collections.abc import Collection, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import structlog
import trio

from fleetactor import FleetConfig, Job, TaskStatus, open_fleet

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGES = ("fleetactor", "trio", "httpx", "botocore", "structlog")

# botocore must never look for instance metadata or real credentials. The
# ECS benchmarks pass explicit fake credentials and the in-process simulator
# transport as well.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
FAKE_ACCESS_KEY = "AKIAFLEETACTORBENCH01"
FAKE_SECRET_KEY = "fleetactor-benchmark-fake-secret-000000"


def drop_audit_events() -> None:
    """Configure structlog to discard every event at its first processor.

    The fleet still builds each audit event and calls the logger, so that cost
    is measured. Rendering and writing the lines is left out, because it
    depends on where an application sends its log.
    """

    def drop(logger: Any, method_name: str, event_dict: Any) -> Any:
        raise structlog.DropEvent

    structlog.configure(processors=[drop], cache_logger_on_first_use=True)


def machine() -> dict[str, Any]:
    """Describe the machine, the interpreter and the package versions of this run."""
    changed = _library_changes()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": versions,
        "git_commit": _git_commit(),
        "library_modified": None if changed is None else bool(changed),
        "library_modified_files": changed,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _library_changes() -> list[str] | None:
    """List the files under fleetactor/ that differ from the commit, or None without git."""
    try:
        result = subprocess.run(
            ["git", "-C", str(REPOSITORY), "status", "--porcelain", "--", "fleetactor"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    # Porcelain lines are two status letters, a space and the path.
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


def command_line() -> str:
    """Return the command that started this script, as one shell line."""
    script = os.path.relpath(sys.argv[0], REPOSITORY) if sys.argv[0] else "?"
    return shlex.join(["python", script, *sys.argv[1:]])


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="use tiny parameters that finish in a few seconds, for the CI smoke test; "
        "options given explicitly still apply",
    )


def apply_smoke_defaults(parser: argparse.ArgumentParser, argv: Sequence[str] | None, smoke: Mapping[str, Any]) -> argparse.Namespace:
    """Parse ``argv``; with ``--smoke``, options left at their defaults take the values in ``smoke``."""
    arguments = parser.parse_args(argv)
    if arguments.smoke:
        parser.set_defaults(**smoke)
        arguments = parser.parse_args(argv)
    return arguments


def emit(report: dict[str, Any], as_json: bool, render: Any) -> None:
    """Print ``report`` as JSON, or as text through ``render(report)``."""
    if as_json:
        json.dump(_finite(report), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return
    print(f"command: {report['command']}")
    host = report["machine"]
    packages = ", ".join(f"{name} {version}" for name, version in host["packages"].items())
    print(f"machine: {host['cpus']} CPUs ({host['cpu_model']}), {host['platform']}")
    changed = host["library_modified_files"]
    modified = f" with uncommitted changes in {', '.join(changed)}" if changed else ""
    print(f"software: {host['implementation']} {host['python']}, {packages}, commit {host['git_commit']}{modified}")
    print()
    render(report)


def _finite(value: Any) -> Any:
    # JSON has no infinity: an infinite lag or wait is written as "inf".
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a Markdown table, so the output can be pasted into the docs."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[index]) for row in cells)) for index, header in enumerate(headers)]
    print("| " + " | ".join(header.ljust(width) for header, width in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    numeric = [all(_is_number(row[index]) for row in rows) for index in range(len(headers))]
    for row in cells:
        padded = [
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(row, widths, numeric)
        ]
        print("| " + " | ".join(padded) + " |")


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) < 1:
            text = f"{value:.3g}"
            # 0.9996 would print as "1", which reads as exactly 1.
            return f"{value:.4f}" if text in ("1", "-1") else text
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the ``fraction`` quantile (0 to 1) by linear interpolation, or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


class InstantProvisioner:
    """A provisioner whose calls finish at once, for measuring decision cost.

    ``launch`` starts a task that runs until :meth:`stop` is called. The task
    is listed at once, and ``describe`` reports it STOPPED as soon as it was
    stopped. A repeated client token returns the task it started before.
    Every call passes one trio checkpoint and does nothing else that waits.
    """

    def __init__(self, running: Collection[str] = ()) -> None:
        self.running: set[str] = set(running)
        self.peak_running = len(self.running)
        self.launches = 0
        self._task_by_token: dict[str, str] = {}
        self._ids = itertools.count(1)

    async def launch(self, job: Job, *, client_token: str) -> str:
        await trio.lowlevel.checkpoint()
        self.launches += 1
        task_id = self._task_by_token.get(client_token)
        if task_id is None:
            task_id = f"task-{next(self._ids)}"
            self._task_by_token[client_token] = task_id
            self.running.add(task_id)
            self.peak_running = max(self.peak_running, len(self.running))
        return task_id

    async def list_running(self) -> Collection[str]:
        await trio.lowlevel.checkpoint()
        return list(self.running)

    async def describe(self, task_ids: Sequence[str]) -> Mapping[str, str]:
        await trio.lowlevel.checkpoint()
        return {
            task_id: TaskStatus.RUNNING.value if task_id in self.running else TaskStatus.STOPPED.value
            for task_id in task_ids
        }

    def stop(self, task_id: str) -> None:
        """End a task; ``describe`` reports it STOPPED from now on."""
        self.running.discard(task_id)


@dataclass
class FleetRun:
    """Measurements of one :func:`run_fleet_jobs` call. Latencies are wall-clock seconds per job."""

    elapsed_s: float
    totals: dict[str, int]
    peak_active: int
    true_peak: int
    submit_latencies: list[float] = field(default_factory=list)
    start_latencies: list[float] = field(default_factory=list)

    @property
    def decisions(self) -> int:
        """Ledger transitions: submissions, grants, launch outcomes and releases."""
        totals = self.totals
        return totals["submitted"] + totals["granted"] + totals["served"] + totals["stopped"]


async def run_fleet_jobs(
    config: FleetConfig,
    *,
    tasks: int,
    jobs_per_task: int,
    journal: Any = None,
    record_latencies: bool = False,
) -> FleetRun:
    """Run ``tasks`` concurrent callers through ``open_fleet`` over an :class:`InstantProvisioner`.

    Each caller runs ``jobs_per_task`` jobs in sequence: submit, wait for the
    task id, stop the task, wait until the fleet has seen it stopped. The
    clock starts after the first reconcile, once the fleet grants.
    """
    provisioner = InstantProvisioner()
    submit_latencies: list[float] = []
    start_latencies: list[float] = []

    async def caller(index: int) -> None:
        for number in range(jobs_per_task):
            submitted = time.perf_counter()
            ticket = await fleet.submit(Job(f"job-{index}-{number}"))
            decided = time.perf_counter()
            task_id = await ticket.wait_started()
            if record_latencies:
                submit_latencies.append(decided - submitted)
                start_latencies.append(time.perf_counter() - submitted)
            provisioner.stop(task_id)
            await ticket.wait_finished()

    async with open_fleet(provisioner, config, journal=journal) as fleet:
        while not fleet.statistics().synced:
            await trio.sleep(0)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for index in range(tasks):
                nursery.start_soon(caller, index)
        elapsed = time.perf_counter() - started
        statistics = fleet.statistics()

    totals = {name: getattr(statistics, name) for name in ("submitted", "granted", "served", "stopped")}
    return FleetRun(elapsed, totals, statistics.peak_active, provisioner.peak_running, submit_latencies, start_latencies)


def filesystem_of(path: str) -> str | None:
    """Return the type of the file system that contains ``path``, from /proc/mounts, or None."""
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            entries = [line.split() for line in mounts]
    except OSError:
        return None
    resolved = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for entry in entries:
        if len(entry) < 3:
            continue
        mount_point, fs_type = entry[1], entry[2]
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) > best[0]):
            best = (len(mount_point), fs_type)
    return None if best is None else best[1]
