"""A fake provisioner for tests of code that embeds a fleet.

``FakeProvisioner`` keeps tasks in memory and reads time from trio's clock,
so it runs under ``trio.testing.MockClock`` in virtual time. It lists new
tasks after a configurable lag (or never), honours client tokens as ECS
does, and records the ground truth that a fleet cannot see: how many tasks
were really alive at the worst instant.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from fleetactor._types import Job, LaunchRejected, TaskStatus

__all__ = ["FakeProvisioner", "FakeTask"]


@dataclass
class FakeTask:
    """One task of a :class:`FakeProvisioner`. Times are trio clock seconds."""

    task_id: str
    job: Job
    client_token: str
    created_at: float
    running_at: float
    # When the work ends and the task leaves the RUNNING listing.
    ends_at: float
    # When lastStatus becomes STOPPED and the slot is truly free.
    stopped_at: float
    listed_at: float

    def status(self, now: float) -> str:
        if now >= self.stopped_at:
            return TaskStatus.STOPPED.value
        if now >= self.running_at:
            return TaskStatus.RUNNING.value
        return TaskStatus.PENDING.value


@dataclass
class _Calls:
    launch: int = 0
    list_running: int = 0
    describe: int = 0
    launch_by_token: dict[str, int] = field(default_factory=dict)


class FakeProvisioner:
    """An in-memory backend with eventual consistency and failure injection.

    Args:
        list_lag: Seconds before a new task appears in ``list_running``;
            ``math.inf`` hides every task forever (a blind list).
        boot_time: Seconds a task stays PENDING before it is RUNNING.
        run_time: Seconds a task runs before its work ends; None runs until
            :meth:`stop` is called.
        stop_time: Seconds between the end of the work and STOPPED. The task
            is no longer listed during that time but still occupies capacity.
        launch_latency: Seconds each ``launch`` call takes.
        launch_error: Called with the job and client token before a launch;
            an exception it returns is raised and nothing is started.
        lost_response: Called with the job and client token after a task was
            created. An exception it returns is raised instead of the task id,
            as a timeout hides a launch that succeeded.
        list_error: Called before each listing; an exception it returns is
            raised.
    """

    def __init__(
        self,
        *,
        list_lag: float = 0.0,
        boot_time: float = 0.0,
        run_time: float | None = 60.0,
        stop_time: float = 0.0,
        launch_latency: float = 0.0,
        launch_error: Callable[[Job, str], BaseException | None] | None = None,
        lost_response: Callable[[Job, str], BaseException | None] | None = None,
        list_error: Callable[[], BaseException | None] | None = None,
    ) -> None:
        for name, value in (("list_lag", list_lag), ("boot_time", boot_time), ("stop_time", stop_time), ("launch_latency", launch_latency)):
            if math.isnan(value) or value < 0:
                msg = f"FakeProvisioner {name}={value!r} must be >= 0 seconds"
                raise ValueError(msg)
        if run_time is not None and (math.isnan(run_time) or run_time < 0):
            msg = f"FakeProvisioner run_time={run_time!r} must be >= 0 seconds, or None to run until stop()"
            raise ValueError(msg)
        self.list_lag = list_lag
        self.boot_time = boot_time
        self.run_time = run_time
        self.stop_time = stop_time
        self.launch_latency = launch_latency
        self.launch_error = launch_error
        self.lost_response = lost_response
        self.list_error = list_error

        self.tasks: dict[str, FakeTask] = {}
        self.foreign: set[str] = set()
        self.calls = _Calls()
        self._by_token: dict[str, str] = {}
        self._ids = itertools.count(1)

    # The provisioner protocol

    async def launch(self, job: Job, *, client_token: str) -> str:
        self.calls.launch += 1
        self.calls.launch_by_token[client_token] = self.calls.launch_by_token.get(client_token, 0) + 1
        if self.launch_latency:
            await trio.sleep(self.launch_latency)
        else:
            await trio.lowlevel.checkpoint()

        existing = self._by_token.get(client_token)
        if existing is not None:
            return existing

        if self.launch_error is not None:
            error = self.launch_error(job, client_token)
            if error is not None:
                raise error

        task = self._create(job, client_token, trio.current_time())
        if self.lost_response is not None:
            error = self.lost_response(job, client_token)
            if error is not None:
                raise error
        return task.task_id

    async def list_running(self) -> Collection[str]:
        self.calls.list_running += 1
        await trio.lowlevel.checkpoint()
        if self.list_error is not None:
            error = self.list_error()
            if error is not None:
                raise error
        now = trio.current_time()
        return [task.task_id for task in self.tasks.values() if task.listed_at <= now < task.ends_at]

    async def describe(self, task_ids: Sequence[str]) -> Mapping[str, str]:
        self.calls.describe += 1
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        return {
            task_id: self.tasks[task_id].status(now) if task_id in self.tasks else TaskStatus.MISSING.value
            for task_id in task_ids
        }

    # Control and ground truth

    def add_foreign_task(self, *, run_time: float = math.inf) -> str:
        """Start a task that no fleet launched; it is listed at once and runs for ``run_time`` seconds."""
        now = trio.current_time()
        task = self._create(Job(key=f"foreign-{len(self.foreign) + 1}"), "", now, run_time=run_time, listed_at=now)
        self.foreign.add(task.task_id)
        return task.task_id

    def stop(self, task_id: str) -> None:
        """End a task's work now; it is STOPPED after ``stop_time``."""
        task = self.tasks[task_id]
        now = trio.current_time()
        if now < task.ends_at:
            task.ends_at = now
            task.stopped_at = now + self.stop_time

    def alive(self, now: float | None = None) -> int:
        """Count tasks whose status is not STOPPED at ``now``."""
        at = trio.current_time() if now is None else now
        return sum(1 for task in self.tasks.values() if task.created_at <= at < task.stopped_at)

    def true_peak(self, *, include_foreign: bool = False) -> int:
        """Return the most tasks that were not STOPPED at one instant."""
        changes = []
        for task in self.tasks.values():
            if task.task_id in self.foreign and not include_foreign:
                continue
            changes.append((task.created_at, 1))
            changes.append((task.stopped_at, -1))
        # At equal times a stop is applied before a start: a slot freed at t
        # may be reused at t.
        changes.sort(key=lambda change: (change[0], change[1]))
        peak = alive = 0
        for _, delta in changes:
            alive += delta
            peak = max(peak, alive)
        return peak

    def tasks_for_token(self, client_token: str) -> int:
        return sum(1 for task in self.tasks.values() if task.client_token == client_token)

    def _create(
        self,
        job: Job,
        client_token: str,
        now: float,
        *,
        run_time: float | None = None,
        listed_at: float | None = None,
    ) -> FakeTask:
        task_id = f"task-{next(self._ids):05d}"
        running_at = now + self.boot_time
        duration = self.run_time if run_time is None else run_time
        ends_at = math.inf if duration is None else running_at + duration
        task = FakeTask(
            task_id=task_id,
            job=job,
            client_token=client_token,
            created_at=now,
            running_at=running_at,
            ends_at=ends_at,
            stopped_at=ends_at + self.stop_time,
            listed_at=now + self.list_lag if listed_at is None else listed_at,
        )
        self.tasks[task_id] = task
        if client_token:
            self._by_token[client_token] = task_id
        return task
