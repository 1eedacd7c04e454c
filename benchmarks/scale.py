"""Scale: a large queue behind a full fleet, and the cost of reconciling a large listing.

Three measurements, in real time:

- submissions: ``open_fleet`` over the instant fake provisioner of
  ``_support``, cap 1,000. The first 1,000 submissions are granted and
  launched, the rest queue. Concurrent submitters send 100,000 submissions
  in all; the figure is submit decisions per wall-clock second.
- memory: a second run of the same workload under tracemalloc, so that
  tracing does not slow the timed one. Bytes per queued request are the
  traced memory with the queue full, minus the traced memory with the 1,000
  workers running and nothing queued, divided by the queued requests. The
  lines that allocated the difference are listed, largest first.
- reconcile: one ``CapacityLedger.reconcile`` call with 1,000 listed tasks
  that all match reservations, with the queue full. Then one
  ``EcsProvisioner.list_running`` call that pages through 1,000 tasks (ten
  ListTasks pages of 100) over the in-process ECS simulator, with rate limits
  off on both sides. The actor does both every reconcile interval.

Run: python benchmarks/scale.py [--submissions 100000] [--cap 1000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import trio
from botocore.credentials import Credentials

import _support
from fleetactor import FleetConfig, Job, Ticket, open_fleet
from fleetactor._ledger import CapacityLedger, Granted
from fleetactor.ecs import EcsProvisioner
from fleetactor.ecs._ratelimit import RateLimit
from fleetactor.simulator import EcsSimulator, SimulatorConfig, SimulatorTransport

DEFAULTS = {"submissions": 100_000, "cap": 1000, "submitters": 1000, "reconcile_repeats": 200, "list_repeats": 30}
SMOKE = {"submissions": 300, "cap": 100, "submitters": 10, "reconcile_repeats": 3, "list_repeats": 2}
TARGET_BYTES_PER_QUEUED_REQUEST = 1024
TOP_LINES = 12

# Rate limits on the client side that never bind, so the round trip is measured, not the bucket.
_UNLIMITED = RateLimit(per_second=1e9, burst=1_000_000_000)


def _fleet_config(cap: int) -> FleetConfig:
    # A reconcile interval longer than the run: the reaper lists once at the
    # start and the timed part is submissions only.
    return FleetConfig(max_workers=cap, reconcile_interval=3600.0, visibility_timeout=3600.0, shutdown_timeout=5.0)


async def _submit_all(fleet: Any, keys: range, submitters: int, tickets: list[Ticket]) -> None:
    async def submitter(first: int) -> None:
        for index in range(first, len(keys), submitters):
            tickets.append(await fleet.submit(Job(f"job-{keys[index]}")))

    async with trio.open_nursery() as nursery:
        for first in range(min(submitters, len(keys))):
            nursery.start_soon(submitter, first)


async def _wait_launched(fleet: Any) -> None:
    while fleet.statistics().launching:
        await trio.sleep(0)


async def measure_submissions(submissions: int, cap: int, submitters: int) -> dict[str, Any]:
    """Time the submit decisions of a full run: cap grants, then queueing."""
    provisioner = _support.InstantProvisioner()
    tickets: list[Ticket] = []
    async with open_fleet(provisioner, _fleet_config(cap)) as fleet:
        while not fleet.statistics().synced:
            await trio.sleep(0)
        started = time.perf_counter()
        await _submit_all(fleet, range(submissions), submitters, tickets)
        elapsed = time.perf_counter() - started
        await _wait_launched(fleet)
        statistics = fleet.statistics()
    return {
        "elapsed_s": elapsed,
        "decisions": len(tickets),
        "decisions_per_s": len(tickets) / elapsed,
        "granted": statistics.granted,
        "queued": statistics.queued,
        "peak_active": statistics.peak_active,
        "true_peak": provisioner.peak_running,
    }


async def measure_memory(submissions: int, cap: int, submitters: int) -> dict[str, Any]:
    """Trace the memory a full queue costs, and where it was allocated."""
    provisioner = _support.InstantProvisioner()
    tickets: list[Ticket] = []
    tracemalloc.start(1)
    try:
        async with open_fleet(provisioner, _fleet_config(cap)) as fleet:
            while not fleet.statistics().synced:
                await trio.sleep(0)
            await _submit_all(fleet, range(cap), submitters, tickets)
            await _wait_launched(fleet)
            gc.collect()
            running_only, _ = tracemalloc.get_traced_memory()
            before = tracemalloc.take_snapshot()

            await _submit_all(fleet, range(cap, submissions), submitters, tickets)
            gc.collect()
            with_queue, peak = tracemalloc.get_traced_memory()
            after = tracemalloc.take_snapshot()
            statistics = fleet.statistics()
    finally:
        tracemalloc.stop()

    queued = statistics.queued
    per_request = (with_queue - running_only) / queued if queued else None
    return {
        "queued": queued,
        "running": statistics.active,
        "traced_with_workers_only_bytes": running_only,
        "traced_with_queue_bytes": with_queue,
        "peak_traced_bytes": peak,
        "bytes_per_queued_request": per_request,
        "by_line": _by_line(before, after, queued),
    }


def _by_line(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, queued: int) -> list[dict[str, Any]]:
    tracemalloc_file = tracemalloc.__file__
    filters = [tracemalloc.Filter(False, tracemalloc_file)]
    differences = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
    lines = []
    for difference in differences[:TOP_LINES]:
        frame = difference.traceback[0]
        lines.append(
            {
                "line": f"{_short_path(frame.filename)}:{frame.lineno}",
                "bytes": difference.size_diff,
                "blocks": difference.count_diff,
                "bytes_per_queued_request": difference.size_diff / queued if queued else None,
            }
        )
    return lines


def _short_path(filename: str) -> str:
    for marker in ("/fleetactor/", "/benchmarks/", "/site-packages/", "/lib/python"):
        if marker in filename:
            return filename[filename.index(marker) + 1 :]
    return filename


def measure_ledger_reconcile(submissions: int, cap: int, repeats: int) -> dict[str, Any]:
    """Time ``reconcile`` and ``describe_candidates`` on a ledger with a full fleet and a full queue."""
    ledger = CapacityLedger(cap, visibility_timeout=3600.0, launch_attempts=1)
    for index in range(submissions):
        ledger.submit(f"job-{index}", 0, now=0.0)
    granted = [event for event in ledger.reconcile([], now=0.0) if isinstance(event, Granted)]
    task_ids = []
    for number, event in enumerate(granted):
        task_id = f"task-{number}"
        ledger.launch_succeeded(event.launch_id, task_id, now=0.0)
        task_ids.append(task_id)

    started = time.perf_counter()
    ledger.reconcile(task_ids, now=1.0)
    first = time.perf_counter() - started

    reconcile_times = []
    candidate_times = []
    for repeat in range(repeats):
        now = 2.0 + repeat
        started = time.perf_counter()
        ledger.reconcile(task_ids, now)
        middle = time.perf_counter()
        ledger.describe_candidates(now)
        reconcile_times.append(middle - started)
        candidate_times.append(time.perf_counter() - middle)
    return {
        "listed": len(task_ids),
        "queued": ledger.queued,
        "first_reconcile_s": first,
        "reconcile_s_median": _support.median(reconcile_times),
        "describe_candidates_s_median": _support.median(candidate_times),
        "repeats": repeats,
    }


async def measure_list_round_trip(listed: int, repeats: int) -> dict[str, Any]:
    """Time ``list_running`` over the in-process simulator with ``listed`` running tasks."""
    simulator = EcsSimulator(
        SimulatorConfig(
            task_definition_families=("worker",),
            foreign_tasks=listed,
            # The provisioner lists by startedBy, so these count as its own tasks.
            foreign_started_by="fleetactor",
            rate_limits=False,
            seed=1,
        )
    )
    provisioner = EcsProvisioner(
        "default",
        "worker",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:4566",
        credentials=Credentials(_support.FAKE_ACCESS_KEY, _support.FAKE_SECRET_KEY),
        subnets=["subnet-1"],
        transport=SimulatorTransport(simulator),
        rate_limits={"RunTask": _UNLIMITED},
        default_rate_limit=_UNLIMITED,
    )
    times = []
    async with provisioner:
        task_ids = await provisioner.list_running()
        for _ in range(repeats):
            started = time.perf_counter()
            task_ids = await provisioner.list_running()
            times.append(time.perf_counter() - started)
    pages = simulator.ground_truth().calls.get("ListTasks", 0) // (repeats + 1)
    return {
        "listed": len(task_ids),
        "pages": pages,
        "list_running_s_median": _support.median(times),
        "per_page_s_median": _support.median(times) / pages if pages else None,
        "repeats": repeats,
    }


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    # Recorded before measuring, so it describes the code this run imported.
    host = _support.machine()
    submissions = trio.run(measure_submissions, arguments.submissions, arguments.cap, arguments.submitters)
    memory = trio.run(measure_memory, arguments.submissions, arguments.cap, arguments.submitters)
    ledger = measure_ledger_reconcile(arguments.submissions, arguments.cap, arguments.reconcile_repeats)
    round_trip = trio.run(measure_list_round_trip, arguments.cap, arguments.list_repeats)
    per_request = memory["bytes_per_queued_request"]
    return {
        "benchmark": "scale",
        "command": _support.command_line(),
        "machine": host,
        "parameters": {
            "submissions": arguments.submissions,
            "cap": arguments.cap,
            "submitters": arguments.submitters,
            "provisioner": "InstantProvisioner (submissions, memory); EcsProvisioner over the simulator (ListTasks)",
        },
        "submissions": submissions,
        "memory": memory,
        "ledger_reconcile": ledger,
        "list_round_trip": round_trip,
        "reconcile_total_s": ledger["reconcile_s_median"]
        + ledger["describe_candidates_s_median"]
        + round_trip["list_running_s_median"],
        "target_bytes_per_queued_request": TARGET_BYTES_PER_QUEUED_REQUEST,
        "target_met": per_request is not None and per_request <= TARGET_BYTES_PER_QUEUED_REQUEST,
    }


def render(report: dict[str, Any]) -> None:
    parameters = report["parameters"]
    submissions = report["submissions"]
    memory = report["memory"]
    ledger = report["ledger_reconcile"]
    round_trip = report["list_round_trip"]
    print(
        f"{parameters['submissions']:,} submissions from {parameters['submitters']:,} submitters, "
        f"cap {parameters['cap']:,}"
    )
    rows = [
        ["submit decisions per second", submissions["decisions_per_s"]],
        ["granted / queued at the end", f"{submissions['granted']:,} / {submissions['queued']:,}"],
        ["peak traced memory (MiB)", memory["peak_traced_bytes"] / 2**20],
        ["traced memory, full queue (MiB)", memory["traced_with_queue_bytes"] / 2**20],
        ["bytes per queued request", memory["bytes_per_queued_request"]],
        [f"ledger.reconcile, {ledger['listed']:,} listed (us)", ledger["reconcile_s_median"] * 1e6],
        ["ledger.describe_candidates (us)", ledger["describe_candidates_s_median"] * 1e6],
        [f"list_running, {round_trip['listed']:,} tasks in {round_trip['pages']} pages (ms)", round_trip["list_running_s_median"] * 1e3],
        ["one ListTasks page (ms)", (round_trip["per_page_s_median"] or 0) * 1e3],
        ["one reconcile in all (ms)", report["reconcile_total_s"] * 1e3],
    ]
    _support.print_table(["figure", "value"], rows)
    print()
    print("memory added by the queued requests, by line:")
    _support.print_table(
        ["line", "bytes per queued request", "blocks"],
        [[line["line"], line["bytes_per_queued_request"], line["blocks"]] for line in memory["by_line"]],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=DEFAULTS["submissions"], help="requests submitted in all")
    parser.add_argument("--cap", type=int, default=DEFAULTS["cap"], help="max_workers, and the tasks listed per reconcile")
    parser.add_argument("--submitters", type=int, default=DEFAULTS["submitters"], help="concurrent submitting tasks")
    parser.add_argument(
        "--reconcile-repeats", type=int, default=DEFAULTS["reconcile_repeats"], help="timed ledger.reconcile calls"
    )
    parser.add_argument("--list-repeats", type=int, default=DEFAULTS["list_repeats"], help="timed list_running calls")
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
