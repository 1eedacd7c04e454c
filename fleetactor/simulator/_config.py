"""Behaviour knobs of the ECS simulator."""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AmbiguousResponse", "RunTimeDistribution", "SimulatorConfig"]

# ECS names: up to 255 letters, numbers, hyphens and underscores. Clusters and
# task definition families share the rule.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,255}")

# startedBy: up to 128 letters, numbers, hyphens, forward slashes and underscores.
STARTED_BY_PATTERN = re.compile(r"[A-Za-z0-9_/-]{1,128}")


class RunTimeDistribution(str, enum.Enum):
    """Distribution of each task's run time, set by ``run_time``."""

    # Every task runs exactly ``run_time`` seconds.
    FIXED = "fixed"
    # Run times are exponentially distributed with mean ``run_time``.
    EXPONENTIAL = "exponential"


class AmbiguousResponse(str, enum.Enum):
    """Response that the caller of an ambiguous RunTask receives after its tasks exist."""

    # HTTP 500 with a ServerException body.
    SERVER_ERROR = "server-error"
    # The connection drops before the response body arrives. In-process, the
    # transport raises httpx.RemoteProtocolError.
    DISCONNECT = "disconnect"


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of one simulated ECS control plane.

    Times are seconds of simulated time, counted from the moment the simulator
    starts (see ``EcsSimulator``). Rates are probabilities from 0 to 1, drawn
    per call (per task for ``launch_failure_rate``). Every random draw comes
    from one ``random.Random(seed)``, so a given seed and a given sequence of
    requests always produce the same responses.

    Args:
        seed: Seed of the simulator's only random number generator.
        region: AWS region used in ARNs.
        account_id: 12-digit AWS account id used in ARNs.
        cluster_name: Cluster that exists from the start; foreign tasks run in
            it. Other clusters are made with CreateCluster.
        task_definition_families: Families registered at revision 1 at the
            start, each with one container named after the family.
        epoch: Unix time (seconds) of simulated time zero, used for
            ``createdAt`` and the other timestamps. None takes the wall clock
            when the simulator starts.
        latency: Seconds each ECS request waits before it is handled.
        visibility_lag: Seconds a new task stays out of ListTasks. math.inf
            keeps every task out for good (a blind list).
        visibility_lag_max: When set, each task's lag is drawn uniformly from
            ``visibility_lag`` to this value instead.
        describe_lag: Seconds a new task stays out of DescribeTasks and
            StopTask, which report it MISSING or not found meanwhile.
        boot_time: Seconds from RunTask to RUNNING. The first half is
            PROVISIONING, the second PENDING.
        run_time: Seconds a task stays RUNNING before its work ends, or the
            mean for the exponential distribution. math.inf runs until
            StopTask.
        run_time_distribution: How run times are drawn from ``run_time``.
        run_time_sampler: When set, called with the simulator's
            ``random.Random`` for each task; returns the run time in seconds
            and overrides ``run_time`` and ``run_time_distribution``.
        stop_time: Seconds from the end of the work (or StopTask) to STOPPED.
            The first half is STOPPING and the second DEPROVISIONING. Meanwhile
            the task still uses capacity, but its desiredStatus is STOPPED.
        stopped_task_retention: Seconds a STOPPED task stays in DescribeTasks
            and ListTasks(desiredStatus=STOPPED) before it is forgotten.
        launch_failure_rate: Probability that a task of a RunTask call is not
            started and comes back as a capacity entry in ``failures``.
        launch_outage: Optional window (start, end) of simulated seconds in
            which every RunTask task fails that way.
        ambiguous_rate: Probability that a RunTask call creates its tasks but
            the caller receives no response (see ``ambiguous_response``).
        ambiguous_response: What the caller of an ambiguous RunTask receives.
        run_task_throttle_rate: Probability that RunTask raises
            ThrottlingException.
        list_tasks_throttle_rate: The same for ListTasks.
        describe_tasks_throttle_rate: The same for DescribeTasks.
        rate_limits: Apply token buckets: 20 RunTask calls burst and 20 per
            second, and 100 Fargate tasks burst and 20 per second, as the ECS
            documentation gives them, plus an estimated 50 burst and 20 per
            second for every other operation.
        list_failure_rate: Probability that ListTasks fails with HTTP 503.
        foreign_tasks: Tasks started by someone else that are already RUNNING
            at time zero and listed at once.
        foreign_run_time: Seconds those tasks keep running from time zero;
            math.inf runs them until StopTask.
        foreign_started_by: ``startedBy`` of the foreign tasks.
        foreign_family: Task definition family of the foreign tasks.
        idempotency: Honour RunTask ``clientToken`` as ECS does. False makes
            every call start new tasks, which shows up as duplicate tasks in
            the ground truth.
    """

    seed: int = 0
    region: str = "us-east-1"
    account_id: str = "123456789012"
    cluster_name: str = "default"
    task_definition_families: tuple[str, ...] = ()
    epoch: float | None = None
    latency: float = 0.0

    visibility_lag: float = 5.0
    visibility_lag_max: float | None = None
    describe_lag: float = 0.0

    boot_time: float = 30.0
    run_time: float = 60.0
    run_time_distribution: RunTimeDistribution = RunTimeDistribution.FIXED
    run_time_sampler: Callable[[random.Random], float] | None = None
    stop_time: float = 15.0
    stopped_task_retention: float = 3600.0

    launch_failure_rate: float = 0.0
    launch_outage: tuple[float, float] | None = None
    ambiguous_rate: float = 0.0
    ambiguous_response: AmbiguousResponse = AmbiguousResponse.SERVER_ERROR

    run_task_throttle_rate: float = 0.0
    list_tasks_throttle_rate: float = 0.0
    describe_tasks_throttle_rate: float = 0.0
    rate_limits: bool = True
    list_failure_rate: float = 0.0

    foreign_tasks: int = 0
    foreign_run_time: float = math.inf
    foreign_started_by: str = "foreign"
    foreign_family: str = "foreign"

    idempotency: bool = True

    def __post_init__(self) -> None:
        _check_int(self, "seed", minimum=None)
        _check_int(self, "foreign_tasks", minimum=0)
        _check_bool(self, "rate_limits")
        _check_bool(self, "idempotency")

        for name in ("latency", "describe_lag", "boot_time", "stop_time"):
            _check_seconds(self, name, allow_infinity=False)
        for name in ("visibility_lag", "run_time", "stopped_task_retention", "foreign_run_time"):
            _check_seconds(self, name, allow_infinity=True)
        if self.epoch is not None:
            _check_seconds(self, "epoch", allow_infinity=False)

        for name in (
            "launch_failure_rate",
            "ambiguous_rate",
            "run_task_throttle_rate",
            "list_tasks_throttle_rate",
            "describe_tasks_throttle_rate",
            "list_failure_rate",
        ):
            _check_probability(self, name)

        self._check_visibility_lag_max()
        self._check_launch_outage()
        self._check_names()
        self._check_enums()

        if self.run_time_sampler is not None and not callable(self.run_time_sampler):
            msg = f"SimulatorConfig.run_time_sampler must be callable or None, got {self.run_time_sampler!r}"
            raise ValueError(msg)

    def _check_visibility_lag_max(self) -> None:
        if self.visibility_lag_max is None:
            return
        _check_seconds(self, "visibility_lag_max", allow_infinity=False)
        if self.visibility_lag_max < self.visibility_lag:
            msg = (
                f"SimulatorConfig.visibility_lag_max must be at least visibility_lag "
                f"({self.visibility_lag}), got {self.visibility_lag_max}"
            )
            raise ValueError(msg)

    def _check_launch_outage(self) -> None:
        outage = self.launch_outage
        if outage is None:
            return
        valid_shape = isinstance(outage, tuple) and len(outage) == 2 and all(_is_number(value) for value in outage)
        if not valid_shape or not 0 <= outage[0] < outage[1]:
            msg = (
                f"SimulatorConfig.launch_outage must be None or a tuple (start, end) of seconds "
                f"with 0 <= start < end, got {outage!r}"
            )
            raise ValueError(msg)
        object.__setattr__(self, "launch_outage", (float(outage[0]), float(outage[1])))

    def _check_names(self) -> None:
        if not isinstance(self.region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            msg = f"SimulatorConfig.region must be an AWS region name such as 'us-east-1', got {self.region!r}"
            raise ValueError(msg)
        if not isinstance(self.account_id, str) or not re.fullmatch(r"\d{12}", self.account_id):
            msg = f"SimulatorConfig.account_id must be a string of 12 digits, got {self.account_id!r}"
            raise ValueError(msg)

        families = self.task_definition_families
        if not isinstance(families, tuple):
            msg = f"SimulatorConfig.task_definition_families must be a tuple of names, got {families!r}"
            raise ValueError(msg)
        named = [("cluster_name", self.cluster_name), ("foreign_family", self.foreign_family)]
        named += [("task_definition_families", family) for family in families]
        for field_name, value in named:
            if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
                msg = (
                    f"SimulatorConfig.{field_name} must contain 1 to 255 letters, numbers, "
                    f"hyphens or underscores, got {value!r}"
                )
                raise ValueError(msg)

        if not isinstance(self.foreign_started_by, str) or not STARTED_BY_PATTERN.fullmatch(self.foreign_started_by):
            msg = (
                f"SimulatorConfig.foreign_started_by must contain 1 to 128 letters, numbers, "
                f"hyphens, slashes or underscores, got {self.foreign_started_by!r}"
            )
            raise ValueError(msg)

    def _check_enums(self) -> None:
        for name, enum_type in (
            ("run_time_distribution", RunTimeDistribution),
            ("ambiguous_response", AmbiguousResponse),
        ):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum_type(value))
            except ValueError:
                allowed = ", ".join(repr(member.value) for member in enum_type)
                msg = f"SimulatorConfig.{name} must be one of {allowed}, got {value!r}"
                raise ValueError(msg) from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(config: SimulatorConfig, name: str, *, minimum: int | None) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = "an int" if minimum is None else f"an int >= {minimum}"
        msg = f"SimulatorConfig.{name} must be {bound}, got {value!r}"
        raise ValueError(msg)


def _check_bool(config: SimulatorConfig, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, bool):
        msg = f"SimulatorConfig.{name} must be True or False, got {value!r}"
        raise ValueError(msg)


def _check_seconds(config: SimulatorConfig, name: str, *, allow_infinity: bool) -> None:
    value = getattr(config, name)
    valid = _is_number(value) and value >= 0 and not math.isnan(value)
    if valid and math.isinf(value) and not allow_infinity:
        valid = False
    if not valid:
        allowed = "a number of seconds >= 0 or math.inf" if allow_infinity else "a finite number of seconds >= 0"
        msg = f"SimulatorConfig.{name} must be {allowed}, got {value!r}"
        raise ValueError(msg)
    object.__setattr__(config, name, float(value))


def _check_probability(config: SimulatorConfig, name: str) -> None:
    value = getattr(config, name)
    if not _is_number(value) or not 0 <= value <= 1:
        msg = f"SimulatorConfig.{name} must be a probability from 0 to 1, got {value!r}"
        raise ValueError(msg)
    object.__setattr__(config, name, float(value))
