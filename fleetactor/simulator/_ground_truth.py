"""Counts of what really ran in a simulation, whatever the API showed its callers."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fleetactor.simulator._tasks import SimulatedTask

__all__ = ["GroundTruth", "TimelinePoint"]


@dataclass(frozen=True)
class TimelinePoint:
    """Counts of tasks whose lastStatus is not STOPPED, from ``time`` until the next point."""

    time: float
    active: int
    fleet_active: int


@dataclass(frozen=True)
class GroundTruth:
    """Counts the simulator keeps for itself, as of simulated time ``time``.

    A task is active from its creation until its lastStatus turns STOPPED,
    including boot and stop time. Fleet counts leave out foreign tasks. Peaks
    are exact: they come from the intervals of all tasks, not from samples.

    Attributes:
        time: Simulated seconds since the start at which the counts were taken.
        active: Tasks active now, foreign ones included.
        fleet_active: Tasks active now that RunTask started.
        peak_active: Highest number of tasks active at once so far.
        peak_active_at: First time ``peak_active`` was reached, or None when no
            task ever ran.
        peak_fleet_active: Highest number of RunTask tasks active at once.
        peak_fleet_active_at: First time ``peak_fleet_active`` was reached.
        tasks_started: Tasks that RunTask created, including those whose
            response was lost.
        foreign_tasks: Tasks that were already running at the start.
        duplicate_tasks: Tasks that RunTask created beyond the ``count`` of the
            first call with the same clientToken. Stays 0 while idempotency
            is on.
        duplicate_tasks_by_token: ``duplicate_tasks`` per clientToken, listing
            only tokens with duplicates.
        calls: Requests received per ECS operation, failed ones included.
        throttled: ThrottlingException responses per operation.
        launch_failures: Tasks reported in RunTask ``failures``.
        ambiguous_launches: RunTask calls that created tasks but sent no
            successful response.
        list_failures: ListTasks calls that failed with HTTP 503.
        timeline: Every change of the active counts up to ``time``.
    """

    time: float
    active: int
    fleet_active: int
    peak_active: int
    peak_active_at: float | None
    peak_fleet_active: int
    peak_fleet_active_at: float | None
    tasks_started: int
    foreign_tasks: int
    duplicate_tasks: int
    duplicate_tasks_by_token: Mapping[str, int]
    calls: Mapping[str, int]
    throttled: Mapping[str, int]
    launch_failures: int
    ambiguous_launches: int
    list_failures: int
    timeline: tuple[TimelinePoint, ...]

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as plain JSON types."""
        return {
            "time": self.time,
            "active": self.active,
            "fleet_active": self.fleet_active,
            "peak_active": self.peak_active,
            "peak_active_at": self.peak_active_at,
            "peak_fleet_active": self.peak_fleet_active,
            "peak_fleet_active_at": self.peak_fleet_active_at,
            "tasks_started": self.tasks_started,
            "foreign_tasks": self.foreign_tasks,
            "duplicate_tasks": self.duplicate_tasks,
            "duplicate_tasks_by_token": dict(self.duplicate_tasks_by_token),
            "calls": dict(self.calls),
            "throttled": dict(self.throttled),
            "launch_failures": self.launch_failures,
            "ambiguous_launches": self.ambiguous_launches,
            "list_failures": self.list_failures,
            "timeline": [
                {"time": point.time, "active": point.active, "fleet_active": point.fleet_active}
                for point in self.timeline
            ],
        }


@dataclass
class FaultCounters:
    """Running totals of calls and injected faults, owned by the simulator."""

    calls: dict[str, int]
    throttled: dict[str, int]
    launch_failures: int = 0
    ambiguous_launches: int = 0
    list_failures: int = 0


def build_timeline(tasks: Iterable[SimulatedTask], now: float) -> tuple[TimelinePoint, ...]:
    """Sweep the tasks' [created_at, stopped_at) intervals up to ``now``.

    All changes at one instant are applied together, so a task that stops as
    another starts never counts twice, and a zero-length task never counts.
    """
    changes: list[tuple[float, int, int]] = []
    for task in tasks:
        fleet_change = 0 if task.foreign else 1
        changes.append((task.created_at, 1, fleet_change))
        if task.stopped_at <= now:
            changes.append((task.stopped_at, -1, -fleet_change))
    changes.sort(key=lambda change: change[0])

    timeline: list[TimelinePoint] = []
    active = 0
    fleet_active = 0
    for time, group in itertools.groupby(changes, key=lambda change: change[0]):
        before = (active, fleet_active)
        for _, active_change, fleet_change in group:
            active += active_change
            fleet_active += fleet_change
        if (active, fleet_active) != before:
            timeline.append(TimelinePoint(time=time, active=active, fleet_active=fleet_active))
    return tuple(timeline)


def summarize(
    tasks: list[SimulatedTask],
    now: float,
    counters: FaultCounters,
    tokens: Mapping[str, tuple[int, int]],
) -> GroundTruth:
    """Build the GroundTruth at ``now``.

    ``tokens`` maps each clientToken to (count requested by the first call
    that created tasks, tasks created under the token in total).
    """
    timeline = build_timeline(tasks, now)
    peak_active, peak_active_at = _peak(timeline, "active")
    peak_fleet, peak_fleet_at = _peak(timeline, "fleet_active")
    duplicates = {token: created - requested for token, (requested, created) in tokens.items() if created > requested}

    return GroundTruth(
        time=now,
        active=timeline[-1].active if timeline else 0,
        fleet_active=timeline[-1].fleet_active if timeline else 0,
        peak_active=peak_active,
        peak_active_at=peak_active_at,
        peak_fleet_active=peak_fleet,
        peak_fleet_active_at=peak_fleet_at,
        tasks_started=sum(1 for task in tasks if not task.foreign),
        foreign_tasks=sum(1 for task in tasks if task.foreign),
        duplicate_tasks=sum(duplicates.values()),
        duplicate_tasks_by_token=MappingProxyType(duplicates),
        calls=MappingProxyType(dict(counters.calls)),
        throttled=MappingProxyType(dict(counters.throttled)),
        launch_failures=counters.launch_failures,
        ambiguous_launches=counters.ambiguous_launches,
        list_failures=counters.list_failures,
        timeline=timeline,
    )


def _peak(timeline: tuple[TimelinePoint, ...], attribute: str) -> tuple[int, float | None]:
    peak = 0
    peak_at = None
    for point in timeline:
        value = getattr(point, attribute)
        if value > peak:
            peak = value
            peak_at = point.time
    return peak, peak_at
