"""The ``fleetactor demo`` subcommand: a cold-start burst against the simulator, in virtual time.

:func:`run_scenario` runs one scenario and returns its figures as a dict,
for the command line and for benchmarks alike. Every policy drives the real
:class:`~fleetactor.ecs.EcsProvisioner` over a
:class:`~fleetactor.simulator.SimulatorTransport`, so the ECS requests are
signed, sent and parsed as they would be against AWS, but nothing leaves
the process and a scenario of simulated minutes runs in seconds.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import trio
import trio.testing
from botocore.credentials import Credentials

from fleetactor import FleetClosedError, FleetConfig, Job, LaunchFailedError, open_fleet
from fleetactor.audit import percentile
from fleetactor.cli._arguments import MAX_REQUESTS, integer, probability, seconds
from fleetactor.cli._logging import configure_logging
from fleetactor.cli._output import format_seconds, format_table, print_json
from fleetactor.ecs import EcsProvisioner
from fleetactor.policies import ListOnlyController, RecentLaunchesController
from fleetactor.simulator import EcsSimulator, GroundTruth, SimulatorConfig, SimulatorTransport
from fleetactor.simulator._cli import MAX_FOREIGN_TASKS, add_knob_argument, visibility_lag_max_error

__all__ = ["POLICIES", "Scenario", "run_scenario", "run_scenario_async"]

POLICIES = ("actor", "list-only", "recent-launches")

# The simulated cluster. The endpoint is never contacted: the transport
# hands every request to the in-process simulator.
_CLUSTER = "default"
_FAMILY = "worker"
_REGION = "us-east-1"
_ENDPOINT_URL = "http://127.0.0.1:4566"
_CREDENTIALS = Credentials("AKIAFLEETACTORDEMO01", "fleetactor-demo-secret-key-000000000000")

# Seconds of virtual time between two progress reports, and between two
# ground-truth checks while the reference controllers wait for their workers.
_TICK = 1.0
# Seconds of virtual time between two checks for the fleet's first listing.
_SYNC_POLL = 0.1


@dataclass(frozen=True)
class Scenario:
    """One demo run: the burst, the simulated ECS behaviour and the policy.

    Times are simulated seconds and rates are probabilities from 0 to 1.
    ``boot_time`` and ``stop_time`` default to the simulator's own defaults.

    Args:
        requests: Distinct jobs in the burst.
        max_workers: The cap every policy tries to keep.
        policy: ``"actor"`` (fleetactor), ``"list-only"`` or
            ``"recent-launches"`` (the reference controllers in
            :mod:`fleetactor.policies`).
        arrival_interval: Seconds between two arrivals; 0 sends the whole
            burst at once.
        visibility_lag: Seconds a new task stays out of ListTasks; math.inf
            keeps it out for good.
        visibility_lag_max: When set, each task's lag is drawn from
            ``visibility_lag`` to this value.
        foreign_tasks: Tasks of the same family that someone else started,
            running from the start to the end; they count against the cap.
        window: Seconds a launch counts for ``"recent-launches"``.
        reconcile_interval: Seconds between two listings of the actor.
        time_limit: Simulated seconds after which the run stops, whatever
            is left; requests still open then count as dropped.
    """

    requests: int = 24
    max_workers: int = 16
    policy: str = "actor"
    arrival_interval: float = 0.0
    visibility_lag: float = 8.0
    visibility_lag_max: float | None = None
    boot_time: float = field(default_factory=lambda: SimulatorConfig().boot_time)
    run_time: float = 60.0
    stop_time: float = field(default_factory=lambda: SimulatorConfig().stop_time)
    foreign_tasks: int = 0
    launch_failure_rate: float = 0.0
    ambiguous_rate: float = 0.0
    throttle_rate: float = 0.0
    list_failure_rate: float = 0.0
    seed: int = 0
    window: float = 5.0
    reconcile_interval: float = 5.0
    time_limit: float = 3600.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            msg = f"Scenario.policy must be one of {', '.join(POLICIES)}, got {self.policy!r}"
            raise ValueError(msg)
        if self.requests < 1 or self.max_workers < 1:
            msg = f"Scenario needs requests >= 1 and max_workers >= 1, got {self.requests} and {self.max_workers}"
            raise ValueError(msg)
        if self.foreign_tasks >= self.max_workers:
            msg = (
                f"Scenario.foreign_tasks={self.foreign_tasks} leaves no room under max_workers={self.max_workers}; "
                "foreign tasks run for the whole scenario, so use fewer than max_workers"
            )
            raise ValueError(msg)
        if not self.time_limit > 0:
            msg = f"Scenario.time_limit must be > 0 seconds, got {self.time_limit!r}"
            raise ValueError(msg)

    def simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(
            seed=self.seed,
            region=_REGION,
            cluster_name=_CLUSTER,
            task_definition_families=(_FAMILY,),
            visibility_lag=self.visibility_lag,
            visibility_lag_max=self.visibility_lag_max,
            boot_time=self.boot_time,
            run_time=self.run_time,
            stop_time=self.stop_time,
            launch_failure_rate=self.launch_failure_rate,
            ambiguous_rate=self.ambiguous_rate,
            run_task_throttle_rate=self.throttle_rate,
            list_tasks_throttle_rate=self.throttle_rate,
            describe_tasks_throttle_rate=self.throttle_rate,
            list_failure_rate=self.list_failure_rate,
            foreign_tasks=self.foreign_tasks,
            foreign_family=_FAMILY,
        )


@dataclass
class _Outcomes:
    """Request outcomes as the policy under test reports them."""

    served: int = 0
    failed: int = 0
    cancelled: int = 0
    queued: int = 0
    # Seconds from arrival until the worker's launch returned, per served request.
    waits_s: list[float] = field(default_factory=list)
    fleet_peak_active: int | None = None


Progress = Callable[[dict[str, Any]], None]


async def run_scenario_async(
    scenario: Scenario,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` inside the current trio run and return its figures.

    Use a virtual clock (``trio.testing.MockClock``) unless the real-time
    duration is wanted. The audit events go wherever structlog is
    configured. ``progress``, when given, is called about once per simulated
    second with ``time``, ``running`` (the simulator's count of fleet tasks
    not yet STOPPED), ``served``, ``failed`` and ``requests``.
    """
    simulator = EcsSimulator(scenario.simulator_config())
    provisioner = EcsProvisioner(
        _CLUSTER,
        _FAMILY,
        region=_REGION,
        endpoint_url=_ENDPOINT_URL,
        credentials=_CREDENTIALS,
        subnets=["subnet-demo"],
        # Foreign tasks share the family, so listing by family counts them.
        list_filter="family",
        transport=SimulatorTransport(simulator),
        jitter_random=random.Random(scenario.seed),
    )
    outcomes = _Outcomes()
    timed_out = True

    async with provisioner, trio.open_nursery() as nursery:
        if progress is not None:
            nursery.start_soon(_report_progress, simulator, outcomes, scenario, progress)
        with trio.move_on_after(scenario.time_limit):
            if scenario.policy == "actor":
                await _run_actor(scenario, provisioner, outcomes)
            else:
                await _run_controller(scenario, provisioner, simulator, outcomes)
            timed_out = False
        nursery.cancel_scope.cancel()

    return _figures(scenario, simulator.ground_truth(), outcomes, timed_out)


def run_scenario(
    scenario: Scenario | None = None,
    *,
    audit_log: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` (the default burst when None) in virtual time and return its figures.

    Starts its own ``trio.run`` with ``MockClock(autojump_threshold=0)``, so
    call it from synchronous code. structlog is configured for the duration
    of the run: audit events go to ``audit_log`` as JSON lines, or are
    dropped when it is None, and the previous configuration is restored.

    Raises:
        OSError: ``audit_log`` cannot be opened for writing.
    """
    scenario = Scenario() if scenario is None else scenario
    with configure_logging(audit_log):
        run = functools.partial(run_scenario_async, scenario, progress=progress)
        return trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))


# The policies


def _keys(scenario: Scenario) -> list[str]:
    return [f"demo-{index}" for index in range(scenario.requests)]


async def _arrive(scenario: Scenario, handle: Callable[[str], Any]) -> None:
    """Start ``handle(key)`` for each request, ``arrival_interval`` seconds apart, and wait for all."""
    async with trio.open_nursery() as nursery:
        for index, key in enumerate(_keys(scenario)):
            if index and scenario.arrival_interval:
                await trio.sleep(scenario.arrival_interval)
            nursery.start_soon(handle, key)


async def _run_actor(scenario: Scenario, provisioner: EcsProvisioner, outcomes: _Outcomes) -> None:
    config = FleetConfig(
        max_workers=scenario.max_workers,
        reconcile_interval=scenario.reconcile_interval,
        seed=scenario.seed,
        fleet_id=f"demo-{scenario.seed}",
    )

    async with open_fleet(provisioner, config) as fleet:

        async def handle(key: str) -> None:
            arrived = trio.current_time()
            try:
                ticket = await fleet.submit(Job(key=key))
                if ticket.decision == "queued":
                    outcomes.queued += 1
                await ticket.wait_started()
            except LaunchFailedError:
                outcomes.failed += 1
                return
            except trio.ClosedResourceError:
                outcomes.cancelled += 1
                return
            outcomes.served += 1
            outcomes.waits_s.append(trio.current_time() - arrived)
            # The run ends when every worker has stopped. A fleet that closes
            # first (at the time limit) leaves the request served.
            try:
                await ticket.wait_finished()
            except FleetClosedError:
                pass

        # The burst hits a fleet that is up and has listed the cluster once,
        # as in a service that opened its fleet at start. Before that first
        # listing every request would be queued.
        while not fleet.statistics().synced:
            await trio.sleep(_SYNC_POLL)
        try:
            await _arrive(scenario, handle)
        finally:
            outcomes.fleet_peak_active = fleet.statistics().peak_active


async def _run_controller(
    scenario: Scenario,
    provisioner: EcsProvisioner,
    simulator: EcsSimulator,
    outcomes: _Outcomes,
) -> None:
    controller: ListOnlyController | RecentLaunchesController
    if scenario.policy == "list-only":
        controller = ListOnlyController(provisioner, scenario.max_workers)
    else:
        controller = RecentLaunchesController(provisioner, scenario.max_workers, scenario.window)

    async def handle(key: str) -> None:
        await controller.serve(Job(key=key))
        _copy_controller_outcomes(controller, outcomes)

    await _arrive(scenario, handle)

    # The controllers track no worker after its launch; the run ends when
    # the simulator reports every fleet task STOPPED.
    while simulator.ground_truth().fleet_active > 0:
        await trio.sleep(_TICK)


def _copy_controller_outcomes(controller: ListOnlyController | RecentLaunchesController, outcomes: _Outcomes) -> None:
    outcomes.served = controller.stats.served
    outcomes.failed = controller.stats.failed
    outcomes.waits_s = list(controller.stats.waits_s)


# Figures


async def _report_progress(simulator: EcsSimulator, outcomes: _Outcomes, scenario: Scenario, progress: Progress) -> None:
    while True:
        truth = simulator.ground_truth()
        progress(
            {
                "time": truth.time,
                "running": truth.fleet_active,
                "served": outcomes.served,
                "failed": outcomes.failed,
                "requests": scenario.requests,
                "max_workers": scenario.max_workers,
            }
        )
        await trio.sleep(_TICK)


def _last_fleet_stop(truth: GroundTruth) -> float:
    """Return the time of the last change in the count of fleet tasks, 0 when none ran."""
    last_change = 0.0
    previous = 0
    for point in truth.timeline:
        if point.fleet_active != previous:
            last_change = point.time
            previous = point.fleet_active
    return last_change


def _makespan(truth: GroundTruth, timed_out: bool) -> float | None:
    # None when no fleet task ever ran, so a run stopped by the time limit
    # does not report the limit as the time its workers took.
    if truth.peak_fleet_active == 0:
        return None
    if timed_out or truth.fleet_active:
        return truth.time
    return _last_fleet_stop(truth)


def _figures(scenario: Scenario, truth: GroundTruth, outcomes: _Outcomes, timed_out: bool) -> dict[str, Any]:
    waits = outcomes.waits_s
    ended = outcomes.served + outcomes.failed + outcomes.cancelled
    return {
        "requests": scenario.requests,
        "max_workers": scenario.max_workers,
        "policy": scenario.policy,
        # The cap counts foreign tasks too, so the peak includes them.
        "true_peak": truth.peak_active,
        "true_peak_fleet": truth.peak_fleet_active,
        "served": outcomes.served,
        "failed": outcomes.failed,
        "cancelled": outcomes.cancelled,
        "dropped": scenario.requests - ended,
        "queued": outcomes.queued if scenario.policy == "actor" else None,
        "fleet_peak_active": outcomes.fleet_peak_active,
        "run_task_calls": truth.calls.get("RunTask", 0),
        "tasks_started": truth.tasks_started,
        "duplicate_tasks": truth.duplicate_tasks,
        "list_tasks_calls": truth.calls.get("ListTasks", 0),
        "describe_tasks_calls": truth.calls.get("DescribeTasks", 0),
        "launch_failures": truth.launch_failures,
        "ambiguous_launches": truth.ambiguous_launches,
        "list_failures": truth.list_failures,
        "throttled": sum(truth.throttled.values()),
        "makespan_s": _makespan(truth, timed_out),
        "max_wait_s": max(waits, default=None),
        "p95_wait_s": percentile(waits, 0.95),
        "p50_wait_s": percentile(waits, 0.50),
        "timed_out": timed_out,
        "scenario": {key: _json_number(value) for key, value in asdict(scenario).items()},
    }


def _json_number(value: Any) -> Any:
    # JSON has no infinity; a lag of math.inf is written as "never".
    return "never" if isinstance(value, float) and math.isinf(value) else value


# The command line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = Scenario()
    parser = subparsers.add_parser(
        "demo",
        help="run a cold-start burst against the built-in ECS simulator, in virtual time",
        description=(
            "Send a burst of distinct requests to a fleet capped at --max-workers, against the built-in ECS "
            "simulator whose ListTasks lags behind RunTask. The run uses the real ECS client in virtual time, so "
            "minutes of simulated time pass in seconds. Compare --policy actor with the naive "
            "list-only and recent-launches controllers. Exit status: 0 when every request ended before "
            "--time-limit, 1 when the time limit stopped the run or requests were dropped, 2 for bad input."
        ),
    )
    burst = parser.add_argument_group("burst")
    burst.add_argument(
        "--requests",
        type=integer(1, MAX_REQUESTS),
        default=defaults.requests,
        metavar="N",
        help=f"distinct requests in the burst, at most {MAX_REQUESTS} (default: %(default)s)",
    )
    burst.add_argument(
        "--max-workers", type=integer(1), default=defaults.max_workers, metavar="N", help="the cap on workers that run at once (default: %(default)s)"
    )
    burst.add_argument(
        "--arrival-interval",
        type=seconds(),
        default=defaults.arrival_interval,
        metavar="S",
        help="seconds between two arrivals; 0 sends the whole burst at once (default: %(default)s)",
    )
    burst.add_argument(
        "--policy",
        choices=POLICIES,
        default=defaults.policy,
        help="what keeps the cap: the fleetactor actor, or a naive reference controller (default: %(default)s)",
    )
    burst.add_argument(
        "--window",
        type=seconds(),
        default=None,
        metavar="S",
        help=f"seconds a launch counts on top of ListTasks, for --policy recent-launches only (default: {defaults.window:g})",
    )
    burst.add_argument(
        "--seed", type=integer(0), default=defaults.seed, metavar="N", help="seed of the random draws of the simulator, the ECS client and the fleet (default: %(default)s)"
    )
    burst.add_argument(
        "--time-limit",
        type=seconds(allow_zero=False),
        default=defaults.time_limit,
        metavar="S",
        help="simulated seconds after which the run stops; requests still open count as dropped (default: %(default)s)",
    )

    ecs = parser.add_argument_group("simulated ECS")
    add_knob_argument(ecs, "--visibility-lag", type=_lag, default=defaults.visibility_lag)
    add_knob_argument(ecs, "--visibility-lag-max", type=seconds(), default=None)
    add_knob_argument(ecs, "--boot-time", type=seconds(), default=defaults.boot_time)
    add_knob_argument(
        ecs, "--run-time", type=seconds(), default=defaults.run_time, help="seconds each worker runs (default: %(default)s)"
    )
    add_knob_argument(ecs, "--stop-time", type=seconds(), default=defaults.stop_time)
    add_knob_argument(
        ecs,
        "--foreign-tasks",
        type=integer(0, MAX_FOREIGN_TASKS),
        default=defaults.foreign_tasks,
        help="tasks of the same family started by someone else, running throughout; they count against the cap "
        f"(fewer than --max-workers, at most {MAX_FOREIGN_TASKS}; default: %(default)s)",
    )
    add_knob_argument(ecs, "--launch-failure-rate", type=probability, default=defaults.launch_failure_rate)
    add_knob_argument(
        ecs,
        "--ambiguous-rate",
        type=probability,
        default=defaults.ambiguous_rate,
        help="probability from 0 to 1 that RunTask starts the task but returns HTTP 500 (default: %(default)s)",
    )
    add_knob_argument(ecs, "--throttle-rate", type=probability, default=defaults.throttle_rate)
    add_knob_argument(ecs, "--list-failure-rate", type=probability, default=defaults.list_failure_rate)

    output = parser.add_argument_group("output")
    output.add_argument(
        "--audit-log",
        metavar="PATH",
        default=None,
        help="write the actor's audit events to PATH as JSON lines, replacing the file (only with --policy actor)",
    )
    output.add_argument("--json", action="store_true", help="print the figures as one JSON object instead of a table")
    parser.set_defaults(handler=run, parser=parser)


def _lag(text: str) -> float:
    if text.strip().lower() == "never":
        return math.inf
    try:
        return seconds()(text)
    except argparse.ArgumentTypeError as error:
        msg = f"{error}, or 'never'"
        raise argparse.ArgumentTypeError(msg) from None


def scenario_from_arguments(arguments: argparse.Namespace) -> Scenario:
    """Build the Scenario; a conflict between options is reported with ``parser.error``."""
    parser: argparse.ArgumentParser = arguments.parser
    lag, lag_max = arguments.visibility_lag, arguments.visibility_lag_max
    lag_max_error = visibility_lag_max_error(lag, lag_max)
    if lag_max_error is not None:
        parser.error(f"argument --visibility-lag-max: {lag_max_error}")
    if arguments.foreign_tasks >= arguments.max_workers:
        parser.error(
            f"argument --foreign-tasks: {arguments.foreign_tasks} leaves no room under --max-workers "
            f"{arguments.max_workers}; foreign tasks run throughout, so use fewer than {arguments.max_workers}"
        )
    if arguments.audit_log is not None and arguments.policy != "actor":
        parser.error(f"argument --audit-log: the {arguments.policy} policy writes no audit events; use it with --policy actor")
    if arguments.window is not None and arguments.policy != "recent-launches":
        parser.error(f"argument --window: the {arguments.policy} policy has no window; use it with --policy recent-launches")
    window = Scenario.window if arguments.window is None else arguments.window

    return Scenario(
        requests=arguments.requests,
        max_workers=arguments.max_workers,
        policy=arguments.policy,
        arrival_interval=arguments.arrival_interval,
        visibility_lag=lag,
        visibility_lag_max=lag_max,
        boot_time=arguments.boot_time,
        run_time=arguments.run_time,
        stop_time=arguments.stop_time,
        foreign_tasks=arguments.foreign_tasks,
        launch_failure_rate=arguments.launch_failure_rate,
        ambiguous_rate=arguments.ambiguous_rate,
        throttle_rate=arguments.throttle_rate,
        list_failure_rate=arguments.list_failure_rate,
        seed=arguments.seed,
        window=window,
        time_limit=arguments.time_limit,
    )


def run(arguments: argparse.Namespace) -> int:
    scenario = scenario_from_arguments(arguments)
    if arguments.audit_log is not None:
        _check_writable(arguments.parser, arguments.audit_log)

    progress_line = _ProgressLine(sys.stderr) if sys.stderr.isatty() and not arguments.json else None
    try:
        figures = run_scenario(scenario, audit_log=arguments.audit_log, progress=progress_line)
    finally:
        if progress_line is not None:
            progress_line.clear()

    if arguments.json:
        print_json(figures)
    else:
        print(format_figures(figures))
    return 1 if figures["timed_out"] or figures["dropped"] else 0


def _check_writable(parser: argparse.ArgumentParser, path: str) -> None:
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        parser.error(f"argument --audit-log: cannot write {path!r}: {error.strerror or error}")


class _ProgressLine:
    """A status line on a terminal, rewritten at most ten times per real second."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last_write = 0.0

    def __call__(self, state: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_write < 0.1:
            return
        self._last_write = now
        line = (
            f"t={state['time']:.0f}s  running {state['running']} (cap {state['max_workers']})  "
            f"served {state['served']}/{state['requests']}  failed {state['failed']}"
        )
        self._stream.write(f"\r\x1b[K{line}")
        self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r\x1b[K")
        self._stream.flush()


def format_figures(figures: dict[str, Any]) -> str:
    scenario = figures["scenario"]
    lag = scenario["visibility_lag"]
    lag_text = "never listed" if lag == "never" else f"{lag:g} s"
    header = (
        f"fleetactor demo: policy {figures['policy']}, {figures['requests']} requests, "
        f"cap {figures['max_workers']}, visibility lag {lag_text}, run time {scenario['run_time']:g} s"
    )
    rows: list[tuple[str, object]] = [
        ("requests", figures["requests"]),
        ("cap (max workers)", figures["max_workers"]),
        ("true peak", figures["true_peak"]),
        ("served", figures["served"]),
        ("failed", figures["failed"]),
        ("dropped", figures["dropped"]),
        ("RunTask calls", figures["run_task_calls"]),
        ("tasks started", figures["tasks_started"]),
        ("duplicate tasks", figures["duplicate_tasks"]),
        ("ListTasks calls", figures["list_tasks_calls"]),
        ("DescribeTasks calls", figures["describe_tasks_calls"]),
        ("makespan", format_seconds(figures["makespan_s"])),
        ("longest wait", format_seconds(figures["max_wait_s"])),
        ("p95 wait", format_seconds(figures["p95_wait_s"])),
    ]
    if figures["cancelled"]:
        rows.insert(5, ("cancelled", figures["cancelled"]))

    if figures["true_peak"] > figures["max_workers"]:
        verdict = f"The cap was broken: {figures['true_peak']} workers ran at once against a cap of {figures['max_workers']}."
    else:
        verdict = f"The cap held: at most {figures['true_peak']} of {figures['max_workers']} workers ran at once."
    notes = [
        "true peak: the simulator's own count of tasks not yet STOPPED, foreign tasks included",
        "wait: from a request's arrival until its worker's launch returned",
    ]
    if figures["timed_out"]:
        notes.insert(0, f"the run stopped at the time limit of {scenario['time_limit']:g} s")
    return "\n".join([header, "", format_table(rows, indent="  "), "", verdict, *(f"  ({note})" for note in notes)])
