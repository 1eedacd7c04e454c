"""A fleet provisioner that runs each worker as one ECS task."""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import botocore.exceptions
import botocore.session
import httpx
import structlog
from botocore.credentials import Credentials

from fleetactor._types import Job, LaunchRejected, TaskStatus
from fleetactor.ecs._client import DEFAULT_TIMEOUT, AwsJsonClient, ClientStatistics
from fleetactor.ecs._errors import AwsServiceError, InvalidJobOverridesError
from fleetactor.ecs._ratelimit import RateLimit
from fleetactor.ecs._responses import is_retryable_failure, status_from_last_status, task_id_of
from fleetactor.ecs._retry import RetryPolicy

__all__ = ["DEFAULT_RATE_LIMIT", "RUN_TASK_RATE_LIMIT", "EcsProvisioner"]

logger = structlog.get_logger(__name__)

# Client-side rate limits, both estimates of an account's default quotas.
# RunTask follows the Fargate task launch rate (bursts of 100, 20 tasks per
# second sustained). Other operations get a bucket of 50, the size ECS gives
# its cluster read actions, refilled at 20 per second. AWS may set other
# quotas per account and region; Service Quotas shows the ones in force.
RUN_TASK_RATE_LIMIT = RateLimit(per_second=20.0, burst=100)
DEFAULT_RATE_LIMIT = RateLimit(per_second=20.0, burst=50)

# API limits from the ECS API reference.
_MAX_CLIENT_TOKEN_LENGTH = 64
_MAX_DESCRIBE_BATCH = 100
_MAX_LIST_PAGE = 100
_MAX_STOP_REASON_LENGTH = 255
_STARTED_BY_PATTERN = re.compile(r"[A-Za-z0-9_/-]{1,128}")


class EcsProvisioner:
    """Start, list, describe and stop ECS tasks for a fleet.

    Each launch is one RunTask call with ``count=1`` and the fleet's client
    token, so ECS starts at most one task per token. Use the provisioner as
    an async context manager, or call ``open`` and ``aclose``::

        async with EcsProvisioner("workers", "worker:7", subnets=["subnet-1"]) as ecs:
            task_arn = await ecs.launch(Job(key="a"), client_token="launch-1")

    Args:
        cluster: The cluster name or ARN.
        task_definition: ``family``, ``family:revision`` or the full ARN.
        region, endpoint_url, credentials, session, profile: Where to send
            requests and how to sign them; see ``AwsJsonClient``.
        launch_type: ``"FARGATE"``, ``"EC2"`` or ``"EXTERNAL"``. Defaults to
            ``"FARGATE"`` unless ``capacity_provider_strategy`` is given.
        capacity_provider_strategy: RunTask's ``capacityProviderStrategy``
            items, for example ``[{"capacityProvider": "FARGATE_SPOT",
            "weight": 1}]``. Excludes ``launch_type``.
        platform_version: The Fargate platform version. Defaults to ECS's.
        subnets: Subnet ids for tasks with the ``awsvpc`` network mode.
        security_groups: Security group ids for those tasks.
        assign_public_ip: Give each task a public IP address.
        container_name: The container that job overrides apply to when a job
            does not name one in ``overrides["container"]``.
        tags: Tags put on every task.
        started_by: RunTask's ``startedBy``: marks this fleet's tasks. Up to
            128 letters, digits, ``-``, ``_`` and ``/``.
        list_filter: Which tasks ``list_running`` returns: ``"started_by"``
            (tasks with this ``started_by``) or ``"family"`` (all tasks of
            the task definition's family, including ones others started).
        transport, http_client, timeout, retry, jitter_random: Passed to
            ``AwsJsonClient``.
        rate_limits: Token buckets per operation, merged over the defaults
            (``RUN_TASK_RATE_LIMIT`` for RunTask).
        default_rate_limit: The bucket for every other operation.

    Raises:
        ValueError: An argument is invalid; the message names it.
        EcsConfigError: No region is configured, or the static credentials
            are incomplete.
    """

    def __init__(
        self,
        cluster: str,
        task_definition: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        launch_type: str | None = None,
        capacity_provider_strategy: Sequence[Mapping[str, Any]] | None = None,
        platform_version: str | None = None,
        subnets: Sequence[str] = (),
        security_groups: Sequence[str] = (),
        assign_public_ip: bool = False,
        container_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        started_by: str = "fleetactor",
        list_filter: Literal["started_by", "family"] = "started_by",
        credentials: Credentials | None = None,
        session: botocore.session.Session | None = None,
        profile: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        default_rate_limit: RateLimit = DEFAULT_RATE_LIMIT,
        jitter_random: random.Random | None = None,
    ) -> None:
        _check_name("cluster", cluster)
        _check_name("task_definition", task_definition)
        if not _STARTED_BY_PATTERN.fullmatch(started_by):
            msg = f"started_by must be 1 to 128 letters, digits, '-', '_' or '/', got {started_by!r}"
            raise ValueError(msg)
        if list_filter not in ("started_by", "family"):
            msg = f"list_filter must be 'started_by' or 'family', got {list_filter!r}"
            raise ValueError(msg)
        if launch_type is not None and capacity_provider_strategy:
            msg = "pass either launch_type= or capacity_provider_strategy=, not both; ECS rejects RunTask with both"
            raise ValueError(msg)
        for argument, ids in (("subnets", subnets), ("security_groups", security_groups)):
            if isinstance(ids, str) or not all(isinstance(item, str) and item for item in ids):
                msg = f"{argument} must be a list of id strings, got {ids!r}"
                raise ValueError(msg)
        if security_groups and not subnets:
            msg = "security_groups need subnets=...: both go into the task's awsvpc network configuration"
            raise ValueError(msg)

        self.cluster = cluster
        self.task_definition = task_definition
        self.started_by = started_by
        self.list_filter = list_filter
        self.container_name = container_name
        self._run_task_template = _run_task_template(
            cluster=cluster,
            task_definition=task_definition,
            launch_type=launch_type,
            capacity_provider_strategy=capacity_provider_strategy,
            platform_version=platform_version,
            subnets=subnets,
            security_groups=security_groups,
            assign_public_ip=assign_public_ip,
            tags=tags or {},
            started_by=started_by,
        )

        self.client = AwsJsonClient(
            "ecs",
            region=region,
            endpoint_url=endpoint_url,
            credentials=credentials,
            session=session,
            profile=profile,
            transport=transport,
            http_client=http_client,
            timeout=timeout,
            retry=retry,
            rate_limits={"RunTask": RUN_TASK_RATE_LIMIT, **(rate_limits or {})},
            default_rate_limit=default_rate_limit,
            jitter_random=jitter_random,
        )

    async def __aenter__(self) -> EcsProvisioner:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Load the ECS model, resolve the endpoint and find credentials.

        Raises:
            EcsConfigError: A setting is missing; the message names it.
        """
        await self.client.open()

    async def aclose(self) -> None:
        """Close the HTTP client. Tasks that were started keep running."""
        await self.client.aclose()

    def statistics(self) -> ClientStatistics:
        """Return the HTTP request counters of the underlying client."""
        return self.client.statistics()

    async def launch(self, job: Job, *, client_token: str) -> str:
        """Start one task for ``job`` and return its task ARN.

        Calling again with the same ``client_token`` and job is safe: ECS
        returns the task it started for that token instead of a new one.

        Raises:
            LaunchRejected: ECS started nothing. ``retryable`` is True for a
                capacity or resource shortage and for throttling, False for a
                client error or a failure that would repeat.
            InvalidJobOverridesError: ``job.overrides`` are invalid, or name
                no container while the provisioner has no ``container_name``.
                Nothing was sent.
            AwsServiceError, httpx.TransportError: The outcome is unknown (a
                5xx response or a lost connection after all retries): the
                task may have started. Retry with the same client token.
            trio.Cancelled: A RunTask request may have been sent.
        """
        if not client_token or len(client_token) > _MAX_CLIENT_TOKEN_LENGTH:
            msg = f"client_token must be 1 to {_MAX_CLIENT_TOKEN_LENGTH} characters, got {client_token!r}"
            raise ValueError(msg)

        parameters = dict(self._run_task_template, clientToken=client_token)
        overrides = self._container_overrides(job)
        if overrides is not None:
            parameters["overrides"] = {"containerOverrides": [overrides]}

        try:
            response = await self.client.call("RunTask", parameters)
        except botocore.exceptions.ParamValidationError as error:
            msg = f"RunTask parameters are invalid: {error}"
            raise LaunchRejected(msg, retryable=False) from error
        except AwsServiceError as error:
            if error.server_side or error.after_unknown_outcome:
                # ECS may have started the task before it returned a 5xx
                # response or lost the connection, on this attempt or an
                # earlier one, so the outcome is unknown.
                raise
            raise _launch_rejection(error, client_token) from error

        tasks = response.get("tasks") or []
        if tasks:
            return str(tasks[0]["taskArn"])
        failures = response.get("failures") or []
        if failures:
            reason = _failure_reason(failures[0])
            raise LaunchRejected(reason, retryable=is_retryable_failure(reason))

        # Neither a task nor a failure: the response is not one ECS documents.
        # Treat it as an unknown outcome so the fleet retries with the token.
        msg = f"RunTask returned neither a task nor a failure for client token {client_token!r}"
        raise RuntimeError(msg)

    async def list_running(self) -> Collection[str]:
        """Return the ARNs of this fleet's tasks whose desired status is RUNNING.

        The list includes tasks that are still starting. Follows ``nextToken``
        to the last page. ListTasks is eventually consistent: a task started a
        few seconds ago may be missing.
        """
        parameters: dict[str, Any] = {
            "cluster": self.cluster,
            "desiredStatus": "RUNNING",
            "maxResults": _MAX_LIST_PAGE,
        }
        # ListTasks accepts only one of these filters per call.
        if self.list_filter == "family":
            parameters["family"] = _family_of(self.task_definition)
        else:
            parameters["startedBy"] = self.started_by

        task_arns: dict[str, None] = {}
        while True:
            response = await self.client.call("ListTasks", parameters)
            task_arns.update(dict.fromkeys(response.get("taskArns") or []))
            next_token = response.get("nextToken")
            if not next_token:
                return list(task_arns)
            parameters["nextToken"] = next_token

    async def describe(self, task_ids: Sequence[str]) -> Mapping[str, str]:
        """Map each task id or ARN to PENDING, RUNNING, STOPPED or MISSING.

        Sends one DescribeTasks call per 100 ids. A task that ECS reports as
        MISSING, or omits from its response, maps to MISSING. A task that is
        shutting down maps to RUNNING until it is STOPPED, because it still
        occupies its capacity.
        """
        unique_ids = list(dict.fromkeys(task_ids))
        statuses: dict[str, str] = {}
        for start in range(0, len(unique_ids), _MAX_DESCRIBE_BATCH):
            batch = unique_ids[start : start + _MAX_DESCRIBE_BATCH]
            response = await self.client.call("DescribeTasks", {"cluster": self.cluster, "tasks": batch})
            statuses.update(self._batch_statuses(batch, response))
        return statuses

    async def stop(self, task_id: str, reason: str = "stopped by fleetactor") -> str:
        """Ask ECS to stop a task and return its status ("RUNNING", ...) after the call.

        The task keeps holding capacity until ``describe`` reports STOPPED.
        ``reason`` is cut to ECS's limit of 255 characters.
        """
        response = await self.client.call(
            "StopTask",
            {"cluster": self.cluster, "task": task_id, "reason": reason[:_MAX_STOP_REASON_LENGTH]},
        )
        return status_from_last_status((response.get("task") or {}).get("lastStatus")).value

    def _container_overrides(self, job: Job) -> dict[str, Any] | None:
        overrides = job.overrides
        if not any(key in overrides for key in ("command", "environment")):
            return None

        container = overrides.get("container", self.container_name)
        if not isinstance(container, str) or not container:
            msg = (
                f"job {job.key!r} has overrides but no container name: set overrides['container'] "
                "or pass container_name=... to EcsProvisioner"
            )
            raise InvalidJobOverridesError(msg)
        container_override: dict[str, Any] = {"name": container}

        if "command" in overrides:
            command = overrides["command"]
            if isinstance(command, str) or not isinstance(command, Sequence) or not all(
                isinstance(part, str) for part in command
            ):
                msg = f"job {job.key!r}: overrides['command'] must be a list of strings, got {command!r}"
                raise InvalidJobOverridesError(msg)
            container_override["command"] = list(command)

        if "environment" in overrides:
            environment = overrides["environment"]
            if not isinstance(environment, Mapping) or not all(
                isinstance(name, str) and isinstance(value, str) for name, value in environment.items()
            ):
                msg = f"job {job.key!r}: overrides['environment'] must map strings to strings, got {environment!r}"
                raise InvalidJobOverridesError(msg)
            container_override["environment"] = [{"name": name, "value": value} for name, value in environment.items()]

        return container_override

    def _batch_statuses(self, batch: Sequence[str], response: Mapping[str, Any]) -> dict[str, str]:
        # ECS returns full ARNs even for requests by bare id, so results are
        # matched to the requested ids by task id.
        reported: dict[str, TaskStatus] = {}
        for task in response.get("tasks") or []:
            reported[task_id_of(task["taskArn"])] = status_from_last_status(task.get("lastStatus"))
        for failure in response.get("failures") or []:
            task_id = task_id_of(failure.get("arn") or "")
            if failure.get("reason") == "MISSING":
                reported.setdefault(task_id, TaskStatus.MISSING)
            else:
                # Any other reason gives no state for the task, so it stays
                # counted as holding capacity.
                logger.warning("ecs.describe.failure", task_id=task_id, reason=failure.get("reason"))
                reported.setdefault(task_id, TaskStatus.PENDING)

        # Plain strings, as the provisioner protocol specifies: on Python 3.11,
        # str() of a TaskStatus member gives "TaskStatus.RUNNING".
        return {requested: reported.get(task_id_of(requested), TaskStatus.MISSING).value for requested in batch}


def _check_name(argument: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        msg = f"{argument} must be a non-empty string, got {value!r}"
        raise ValueError(msg)


def _run_task_template(
    *,
    cluster: str,
    task_definition: str,
    launch_type: str | None,
    capacity_provider_strategy: Sequence[Mapping[str, Any]] | None,
    platform_version: str | None,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    assign_public_ip: bool,
    tags: Mapping[str, str],
    started_by: str,
) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "cluster": cluster,
        "taskDefinition": task_definition,
        "count": 1,
        "startedBy": started_by,
    }
    if capacity_provider_strategy:
        parameters["capacityProviderStrategy"] = [dict(item) for item in capacity_provider_strategy]
    else:
        parameters["launchType"] = launch_type or "FARGATE"
    if platform_version is not None:
        parameters["platformVersion"] = platform_version
    if subnets:
        awsvpc: dict[str, Any] = {
            "subnets": list(subnets),
            "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
        }
        if security_groups:
            awsvpc["securityGroups"] = list(security_groups)
        parameters["networkConfiguration"] = {"awsvpcConfiguration": awsvpc}
    if tags:
        parameters["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
    return parameters


def _family_of(task_definition: str) -> str:
    # "family", "family:3" or "arn:aws:ecs:REGION:ACCOUNT:task-definition/family:3"
    return task_definition.rsplit("/", 1)[-1].split(":", 1)[0]


def _failure_reason(failure: Mapping[str, Any]) -> str:
    reason = str(failure.get("reason") or "no reason given")
    detail = failure.get("detail")
    return f"RunTask failure: {reason} ({detail})" if detail else f"RunTask failure: {reason}"


def _launch_rejection(error: AwsServiceError, client_token: str) -> LaunchRejected:
    # Called only for 4xx responses: ECS rejected the request and started nothing.
    if error.code == "ConflictException":
        reason = (
            f"client token {client_token!r} was reused with different RunTask parameters, "
            f"so ECS started nothing ({error.code}: {error.message}); use a new client token"
        )
        return LaunchRejected(reason, retryable=False)

    reason = f"{error.code}: {error.message}"
    return LaunchRejected(reason, retryable=error.throttling or is_retryable_failure(error.message))
