"""Decision cost: the capacity actor against the same ledger behind a trio.Lock.

Concurrent caller tasks each run jobs one after another: submit, wait for the
task id, stop the task, wait until the fleet has seen it stopped. The backend
is an instant fake provisioner, so the time measured is the cost of deciding,
not of waiting for a backend. Both variants use the same CapacityLedger, the
same reaper loop (list, reconcile, describe) and the same audit events. They
differ only in how the ledger is serialized:

- actor: ``open_fleet``, where one task owns the ledger and everything else
  sends it messages;
- lock: each caller, launcher and reaper step takes a ``trio.Lock`` and calls
  the ledger itself.

A decision is one ledger transition on behalf of one request: a submission
(granted or queued), a grant, a launch outcome, a release. Throughput is
decisions per wall-clock second. Variants alternate across rounds and the
median of each is reported, because absolute times drift on shared machines.

Run: python benchmarks/decision_cost.py [--tasks 1000] [--jobs-per-task 10] [--json]
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from typing import Any

import trio

import _support
from fleetactor import FleetConfig, Job
from fleetactor._audit import AuditLog
from fleetactor._ledger import (
    CapacityLedger,
    Event,
    Granted,
    LaunchSucceeded,
    Queued,
    Reconciled,
    RequestState,
    WorkerStopped,
)

DEFAULTS = {"tasks": 1000, "jobs_per_task": 10, "cap": 100, "rounds": 5, "reconcile_interval": 0.001}
SMOKE = {"tasks": 20, "jobs_per_task": 3, "cap": 5, "rounds": 1}


class LockedFleet:
    """The capacity ledger guarded by one trio.Lock instead of an actor.

    Each caller takes the lock around its own ledger calls and launches its
    own worker. A reaper task lists and describes, taking the same lock. Audit
    events carry the same names and fields as the actor's, so both variants
    pay for the same logging. Like the actor, it bounds every provisioner
    call with ``provisioner_timeout`` and upper-cases the statuses that
    ``describe`` returns.
    """

    def __init__(self, provisioner: Any, max_workers: int, reconcile_interval: float, *, audit: bool) -> None:
        self.provisioner = provisioner
        self.reconcile_interval = reconcile_interval
        defaults = FleetConfig(max_workers=max_workers)
        self.describe_interval = defaults.describe_interval
        self.provisioner_timeout = defaults.provisioner_timeout
        self.ledger = CapacityLedger(max_workers, visibility_timeout=0.0, launch_attempts=1)
        self.lock = trio.Lock()
        self.audit = AuditLog(uuid.uuid4().hex[:12]) if audit else None
        # Per request id: the first is set when the request is granted a slot,
        # the second when its worker stopped.
        self._granted: dict[str, trio.Event] = {}
        self._finished: dict[str, trio.Event] = {}

    async def run_reaper(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        deadline = trio.current_time()
        started = False
        while True:
            with trio.fail_after(self.provisioner_timeout):
                listed = await self.provisioner.list_running()
            async with self.lock:
                now = trio.current_time()
                self._apply(self.ledger.reconcile(listed, now))
                candidates = self.ledger.describe_candidates(now)
            if not started:
                task_status.started()
                started = True
            deadline += self.reconcile_interval

            # Like the actor's reaper, describe the tasks that left the
            # listing every describe_interval until the next listing is due.
            while candidates:
                with trio.fail_after(self.provisioner_timeout):
                    statuses = await self.provisioner.describe(candidates)
                statuses = {task_id: str(status).upper() for task_id, status in statuses.items()}
                async with self.lock:
                    self._apply(self.ledger.described(statuses, trio.current_time()))
                    candidates = self.ledger.follow_up_candidates(trio.current_time())
                next_describe = trio.current_time() + self.describe_interval
                if not candidates or next_describe >= deadline:
                    break
                await trio.sleep_until(next_describe)

            await trio.sleep_until(max(deadline, trio.current_time()))

    async def start(self, job: Job) -> tuple[str, trio.Event]:
        """Submit ``job``, launch it once it is granted a slot, and return its task id and a stop event."""
        async with self.lock:
            request, events = self.ledger.submit(job.key, job.priority, trio.current_time())
            granted = self._granted[request.request_id] = trio.Event()
            finished = self._finished[request.request_id] = trio.Event()
            self._apply(events)
        await granted.wait()

        launch_id = request.launch_id
        assert launch_id is not None
        with trio.fail_after(self.provisioner_timeout):
            task_id = await self.provisioner.launch(job, client_token=launch_id)
        async with self.lock:
            self._apply(self.ledger.launch_succeeded(launch_id, task_id, trio.current_time()))
        return task_id, finished

    def _apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Granted):
                self._emit("spawn.granted", request_id=event.request.request_id, launch_id=event.launch_id,
                           key=event.request.key, attempt=event.request.attempts, **_counts(event.counts))
                self._granted[event.request.request_id].set()
            elif isinstance(event, Queued):
                self._emit("spawn.queued", request_id=event.request.request_id, key=event.request.key,
                           priority=event.request.priority, active=event.counts.active,
                           queued=event.counts.queued, max_workers=event.counts.max_workers)
            elif isinstance(event, LaunchSucceeded):
                self._emit("launch.succeeded", launch_id=event.launch_id, task_id=event.task_id,
                           request_id=event.request.request_id, active=event.counts.active,
                           foreign=event.counts.foreign, unconfirmed=event.counts.unconfirmed)
            elif isinstance(event, WorkerStopped):
                self._emit("worker.stopped", launch_id=event.launch_id, task_id=event.task_id, status=event.status,
                           request_id=None if event.request is None else event.request.request_id,
                           active=event.counts.active)
                if event.request is not None:
                    request_id = event.request.request_id
                    self._granted.pop(request_id, None)
                    self._finished.pop(request_id).set()
                    self.ledger.forget(request_id)
            elif isinstance(event, Reconciled):
                counts = event.counts
                self._emit("reconcile", listed=event.listed, visible=counts.visible, pending=counts.pending,
                           foreign=counts.foreign, unconfirmed=counts.unconfirmed, active=counts.active,
                           queued=counts.queued)

    def _emit(self, name: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.emit(name, **fields)


def _counts(counts: Any) -> dict[str, int]:
    return {
        "active": counts.active,
        "visible": counts.visible,
        "pending": counts.pending,
        "foreign": counts.foreign,
        "unconfirmed": counts.unconfirmed,
        "queued": counts.queued,
        "max_workers": counts.max_workers,
    }


async def run_actor(tasks: int, jobs_per_task: int, cap: int, reconcile_interval: float) -> dict[str, Any]:
    config = FleetConfig(
        max_workers=cap,
        reconcile_interval=reconcile_interval,
        visibility_timeout=0.0,
        launch_attempts=1,
        shutdown_timeout=1.0,
    )
    run = await _support.run_fleet_jobs(config, tasks=tasks, jobs_per_task=jobs_per_task)
    return _result(run.totals, run.elapsed_s, run.peak_active, run.true_peak)


async def run_lock(tasks: int, jobs_per_task: int, cap: int, reconcile_interval: float, *, audit: bool) -> dict[str, Any]:
    provisioner = _support.InstantProvisioner()
    fleet = LockedFleet(provisioner, cap, reconcile_interval, audit=audit)

    async def caller(index: int) -> None:
        for number in range(jobs_per_task):
            task_id, finished = await fleet.start(Job(f"job-{index}-{number}"))
            provisioner.stop(task_id)
            await finished.wait()

    async with trio.open_nursery() as outer:
        await outer.start(fleet.run_reaper)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for index in range(tasks):
                nursery.start_soon(caller, index)
        elapsed = time.perf_counter() - started
        outer.cancel_scope.cancel()

    unfinished = [request for request in fleet.ledger.requests.values() if request.state is not RequestState.ENDED]
    assert not unfinished, f"{len(unfinished)} requests did not end"
    return _result(dict(fleet.ledger.totals), elapsed, fleet.ledger.peak_active, provisioner.peak_running)


def _result(totals: dict[str, int], elapsed: float, peak_active: int, true_peak: int) -> dict[str, Any]:
    decisions = totals["submitted"] + totals["granted"] + totals["served"] + totals["stopped"]
    return {
        "elapsed_s": elapsed,
        "decisions": decisions,
        "decisions_per_s": decisions / elapsed,
        "jobs": totals["stopped"],
        "jobs_per_s": totals["stopped"] / elapsed,
        "totals": totals,
        "peak_active": peak_active,
        "true_peak": true_peak,
    }


VARIANTS = {
    "actor": lambda arguments: run_actor(
        arguments.tasks, arguments.jobs_per_task, arguments.cap, arguments.reconcile_interval
    ),
    "lock": lambda arguments: run_lock(
        arguments.tasks, arguments.jobs_per_task, arguments.cap, arguments.reconcile_interval, audit=True
    ),
    "lock-no-audit": lambda arguments: run_lock(
        arguments.tasks, arguments.jobs_per_task, arguments.cap, arguments.reconcile_interval, audit=False
    ),
}


AUDIT_EVENTS_TIMED = 20_000


async def measure_audit_event() -> dict[str, float]:
    """Time one ``AuditLog.emit`` of a ``spawn.granted`` event, and its timestamp alone, in microseconds."""
    audit = AuditLog("benchmark")
    fields = {
        "request_id": uuid.uuid4().hex,
        "launch_id": uuid.uuid4().hex,
        "key": "job-1",
        "attempt": 1,
        "active": 1,
        "visible": 0,
        "pending": 1,
        "foreign": 0,
        "queued": 0,
        "max_workers": 100,
    }
    started = time.perf_counter()
    for _ in range(AUDIT_EVENTS_TIMED):
        audit.emit("spawn.granted", **fields)
    emit = (time.perf_counter() - started) / AUDIT_EVENTS_TIMED

    started = time.perf_counter()
    for _ in range(AUDIT_EVENTS_TIMED):
        audit.timestamp()
    timestamp = (time.perf_counter() - started) / AUDIT_EVENTS_TIMED
    return {"emit_us": emit * 1e6, "timestamp_us": timestamp * 1e6}


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    # Recorded before measuring, so it describes the code this run imported.
    host = _support.machine()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for _ in range(arguments.rounds):
        for name, variant in VARIANTS.items():
            runs[name].append(trio.run(variant, arguments))

    summary = {}
    for name, results in runs.items():
        summary[name] = {
            "decisions_per_s": _support.median([result["decisions_per_s"] for result in results]),
            "jobs_per_s": _support.median([result["jobs_per_s"] for result in results]),
            "decisions_per_round": results[0]["decisions"],
            "max_peak_active": max(result["peak_active"] for result in results),
            "max_true_peak": max(result["true_peak"] for result in results),
            "rounds": results,
        }
    actor = summary["actor"]["decisions_per_s"]
    return {
        "benchmark": "decision_cost",
        "command": _support.command_line(),
        "machine": host,
        "parameters": {
            "tasks": arguments.tasks,
            "jobs_per_task": arguments.jobs_per_task,
            "cap": arguments.cap,
            "rounds": arguments.rounds,
            "reconcile_interval_s": arguments.reconcile_interval,
        },
        "variants": summary,
        "audit_event": trio.run(measure_audit_event),
        "ratio_actor_to_lock": actor / summary["lock"]["decisions_per_s"],
        "ratio_actor_to_lock_no_audit": actor / summary["lock-no-audit"]["decisions_per_s"],
        "target_ratio": 0.67,
    }


def render(report: dict[str, Any]) -> None:
    rows = []
    for name, summary in report["variants"].items():
        ratio = summary["decisions_per_s"] / report["variants"]["lock"]["decisions_per_s"]
        rows.append([name, summary["decisions_per_s"], summary["jobs_per_s"], ratio, summary["max_peak_active"]])
    parameters = report["parameters"]
    print(
        f"{parameters['tasks']} tasks x {parameters['jobs_per_task']} jobs, cap {parameters['cap']}, "
        f"median of {parameters['rounds']} rounds"
    )
    _support.print_table(["variant", "decisions/s", "jobs/s", "vs lock", "peak active"], rows)
    audit = report["audit_event"]
    print()
    print(
        f"one audit event: {audit['emit_us']:.2f} us in AuditLog.emit, "
        f"of which {audit['timestamp_us']:.2f} us for its timestamp"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=DEFAULTS["tasks"], help="concurrent caller tasks")
    parser.add_argument("--jobs-per-task", type=int, default=DEFAULTS["jobs_per_task"], help="jobs each caller runs in sequence")
    parser.add_argument("--cap", type=int, default=DEFAULTS["cap"], help="max_workers of the fleet")
    parser.add_argument("--rounds", type=int, default=DEFAULTS["rounds"], help="runs of each variant, alternated")
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=DEFAULTS["reconcile_interval"],
        help="seconds between two reaper rounds in both variants",
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
