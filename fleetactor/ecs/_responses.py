"""Interpretation of ECS responses: task statuses and RunTask failure reasons."""

from __future__ import annotations

from fleetactor._types import TaskStatus

__all__ = ["is_retryable_failure", "status_from_last_status", "task_id_of"]

# ECS lastStatus values, from launch to stop, mapped to the fleet's statuses.
_STATUS_BY_LAST_STATUS = {
    "PROVISIONING": TaskStatus.PENDING,
    "PENDING": TaskStatus.PENDING,
    "ACTIVATING": TaskStatus.PENDING,
    "RUNNING": TaskStatus.RUNNING,
    # A task that is shutting down still uses its capacity (and, on Fargate,
    # is still billed) until ECS reports STOPPED, so it keeps its slot.
    "DEACTIVATING": TaskStatus.RUNNING,
    "STOPPING": TaskStatus.RUNNING,
    "DEPROVISIONING": TaskStatus.RUNNING,
    "STOPPED": TaskStatus.STOPPED,
}

# Substrings of RunTask failure reasons and error messages that describe a
# shortage which may end. They mean no Fargate capacity, too little CPU,
# memory, ports or ENIs on the cluster's instances (RESOURCE:CPU and friends),
# or an instance agent that is disconnected. They are matched case-sensitively.
_RETRYABLE_REASON_MARKERS = ("Capacity is unavailable", "RESOURCE:", "AGENT")
# The same for rate limits and the account's task quota, compared in lower case.
_RETRYABLE_REASON_MARKERS_LOWER = (
    "throttl",
    "rate exceeded",
    "reached the limit on the number of tasks",
)


def status_from_last_status(last_status: str | None) -> TaskStatus:
    """Map an ECS ``lastStatus`` to PENDING, RUNNING or STOPPED.

    A value this table does not know (ECS may add states) maps to PENDING:
    the task exists and is assumed to hold capacity until it reports STOPPED.
    """
    return _STATUS_BY_LAST_STATUS.get((last_status or "").upper(), TaskStatus.PENDING)


def is_retryable_failure(reason: str) -> bool:
    """Tell whether a RunTask failure reason describes a passing shortage.

    Every other reason (a MISSING task definition, an invalid configuration,
    a missing permission) repeats on every attempt, so it is not retryable.
    """
    if any(marker in reason for marker in _RETRYABLE_REASON_MARKERS):
        return True
    reason = reason.lower()
    return any(marker in reason for marker in _RETRYABLE_REASON_MARKERS_LOWER)


def task_id_of(task_reference: str) -> str:
    """Return the task id from a task ARN, or the argument if it is an id.

    Task ARNs end with the id in both formats:
    ``arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID`` and the older
    ``arn:aws:ecs:REGION:ACCOUNT:task/ID``.
    """
    return task_reference.rsplit("/", 1)[-1]
