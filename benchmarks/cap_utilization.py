"""Cap and utilization: the actor against the two naive controllers on the ECS simulator.

Every policy drives the real EcsProvisioner over the in-process simulator in
virtual time (trio's MockClock), on the same workload in the same run:

- three cold bursts: 24 requests at once, cap 16, run time 60 s, with a
  ListTasks visibility lag of 8 s, of 30 s, and a blind list (tasks never
  listed);
- two large bursts of 200 requests, cap 16, run time 60 s, lag 8 s: one
  with every request at once, one with the requests spread evenly over
  20 s. Arriving at once, every request of the list-only controller lists
  before the 8 s lag shows any task, so none polls and all launch. Spread
  out, later requests find the cap in the listing and poll;
- sustained load: Poisson arrivals for 2 simulated hours at 90% of the
  fleet's service rate, cap 16, lag 8 s, exponential run times with mean
  60 s.

Figures per policy come from the simulator's ground truth, never from what
the policy believes: the true peak of tasks not yet STOPPED, the timeline of
that count, and the calls per ECS operation. The reference controllers
also report their polls: listings that found no room or failed. A request
waits from its arrival until its launch returned a task id. Utilization is
the time-averaged count of fleet tasks not yet STOPPED divided by the cap,
over the time when at least one request was waiting.

Run: python benchmarks/cap_utilization.py [--json] [--smoke]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import trio
import trio.testing
from botocore.credentials import Credentials

import _support
from fleetactor import FleetConfig, Job, LaunchFailedError, open_fleet
from fleetactor.ecs import EcsProvisioner
from fleetactor.policies import ListOnlyController, RecentLaunchesController
from fleetactor.simulator import EcsSimulator, SimulatorConfig, SimulatorTransport

TARGET_UTILIZATION = 0.99
# "Far below" the list-only policy's ListTasks calls, taken as at most half.
TARGET_LIST_TASKS_RATIO = 0.5
# Other seeds over which the ideal queue's p95 wait is computed.
IDEAL_SEEDS = 40
P95_TAIL = 0.05

DEFAULTS = {
    "cap": 16,
    "burst_requests": 24,
    "burst_run_time": 60.0,
    "large_burst_requests": 200,
    "large_burst_spread": 20.0,
    "sustained_duration": 7200.0,
    "sustained_load": 0.9,
    "sustained_mean_run_time": 60.0,
    "boot_time": 5.0,
    "stop_time": 5.0,
    "window": 10.0,
    "poll_interval": 1.0,
    "reconcile_interval": [5.0, 1.0],
    "arrival_phase": 0.5,
    "seed": 1,
}
SMOKE = {
    "cap": 4,
    "burst_requests": 6,
    "burst_run_time": 20.0,
    "large_burst_requests": 12,
    # Longer than the 8 s lag plus the launch of the first tasks, so the
    # list-only controller finds the cap and polls even in the smoke run.
    "large_burst_spread": 24.0,
    "sustained_duration": 300.0,
    "sustained_mean_run_time": 20.0,
}
SMOKE_RECONCILE_INTERVALS = [5.0]


@dataclass(frozen=True)
class Workload:
    """Arrival times and run times that every policy receives unchanged.

    ``run_times[k]`` is the run time of the k-th task the simulator creates,
    whatever request it serves, so all policies run the same work.
    """

    name: str
    arrivals: tuple[float, ...]
    run_times: tuple[float, ...]
    visibility_lag: float
    description: str


@dataclass
class RequestTimes:
    arrived: float
    # When the launch returned a task id, or the request failed; None while waiting.
    left_queue: float | None = None
    served: bool = False


@dataclass
class PolicyRun:
    """Request times, start and polls of one policy run, besides the simulator's ground truth."""

    requests: list[RequestTimes]
    # The moment of the first arrival, in trio's clock.
    start: float
    # Listings by a reference controller that found no room or failed, each
    # followed by a poll; None for the actor.
    polls: int | None = None


@dataclass
class Settings:
    cap: int
    boot_time: float
    stop_time: float
    window: float
    poll_interval: float
    visibility_timeout: float
    describe_interval: float
    arrival_phase: float
    seed: int
    session: botocore.session.Session = field(default_factory=botocore.session.Session)


# Workloads


def burst(name: str, requests: int, run_time: float, visibility_lag: float, spread: float = 0.0) -> Workload:
    """Build ``requests`` arrivals spaced evenly over ``spread`` seconds from t=0, all at t=0 when it is 0."""
    lag_text = "never listed" if math.isinf(visibility_lag) else f"lag {visibility_lag:g} s"
    arrival_text = "at t=0" if spread == 0 else f"spread evenly over {spread:g} s"
    return Workload(
        name=name,
        arrivals=tuple(index * spread / requests for index in range(requests)),
        run_times=(run_time,) * requests,
        visibility_lag=visibility_lag,
        description=f"{requests} requests {arrival_text}, run {run_time:g} s, {lag_text}",
    )


def service_time(settings: Settings, mean_run_time: float) -> float:
    """Return the mean seconds a worker occupies a slot: boot, run and stop."""
    return settings.boot_time + mean_run_time + settings.stop_time


def sustained(arguments: argparse.Namespace, settings: Settings, seed: int) -> tuple[Workload, dict[str, float]]:
    """Draw Poisson arrivals at ``sustained_load`` times the fleet's service rate, and exponential run times."""
    mean_service = service_time(settings, arguments.sustained_mean_run_time)
    service_rate = 1 / mean_service
    arrival_rate = arguments.sustained_load * settings.cap * service_rate
    draws = random.Random(seed)
    arrivals = []
    moment = draws.expovariate(arrival_rate)
    while moment < arguments.sustained_duration:
        arrivals.append(moment)
        moment += draws.expovariate(arrival_rate)
    run_times = tuple(draws.expovariate(1 / arguments.sustained_mean_run_time) for _ in arrivals)
    workload = Workload(
        name="sustained",
        arrivals=tuple(arrivals),
        run_times=run_times,
        visibility_lag=8.0,
        description=(
            f"Poisson arrivals for {arguments.sustained_duration:g} s at {arguments.sustained_load:g} of the service "
            f"rate, run time exponential with mean {arguments.sustained_mean_run_time:g} s, lag 8 s"
        ),
    )
    model = {
        "arrival_rate_per_s": arrival_rate,
        "service_rate_per_s": service_rate,
        "mean_service_time_s": mean_service,
        "servers": settings.cap,
    }
    return workload, model


# Queueing theory


def erlang_c(servers: int, offered_load: float) -> float:
    """Return the probability that an arrival waits in an M/M/c queue (Erlang's C formula).

    C(c, a) = (a^c / c! * c / (c - a)) / (sum over k < c of a^k / k!  +  a^c / c! * c / (c - a)),
    with a = lambda / mu. Each term a^k / k! is built from the previous one,
    so no factorial overflows.
    """
    if not 0 <= offered_load < servers:
        msg = f"offered load {offered_load!r} must be from 0 to below the {servers} servers, or the queue grows forever"
        raise ValueError(msg)
    term = 1.0
    below_c = 0.0
    for k in range(servers):
        below_c += term
        term *= offered_load / (k + 1)
    waiting = term * servers / (servers - offered_load)
    return waiting / (below_c + waiting)


def erlang_c_wait_quantile(servers: int, arrival_rate: float, service_rate: float, quantile: float) -> float:
    """Return the wait that a fraction ``quantile`` of arrivals stays under, for M/M/c.

    Uses P(wait > t) = C(c, a) * exp(-(c * mu - lambda) * t).
    """
    waiting_probability = erlang_c(servers, arrival_rate / service_rate)
    tail = 1 - quantile
    if waiting_probability <= tail:
        return 0.0
    return math.log(waiting_probability / tail) / (servers * service_rate - arrival_rate)


# Running one policy


def _simulator(workload: Workload, settings: Settings) -> EcsSimulator:
    run_times = iter(workload.run_times)

    def next_run_time(_random: random.Random) -> float:
        # More tasks than requests would mean a duplicate launch; the
        # ground truth reports it, and the extra task gets a run time of 0.
        return next(run_times, 0.0)

    # run_time_sampler instead of run_time_distribution="exponential": the
    # simulator's own generator also draws ARNs and request ids, so each
    # policy would get different run times from it.
    config = SimulatorConfig(
        task_definition_families=("worker",),
        seed=settings.seed,
        visibility_lag=workload.visibility_lag,
        boot_time=settings.boot_time,
        stop_time=settings.stop_time,
        run_time_sampler=next_run_time,
    )
    return EcsSimulator(config)


def _provisioner(simulator: EcsSimulator, settings: Settings) -> EcsProvisioner:
    return EcsProvisioner(
        "default",
        "worker",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:4566",
        credentials=Credentials(_support.FAKE_ACCESS_KEY, _support.FAKE_SECRET_KEY),
        session=settings.session,
        subnets=["subnet-1"],
        transport=SimulatorTransport(simulator),
        jitter_random=random.Random(settings.seed),
    )


async def _arrive(arrivals: Sequence[float], start: float, handle: Callable[[int], Any]) -> None:
    async with trio.open_nursery() as nursery:
        for index, moment in enumerate(arrivals):
            await trio.sleep_until(start + moment)
            nursery.start_soon(handle, index)


async def _run_actor(
    workload: Workload, settings: Settings, reconcile_interval: float, provisioner: EcsProvisioner
) -> PolicyRun:
    config = FleetConfig(
        max_workers=settings.cap,
        reconcile_interval=reconcile_interval,
        visibility_timeout=settings.visibility_timeout,
        describe_interval=settings.describe_interval,
        seed=settings.seed,
    )
    requests: list[RequestTimes] = []

    async with open_fleet(provisioner, config) as fleet:
        # A long-running fleet meets a burst at any point of its reconcile
        # cycle. Starting the arrivals part way into the cycle avoids the
        # lucky case where every worker stops just as a reconcile begins.
        await trio.sleep(settings.arrival_phase * reconcile_interval)
        start = trio.current_time()

        async def handle(index: int) -> None:
            times = RequestTimes(arrived=trio.current_time() - start)
            requests.append(times)
            ticket = await fleet.submit(Job(f"job-{index}"))
            try:
                await ticket.wait_started()
                times.served = True
            except LaunchFailedError:
                pass
            times.left_queue = trio.current_time() - start
            if times.served:
                await ticket.wait_finished()

        await _arrive(workload.arrivals, start, handle)
    return PolicyRun(requests, start)


async def _run_controller(
    policy: str, workload: Workload, settings: Settings, provisioner: EcsProvisioner, simulator: EcsSimulator
) -> PolicyRun:
    controller: ListOnlyController | RecentLaunchesController
    if policy == "list-only":
        controller = ListOnlyController(provisioner, settings.cap, poll_interval=settings.poll_interval)
    else:
        controller = RecentLaunchesController(
            provisioner, settings.cap, settings.window, poll_interval=settings.poll_interval
        )
    requests: list[RequestTimes] = []
    start = trio.current_time()

    async def handle(index: int) -> None:
        times = RequestTimes(arrived=trio.current_time() - start)
        requests.append(times)
        # serve() returns None when the launch failed. It polls again after a failed listing.
        task_id = await controller.serve(Job(f"job-{index}"))
        times.served = task_id is not None
        times.left_queue = trio.current_time() - start

    await _arrive(workload.arrivals, start, handle)
    # The controllers track no worker after its launch: wait until the
    # simulator has every fleet task STOPPED.
    while simulator.ground_truth().fleet_active > 0:
        await trio.sleep(settings.poll_interval)
    # Each serve call lists once, then once more after every listing that
    # showed no room or failed.
    polls = controller.stats.list_calls - controller.stats.submitted
    return PolicyRun(requests, start, polls)


async def run_policy(policy: str, workload: Workload, settings: Settings, reconcile_interval: float | None) -> dict[str, Any]:
    """Run ``workload`` through one policy on a fresh simulator and return its figures."""
    simulator = _simulator(workload, settings)
    # The simulator's time zero is its creation, which is now.
    origin = trio.current_time()
    provisioner = _provisioner(simulator, settings)
    async with provisioner:
        if policy == "actor":
            assert reconcile_interval is not None
            run = await _run_actor(workload, settings, reconcile_interval, provisioner)
        else:
            run = await _run_controller(policy, workload, settings, provisioner, simulator)

    truth = simulator.ground_truth()
    # Request times count from the first arrival; shift the timeline to match.
    offset = run.start - origin
    timeline = [(point.time - offset, point.fleet_active) for point in truth.timeline]
    result = figures(timeline, truth.time - offset, run.requests, settings.cap)
    calls = truth.calls
    served = result["served"]
    result.update(
        {
            "true_peak": truth.peak_fleet_active,
            "peak_over_cap": truth.peak_fleet_active / settings.cap,
            "run_task_per_served": calls.get("RunTask", 0) / served if served else None,
            "list_tasks_per_served": calls.get("ListTasks", 0) / served if served else None,
            "describe_tasks_per_served": calls.get("DescribeTasks", 0) / served if served else None,
            "polls": run.polls,
            "polls_per_served": run.polls / served if run.polls is not None and served else None,
            "calls": dict(calls),
            "throttled": {operation: count for operation, count in truth.throttled.items() if count},
            "tasks_started": truth.tasks_started,
            "duplicate_tasks": truth.duplicate_tasks,
        }
    )
    return result


def ideal_queue(workload: Workload, settings: Settings) -> dict[str, Any]:
    """Serve ``workload`` with ``cap`` servers in arrival order, freeing each slot the moment its task stops.

    This is the best any policy can do under the cap: a request waits only
    while all slots hold tasks that have not stopped. Each slot is held for
    boot, run and stop time.
    """
    free_at = [0.0] * settings.cap
    requests = []
    changes: list[tuple[float, int]] = []
    for arrival, run_time in zip(workload.arrivals, workload.run_times):
        start = max(arrival, heapq.heappop(free_at))
        end = start + service_time(settings, run_time)
        heapq.heappush(free_at, end)
        requests.append(RequestTimes(arrived=arrival, left_queue=start, served=True))
        changes.extend([(start, 1), (end, -1)])

    # At equal times a stop comes before a start, as in the simulator's timeline.
    changes.sort()
    timeline = []
    active = 0
    for moment, change in changes:
        active += change
        timeline.append((moment, active))
    result = figures(timeline, max(moment for moment, _ in changes), requests, settings.cap)
    result["true_peak"] = max(active for _, active in timeline)
    result["peak_over_cap"] = result["true_peak"] / settings.cap
    return result


# Figures


def figures(timeline: list[tuple[float, int]], end: float, requests: list[RequestTimes], cap: int) -> dict[str, Any]:
    """Compute waits, utilization and makespan from request times and a timeline of active tasks.

    Times count from the first arrival. ``timeline`` lists (time, tasks not
    yet STOPPED) at every change, and ``end`` is when the run stopped.
    """
    served = [request for request in requests if request.served]
    waits = [request.left_queue - request.arrived for request in served if request.left_queue is not None]
    return {
        "requests": len(requests),
        "served": len(served),
        "failed": len(requests) - len(served),
        "utilization_while_waiting": utilization(timeline, end, requests, cap),
        "makespan_s": _last_change(timeline),
        "wait_p50_s": _support.percentile(waits, 0.50),
        "wait_p95_s": _support.percentile(waits, 0.95),
        "wait_max_s": max(waits) if waits else None,
        "wait_mean_s": sum(waits) / len(waits) if waits else None,
    }


def utilization(timeline: list[tuple[float, int]], end: float, requests: list[RequestTimes], cap: int) -> float | None:
    """Return the mean of fleet tasks not yet STOPPED, over the cap, while a request waits.

    Both step functions (the queue length from the requests, the active
    count from the timeline) change only at their breakpoints, so the
    integral is exact. None when no request ever waited.
    """
    queue_changes: list[tuple[float, int]] = []
    for request in requests:
        queue_changes.append((request.arrived, 1))
        queue_changes.append((end if request.left_queue is None else request.left_queue, -1))
    queue_changes.sort()
    moments = sorted({moment for moment, _ in queue_changes} | {moment for moment, _ in timeline} | {end})

    queue_index = active_index = 0
    queued = active = 0
    waiting_time = busy_integral = 0.0
    for current, following in zip(moments, moments[1:]):
        while queue_index < len(queue_changes) and queue_changes[queue_index][0] <= current:
            queued += queue_changes[queue_index][1]
            queue_index += 1
        while active_index < len(timeline) and timeline[active_index][0] <= current:
            active = timeline[active_index][1]
            active_index += 1
        if queued > 0:
            span = following - current
            waiting_time += span
            busy_integral += active * span
    if waiting_time == 0:
        return None
    return busy_integral / (cap * waiting_time)


def _last_change(timeline: list[tuple[float, int]]) -> float:
    """Return the time when the count of active tasks last changed: the last STOPPED."""
    last_change = 0.0
    previous = 0
    for moment, active in timeline:
        if active != previous:
            last_change = moment
            previous = active
    return last_change


# The whole benchmark


def policies(arguments: argparse.Namespace) -> list[tuple[str, str, float | None]]:
    """List (label, policy, reconcile interval) for every policy in the run."""
    entries: list[tuple[str, str, float | None]] = []
    for interval in arguments.reconcile_interval:
        label = "actor" if len(arguments.reconcile_interval) == 1 else f"actor, reconcile {interval:g} s"
        entries.append((label, "actor", interval))
    entries.append(("list-only", "list-only", None))
    entries.append((f"recent-launches, window {arguments.window:g} s", "recent-launches", None))
    return entries


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    # Recorded before measuring, so it describes the code this run imported.
    host = _support.machine()
    settings = Settings(
        cap=arguments.cap,
        boot_time=arguments.boot_time,
        stop_time=arguments.stop_time,
        window=arguments.window,
        poll_interval=arguments.poll_interval,
        visibility_timeout=arguments.visibility_timeout,
        describe_interval=arguments.describe_interval,
        arrival_phase=arguments.arrival_phase,
        seed=arguments.seed,
    )
    sustained_workload, model = sustained(arguments, settings, arguments.seed)
    workloads = [
        burst("burst, lag 8 s", arguments.burst_requests, arguments.burst_run_time, 8.0),
        burst("burst, lag 30 s", arguments.burst_requests, arguments.burst_run_time, 30.0),
        burst("burst, blind list", arguments.burst_requests, arguments.burst_run_time, math.inf),
        burst("large burst at once", arguments.large_burst_requests, arguments.burst_run_time, 8.0),
        burst(
            "large burst, spread",
            arguments.large_burst_requests,
            arguments.burst_run_time,
            8.0,
            spread=arguments.large_burst_spread,
        ),
        sustained_workload,
    ]

    scenarios = []
    for workload in workloads:
        results = {}
        for label, policy, interval in policies(arguments):
            clock = trio.testing.MockClock(autojump_threshold=0)
            results[label] = trio.run(run_policy, policy, workload, settings, interval, clock=clock)
        scenarios.append(
            {
                "name": workload.name,
                "description": workload.description,
                "visibility_lag_s": workload.visibility_lag,
                "requests": len(workload.arrivals),
                "policies": results,
                "ideal": ideal_queue(workload, settings),
            }
        )

    queueing = _queueing_model(model, scenarios[-1])
    queueing["ideal_queue_wait_p95_other_seeds_s"] = _ideal_p95_spread(arguments, settings)
    return {
        "benchmark": "cap_utilization",
        "command": _support.command_line(),
        "machine": host,
        "parameters": {
            "cap": arguments.cap,
            "boot_time_s": arguments.boot_time,
            "stop_time_s": arguments.stop_time,
            "recent_launches_window_s": arguments.window,
            "controller_poll_interval_s": arguments.poll_interval,
            "actor_reconcile_intervals_s": arguments.reconcile_interval,
            "actor_visibility_timeout_s": arguments.visibility_timeout,
            "actor_describe_interval_s": arguments.describe_interval,
            "actor_arrival_phase": arguments.arrival_phase,
            "seed": arguments.seed,
        },
        "scenarios": scenarios,
        "sustained_queueing_model": queueing,
        "targets": _targets(scenarios),
    }


def _queueing_model(model: dict[str, float], scenario: dict[str, Any]) -> dict[str, Any]:
    """Compare the sustained scenario's p95 waits with M/M/c theory and with the ideal queue."""
    servers = int(model["servers"])
    arrival_rate = model["arrival_rate_per_s"]
    service_rate = model["service_rate_per_s"]
    p95 = erlang_c_wait_quantile(servers, arrival_rate, service_rate, 1 - P95_TAIL)
    ideal_p95 = scenario["ideal"]["wait_p95_s"]
    over_erlang_c = {}
    over_ideal = {}
    for label, result in scenario["policies"].items():
        measured = result["wait_p95_s"]
        over_erlang_c[label] = measured / p95 if measured is not None and p95 > 0 else None
        over_ideal[label] = measured / ideal_p95 if measured is not None and ideal_p95 else None
    return {
        **model,
        "offered_load": arrival_rate / service_rate,
        "utilization": arrival_rate / (servers * service_rate),
        "erlang_c_wait_probability": erlang_c(servers, arrival_rate / service_rate),
        "erlang_c_wait_p95_s": p95,
        "ideal_queue_wait_p95_s": ideal_p95,
        "measured_p95_over_erlang_c": over_erlang_c,
        "measured_p95_over_ideal_queue": over_ideal,
    }


def _ideal_p95_spread(arguments: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Return the spread of the ideal queue's p95 wait over other seeds of the same sustained workload.

    One run of a few thousand requests gives a noisy p95, so this shows how
    far a single run's figure can sit from the long-run value.
    """
    values = []
    for offset in range(1, IDEAL_SEEDS + 1):
        workload, _ = sustained(arguments, settings, arguments.seed + offset)
        p95 = ideal_queue(workload, settings)["wait_p95_s"]
        if p95 is not None:
            values.append(p95)
    return {
        "seeds": IDEAL_SEEDS,
        "median": _support.median(values) if values else None,
        "min": min(values, default=None),
        "max": max(values, default=None),
    }


def _targets(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check every target for each actor row against the same run's figures."""
    targets = []
    for scenario in scenarios:
        results = scenario["policies"]
        list_only = results["list-only"]
        recent = next(result for label, result in results.items() if label.startswith("recent-launches"))
        for label, result in results.items():
            if not label.startswith("actor"):
                continue
            name = f"{scenario['name']}: {label}"
            targets.append(_target(name, "true peak / cap = 1.00", result["peak_over_cap"], result["peak_over_cap"] == 1.0))
            utilization_value = result["utilization_while_waiting"]
            targets.append(
                _target(
                    name,
                    f"utilization while requests wait >= {TARGET_UTILIZATION}",
                    utilization_value,
                    utilization_value is not None and utilization_value >= TARGET_UTILIZATION,
                )
            )
            targets.append(
                _target(
                    name,
                    "makespan minus recent-launches makespan <= 0 s",
                    result["makespan_s"] - recent["makespan_s"],
                    result["makespan_s"] <= recent["makespan_s"],
                )
            )
            list_ratio = result["list_tasks_per_served"] / list_only["list_tasks_per_served"]
            targets.append(
                _target(
                    name,
                    f"ListTasks per served request / list-only's <= {TARGET_LIST_TASKS_RATIO}",
                    list_ratio,
                    list_ratio <= TARGET_LIST_TASKS_RATIO,
                )
            )
    return targets


def _target(scenario: str, target: str, measured: float | None, met: bool) -> dict[str, Any]:
    return {"scenario": scenario, "target": target, "measured": measured, "met": met}


def render(report: dict[str, Any]) -> None:
    parameters = report["parameters"]
    print(
        f"cap {parameters['cap']}, boot {parameters['boot_time_s']:g} s, stop {parameters['stop_time_s']:g} s, "
        f"actor visibility timeout {parameters['actor_visibility_timeout_s']:g} s, "
        f"actor describe interval {parameters['actor_describe_interval_s']:g} s, "
        f"controllers poll every {parameters['controller_poll_interval_s']:g} s, seed {parameters['seed']}"
    )
    headers = [
        "policy", "peak/cap", "utilization", "makespan s", "wait p50 s", "wait p95 s", "wait max s",
        "RunTask/req", "ListTasks/req", "DescribeTasks/req", "polls/req",
    ]
    for scenario in report["scenarios"]:
        print()
        print(f"{scenario['name']}: {scenario['description']}")
        rows = []
        for label, result in scenario["policies"].items():
            rows.append(
                [
                    label,
                    result["peak_over_cap"],
                    result["utilization_while_waiting"],
                    result["makespan_s"],
                    result["wait_p50_s"],
                    result["wait_p95_s"],
                    result["wait_max_s"],
                    result["run_task_per_served"],
                    result["list_tasks_per_served"],
                    result["describe_tasks_per_served"],
                    result["polls_per_served"],
                ]
            )
        ideal = scenario["ideal"]
        rows.append(
            [
                "ideal queue (no lag, no delay)",
                ideal["peak_over_cap"],
                ideal["utilization_while_waiting"],
                ideal["makespan_s"],
                ideal["wait_p50_s"],
                ideal["wait_p95_s"],
                ideal["wait_max_s"],
                None,
                None,
                None,
                None,
            ]
        )
        _support.print_table(headers, rows)

    model = report["sustained_queueing_model"]
    print()
    print(
        f"M/M/{model['servers']} with lambda = {model['arrival_rate_per_s']:.5f}/s, "
        f"mu = 1/{model['mean_service_time_s']:g} s: P(wait) = {model['erlang_c_wait_probability']:.3f}, "
        f"p95 wait = {model['erlang_c_wait_p95_s']:.1f} s"
    )
    spread = model["ideal_queue_wait_p95_other_seeds_s"]
    print(
        f"ideal queue on the same arrivals and run times: p95 wait = {model['ideal_queue_wait_p95_s']:.1f} s; "
        f"over {spread['seeds']} other seeds: median {spread['median']:.1f} s, "
        f"from {spread['min']:.1f} to {spread['max']:.1f} s"
    )
    _support.print_table(
        ["policy", "p95 / Erlang C p95", "p95 / ideal queue p95"],
        [
            [label, ratio, model["measured_p95_over_ideal_queue"][label]]
            for label, ratio in model["measured_p95_over_erlang_c"].items()
        ],
    )
    print()
    _support.print_table(
        ["scenario", "target", "measured", "met"],
        [[target["scenario"], target["target"], target["measured"], "met" if target["met"] else "NOT MET"] for target in report["targets"]],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    workload = parser.add_argument_group("workload")
    workload.add_argument("--cap", type=int, default=DEFAULTS["cap"], help="max_workers of every policy")
    workload.add_argument("--burst-requests", type=int, default=DEFAULTS["burst_requests"], help="requests in each burst")
    workload.add_argument(
        "--burst-run-time", type=float, default=DEFAULTS["burst_run_time"], help="seconds each burst worker runs"
    )
    workload.add_argument(
        "--large-burst-requests",
        type=int,
        default=DEFAULTS["large_burst_requests"],
        help="requests in each of the two large bursts",
    )
    workload.add_argument(
        "--large-burst-spread",
        type=float,
        default=DEFAULTS["large_burst_spread"],
        help="seconds over which the second large burst's arrivals are spread evenly",
    )
    workload.add_argument(
        "--sustained-duration",
        type=float,
        default=DEFAULTS["sustained_duration"],
        help="simulated seconds of Poisson arrivals",
    )
    workload.add_argument(
        "--sustained-load",
        type=float,
        default=DEFAULTS["sustained_load"],
        help="arrival rate as a fraction of the fleet's service rate",
    )
    workload.add_argument(
        "--sustained-mean-run-time",
        type=float,
        default=DEFAULTS["sustained_mean_run_time"],
        help="mean of the exponential run time, in seconds",
    )
    workload.add_argument(
        "--seed", type=int, default=DEFAULTS["seed"], help="seed of the arrivals, run times and simulator"
    )

    ecs = parser.add_argument_group("simulated ECS")
    ecs.add_argument("--boot-time", type=float, default=DEFAULTS["boot_time"], help="seconds from RunTask to RUNNING")
    ecs.add_argument(
        "--stop-time", type=float, default=DEFAULTS["stop_time"], help="seconds from the end of the work to STOPPED"
    )

    policies_group = parser.add_argument_group("policies")
    policies_group.add_argument(
        "--reconcile-interval",
        type=float,
        action="append",
        default=None,
        help="actor reconcile interval in seconds; repeat the option to compare several (default: 5 and 1)",
    )
    policies_group.add_argument(
        "--visibility-timeout",
        type=float,
        default=FleetConfig(max_workers=1).visibility_timeout,
        help="actor visibility timeout in seconds (default: FleetConfig's, %(default)s)",
    )
    policies_group.add_argument(
        "--describe-interval",
        type=float,
        default=FleetConfig(max_workers=1).describe_interval,
        help="seconds between the actor's describes of tasks that left the listing, between two listings "
        "(default: FleetConfig's, %(default)s)",
    )
    policies_group.add_argument(
        "--arrival-phase",
        type=float,
        default=DEFAULTS["arrival_phase"],
        help="fraction of the actor's reconcile interval between its first reconcile and the first arrival",
    )
    policies_group.add_argument(
        "--window", type=float, default=DEFAULTS["window"], help="seconds a launch counts for recent-launches"
    )
    policies_group.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULTS["poll_interval"],
        help="seconds between two listings of a waiting controller",
    )

    _support.add_output_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _support.apply_smoke_defaults(build_parser(), argv, SMOKE)
    if arguments.reconcile_interval is None:
        arguments.reconcile_interval = SMOKE_RECONCILE_INTERVALS if arguments.smoke else DEFAULTS["reconcile_interval"]
    _support.drop_audit_events()
    report = measure(arguments)
    _support.emit(report, arguments.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
