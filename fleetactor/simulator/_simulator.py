"""The simulator object: a clock, request faults and the ground truth."""

from __future__ import annotations

import time
from typing import Any

import trio

from fleetactor.simulator._config import SimulatorConfig
from fleetactor.simulator._errors import EcsError, service_unavailable, throttled, unknown_operation
from fleetactor.simulator._ground_truth import GroundTruth, summarize
from fleetactor.simulator._operations import OPERATION_HANDLERS
from fleetactor.simulator._state import ControlPlane
from fleetactor.simulator._throttle import DEFAULT_RATE, RUN_TASK_CALL_RATE, TokenBucket

__all__ = ["EcsSimulator"]


class EcsSimulator:
    """An eventually consistent Amazon ECS control plane for Fargate tasks, in memory.

    New tasks stay out of ListTasks for the visibility lag, boot, run and stop
    on their own schedule, and RunTask, ListTasks and DescribeTasks fail at
    the rates that ``config`` sets. Serve it in-process with ``SimulatorTransport`` or over
    HTTP with ``serve``; read what really happened with ``ground_truth()``.

    Time comes from ``trio.current_time()``, so under ``trio.testing.MockClock``
    a scenario runs in virtual time. Simulated time zero is the moment the
    simulator is created inside a trio run, or else the moment ``serve``
    starts or the first request arrives. A simulator belongs to one trio run
    and is not thread-safe.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self._plane = ControlPlane.create(self.config)
        self._buckets: dict[str, TokenBucket] = {}
        if self.config.rate_limits:
            self._buckets = {operation: TokenBucket(DEFAULT_RATE) for operation in OPERATION_HANDLERS}
            self._buckets["RunTask"] = TokenBucket(RUN_TASK_CALL_RATE)
        self._origin: float | None = None
        self._last_time = 0.0
        try:
            self._start_clock()
        except RuntimeError:
            # Outside a trio run; serve() or the first request starts the clock.
            pass

    def ground_truth(self) -> GroundTruth:
        """Return the simulator's own counts as of now.

        Inside the trio run that serves the simulator, "now" is the current
        simulated time. Called from elsewhere (for example after that run has
        ended), it is the time of the last request.
        """
        try:
            now = self._now()
        except RuntimeError:
            now = self._last_time
        plane = self._plane
        tokens = {token: (record.count, record.created) for token, record in plane.tokens.items()}
        return summarize(plane.tasks, now, plane.counters, tokens)

    async def _call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """Handle one ECS operation and return its JSON response.

        Raises:
            EcsError: the ECS error response to send.
            LostResponse: RunTask created tasks but its response must be lost.
        """
        handler = OPERATION_HANDLERS.get(operation)
        if handler is None:
            raise unknown_operation(f"The ECS simulator does not implement the operation {operation!r}.")
        if self.config.latency > 0:
            await trio.sleep(self.config.latency)
        else:
            await trio.lowlevel.checkpoint()

        now = self._now()
        counters = self._plane.counters
        counters.calls[operation] += 1
        try:
            self._inject_request_faults(operation, now)
            return handler(self._plane, request, now)
        except EcsError as error:
            if error.code == "ThrottlingException":
                counters.throttled[operation] += 1
            raise

    def _inject_request_faults(self, operation: str, now: float) -> None:
        config = self.config
        throttle_rates = {
            "RunTask": config.run_task_throttle_rate,
            "ListTasks": config.list_tasks_throttle_rate,
            "DescribeTasks": config.describe_tasks_throttle_rate,
        }
        if self._plane.chance(throttle_rates.get(operation, 0.0)):
            raise throttled()

        bucket = self._buckets.get(operation)
        if bucket is not None and not bucket.try_take(now):
            raise throttled()

        if operation == "ListTasks" and self._plane.chance(config.list_failure_rate):
            self._plane.counters.list_failures += 1
            raise service_unavailable()

    def _new_request_id(self) -> str:
        return self._plane.new_uuid()

    def _start_clock(self) -> None:
        if self._origin is not None:
            return
        self._origin = trio.current_time()
        self._plane.epoch = time.time() if self.config.epoch is None else self.config.epoch

    def _now(self) -> float:
        """Return simulated seconds since time zero; raise RuntimeError outside trio."""
        self._start_clock()
        assert self._origin is not None
        self._last_time = trio.current_time() - self._origin
        return self._last_time
