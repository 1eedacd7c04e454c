"""Fleet configuration, validated when it is built."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

MAX_WORKERS_ENV = "ECS_MAX_WORKERS"
DEFAULT_MAX_WORKERS = 16


def _max_workers_from_environment() -> int:
    raw = os.environ.get(MAX_WORKERS_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_WORKERS
    try:
        return int(raw.strip())
    except ValueError:
        msg = (
            f"{MAX_WORKERS_ENV}={raw!r} is not an integer; "
            f"set it to a whole number of workers of at least 1, or unset it for the default of {DEFAULT_MAX_WORKERS}"
        )
        raise ValueError(msg) from None


def _check_number(name: str, value: object, *, minimum: float, allow_equal: bool, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        msg = f"FleetConfig.{name} must be a number of {unit}, got {value!r}"
        raise ValueError(msg)
    too_small = value < minimum if allow_equal else value <= minimum
    if too_small or math.isinf(value):
        bound = f">= {minimum}" if allow_equal else f"> {minimum}"
        msg = f"FleetConfig.{name}={value!r} is out of range; it must be finite and {bound} {unit}"
        raise ValueError(msg)


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"FleetConfig.{name} must be an int, got {value!r}"
        raise ValueError(msg)
    if value < minimum:
        msg = f"FleetConfig.{name}={value!r} is out of range; it must be >= {minimum}"
        raise ValueError(msg)


@dataclass(frozen=True)
class FleetConfig:
    """Settings of one fleet. Every field is checked when the object is built.

    Args:
        max_workers: The cap: workers that may exist at once, counting launches
            in flight and tasks this fleet did not start. When omitted, read
            from the ``ECS_MAX_WORKERS`` environment variable, else 16.
        reconcile_interval: Seconds between two listings of running tasks.
        visibility_timeout: Seconds a launched task may stay absent from the
            listing before the reaper checks it by id with ``describe``. A task
            the backend reports MISSING is released only once this much time
            has passed since its launch.
        describe_interval: Seconds between describes of tasks that left the
            listing but are not STOPPED yet, between two listings. A slot
            frees up to this long after its task is STOPPED. While any task
            is stopping, each interval costs one ``describe`` call, which
            the ECS provisioner sends as one DescribeTasks request per 100
            tasks.
        provisioner_timeout: Seconds one call of the provisioner may take. A
            launch that takes longer is repeated with the same client token,
            a listing that takes longer counts as failed, and a describe
            that takes longer is repeated later.
        launch_concurrency: Launcher tasks that call the provisioner at once.
        launch_attempts: Definite, retryable rejections a request may receive
            before its ticket fails with the last reason.
        retry_base_delay: First backoff step in seconds, for ambiguous launch
            errors (retried with the same client token) and for requeued
            requests. Each attempt doubles the step; the delay is half the
            step plus a random part of up to the other half.
        retry_max_delay: Upper bound of any backoff delay, in seconds.
        shutdown_timeout: Seconds that leaving ``open_fleet`` waits for
            launches in flight to finish before it cancels them.
        fleet_id: Names the fleet in the audit log; a random id by default.
        journal_retention: Seconds a journal keeps a request after it ended,
            before compaction deletes it.
        seed: Seeds the backoff jitter, for repeatable runs. None draws it
            from the operating system.
    """

    max_workers: int | None = None
    reconcile_interval: float = 5.0
    visibility_timeout: float = 30.0
    describe_interval: float = 0.5
    provisioner_timeout: float = 120.0
    launch_concurrency: int = 16
    # With these defaults a request rejected for capacity keeps retrying for
    # at least 61.5 s (the half steps of its seven waits) before it fails.
    launch_attempts: int = 8
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    shutdown_timeout: float = 30.0
    fleet_id: str | None = field(default=None)
    journal_retention: float = 86_400.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_workers is None:
            object.__setattr__(self, "max_workers", _max_workers_from_environment())
        _check_count("max_workers", self.max_workers, minimum=1)
        _check_number("reconcile_interval", self.reconcile_interval, minimum=0, allow_equal=False, unit="seconds")
        _check_number("visibility_timeout", self.visibility_timeout, minimum=0, allow_equal=True, unit="seconds")
        _check_number("describe_interval", self.describe_interval, minimum=0, allow_equal=False, unit="seconds")
        _check_number("provisioner_timeout", self.provisioner_timeout, minimum=0, allow_equal=False, unit="seconds")
        _check_count("launch_concurrency", self.launch_concurrency, minimum=1)
        _check_count("launch_attempts", self.launch_attempts, minimum=1)
        _check_number("retry_base_delay", self.retry_base_delay, minimum=0, allow_equal=True, unit="seconds")
        _check_number("retry_max_delay", self.retry_max_delay, minimum=0, allow_equal=True, unit="seconds")
        _check_number("journal_retention", self.journal_retention, minimum=0, allow_equal=True, unit="seconds")
        _check_number("shutdown_timeout", self.shutdown_timeout, minimum=0, allow_equal=True, unit="seconds")
        if self.retry_max_delay < self.retry_base_delay:
            msg = (
                f"FleetConfig.retry_max_delay={self.retry_max_delay!r} is below "
                f"retry_base_delay={self.retry_base_delay!r}; raise retry_max_delay"
            )
            raise ValueError(msg)
        if self.fleet_id is not None and (not isinstance(self.fleet_id, str) or not self.fleet_id):
            msg = f"FleetConfig.fleet_id must be a non-empty string or None, got {self.fleet_id!r}"
            raise ValueError(msg)
