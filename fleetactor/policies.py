"""Two naive cap controllers, kept as references to compare with the actor.

Both drive the same provisioner protocol as :func:`fleetactor.open_fleet`
(``launch``, ``list_running``; neither needs ``describe``) and serve one
request per :meth:`serve` call. They reproduce designs that a service
typically writes first, faults included, so that a demo or a benchmark can
show the faults next to the actor on the same backend:

- :class:`ListOnlyController` counts running tasks with the backend's
  listing before each launch. The listing lags behind launches, so a burst
  overshoots the cap.
- :class:`RecentLaunchesController` adds the launches of the last few
  seconds to the listing, under a lock. It under-uses the fleet while a task
  is counted twice and overshoots once the lag outlasts its window.

They are not meant for production use.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio

from fleetactor._types import Job, LaunchRejected

__all__ = ["ControllerStatistics", "ListOnlyController", "RecentLaunchesController"]


@dataclass
class ControllerStatistics:
    """Running totals of a reference controller.

    ``waits_s`` contains, per served request, the seconds from the ``serve``
    call until the launch returned a task id.
    """

    submitted: int = 0
    served: int = 0
    failed: int = 0
    launch_calls: int = 0
    list_calls: int = 0
    # list_running calls that raised; the request polled again.
    list_errors: int = 0
    waits_s: list[float] = field(default_factory=list)
    # The reason of each failed request, in the order they failed.
    failures: list[str] = field(default_factory=list)


def _check_arguments(max_workers: object, poll_interval: object) -> None:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        msg = f"max_workers must be an int >= 1, got {max_workers!r}"
        raise ValueError(msg)
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or not poll_interval > 0:
        msg = f"poll_interval must be a number of seconds > 0, got {poll_interval!r}"
        raise ValueError(msg)


class _Controller:
    def __init__(self, provisioner: Any, max_workers: int, poll_interval: float) -> None:
        _check_arguments(max_workers, poll_interval)
        self.provisioner = provisioner
        self.max_workers = max_workers
        self.poll_interval = poll_interval
        self.stats = ControllerStatistics()

    async def _count_listed(self) -> int | None:
        """Return the number of listed tasks, or None when the listing failed."""
        self.stats.list_calls += 1
        try:
            return len(await self.provisioner.list_running())
        except Exception:  # noqa: BLE001 - the caller polls again, as it does at the cap
            self.stats.list_errors += 1
            return None

    async def _launch(self, job: Job, started_at: float) -> str | None:
        """Launch once with a fresh client token; any error fails the request."""
        self.stats.launch_calls += 1
        try:
            task_id = await self.provisioner.launch(job, client_token=uuid.uuid4().hex)
        except LaunchRejected as rejection:
            self._fail(f"launch rejected: {rejection.reason}")
            return None
        except Exception as error:  # noqa: BLE001 - the naive design gives up on any error
            self._fail(f"launch failed: {type(error).__name__}: {error}")
            return None
        self.stats.served += 1
        self.stats.waits_s.append(trio.current_time() - started_at)
        return task_id

    def _fail(self, reason: str) -> None:
        self.stats.failed += 1
        self.stats.failures.append(reason)


class ListOnlyController(_Controller):
    """Launch when the backend lists fewer running tasks than the cap.

    For each request: call ``list_running()``; launch if it returns fewer
    than ``max_workers`` tasks, else sleep ``poll_interval`` seconds and ask
    again. A failed listing is treated like a full fleet, and a launch error
    fails the request.

    Why it breaks: the check and the launch are not atomic, and the listing
    lags behind launches (ECS ListTasks is eventually consistent). Requests
    that arrive together all see the same low count before any of their
    tasks is listed, so a burst of N requests on a cold fleet launches all N,
    whatever the cap. A fake listing that is always current hides the fault
    in tests.

    Args:
        provisioner: Any object with async ``launch`` and ``list_running``.
        max_workers: The cap it tries to keep.
        poll_interval: Seconds between two listings while at the cap.
    """

    def __init__(self, provisioner: Any, max_workers: int, *, poll_interval: float = 1.0) -> None:
        super().__init__(provisioner, max_workers, poll_interval)

    async def serve(self, job: Job) -> str | None:
        """Wait until the listing shows room, launch ``job``, and return its task id.

        Returns None when the launch failed. Lists again every
        ``poll_interval`` seconds for as long as the fleet is at the cap or
        the listing fails.
        """
        self.stats.submitted += 1
        started_at = trio.current_time()
        while True:
            listed = await self._count_listed()
            if listed is not None and listed < self.max_workers:
                break
            await trio.sleep(self.poll_interval)
        return await self._launch(job, started_at)


class RecentLaunchesController(_Controller):
    """Count listed tasks plus the launches of the last ``window`` seconds, under a lock.

    Each request takes one shared ``trio.Lock``, calls ``list_running()``
    and drops launch times older than ``window`` seconds. If the listed tasks
    plus the remaining recent launches are below the cap, it records a launch
    time and releases the lock. Otherwise it sleeps ``poll_interval`` seconds,
    still holding the lock, and checks again, as it does after a failed
    listing. The launch call runs after the lock is released, and a launch
    error fails the request.

    Why it breaks: the two terms overlap and miss each other. A task that is
    already listed while its launch is still inside the window is counted
    twice, so the fleet runs below the cap for no reason. When the window
    ends, the launch stops counting whether or not the listing shows the task
    yet, so with a listing lag longer than ``window`` the slot is freed
    blindly and the next burst overshoots the cap. A failed launch also keeps
    its slot until the window ends. No window length fixes both faults.

    Args:
        provisioner: Any object with async ``launch`` and ``list_running``.
        max_workers: The cap it tries to keep.
        window: Seconds that a launch counts on top of the listing.
        poll_interval: Seconds between two checks while at the cap.
    """

    def __init__(self, provisioner: Any, max_workers: int, window: float, *, poll_interval: float = 1.0) -> None:
        super().__init__(provisioner, max_workers, poll_interval)
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not window >= 0:
            msg = f"window must be a number of seconds >= 0, got {window!r}"
            raise ValueError(msg)
        self.window = window
        self._lock = trio.Lock()
        self._recent_launches: deque[float] = deque()

    async def serve(self, job: Job) -> str | None:
        """Wait for room under the lock, launch ``job``, and return its task id.

        Returns None when the launch failed.
        """
        self.stats.submitted += 1
        started_at = trio.current_time()
        async with self._lock:
            while not await self._has_room():
                await trio.sleep(self.poll_interval)
            self._recent_launches.append(trio.current_time())
        return await self._launch(job, started_at)

    async def _has_room(self) -> bool:
        listed = await self._count_listed()
        if listed is None:
            return False
        now = trio.current_time()
        while self._recent_launches and now - self._recent_launches[0] >= self.window:
            self._recent_launches.popleft()
        return listed + len(self._recent_launches) < self.max_workers
