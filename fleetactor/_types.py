"""Values shared by the public interface: jobs, launch rejections, statuses."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class TaskStatus(str, enum.Enum):
    """Last status of a task as a provisioner's ``describe`` reports it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    # The backend does not know the id: never created, or forgotten long ago.
    MISSING = "MISSING"


_NO_OVERRIDES: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Job:
    """One request for one worker.

    Args:
        key: Identifies the work. A submission whose key is already queued or
            running joins that request instead of launching a second worker.
        priority: Higher values leave the queue first; equal priorities are
            served in submission order. A submission that joins a queued
            request with a higher priority raises that request's priority.
        overrides: Opaque launch parameters handed to the provisioner. The ECS
            provisioner reads ``command`` (a list of strings), ``environment``
            (a mapping of strings) and ``container`` (the container name).
    """

    key: str
    priority: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            msg = f"Job key must be a non-empty string, got {self.key!r}"
            raise ValueError(msg)
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            msg = f"Job priority must be an int, got {self.priority!r}; use 0 for the default priority"
            raise ValueError(msg)
        if not isinstance(self.overrides, Mapping):
            msg = f"Job overrides must be a mapping, got {type(self.overrides).__name__}"
            raise ValueError(msg)
        # Most jobs have no overrides, so they share one empty mapping.
        overrides = MappingProxyType(dict(self.overrides)) if self.overrides else _NO_OVERRIDES
        object.__setattr__(self, "overrides", overrides)

    def __hash__(self) -> int:
        return hash((self.key, self.priority))


class LaunchRejected(Exception):
    """The backend started nothing for this launch.

    Raised by a provisioner's ``launch`` when the outcome is definite. Any other
    exception from ``launch`` means the worker may have started.

    Args:
        reason: The backend's explanation, kept in the audit log.
        retryable: True when the same launch may succeed later (capacity or
            resource shortage); the request then goes back to the queue.
    """

    def __init__(self, reason: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"LaunchRejected({self.reason!r}, retryable={self.retryable})"


class FleetClosedError(Exception):
    """The fleet stopped before this request reached a worker."""


class LaunchFailedError(Exception):
    """A request failed for good: its launch was rejected or ran out of attempts.

    ``reason`` is the last rejection reason. ``retryable`` is True when the
    final rejection was a transient one that exhausted its attempts.
    """

    def __init__(self, key: str, reason: str, retryable: bool) -> None:
        super().__init__(f"launch for job {key!r} failed: {reason}")
        self.key = key
        self.reason = reason
        self.retryable = retryable
