"""The simulated ECS operations, one function each.

Each function takes the control plane, the decoded JSON request and the
simulated time, and returns the JSON response or raises EcsError. Request
throttling and ListTasks outages are applied before these run.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from fleetactor.simulator._config import NAME_PATTERN, STARTED_BY_PATTERN
from fleetactor.simulator._errors import (
    EcsError,
    LostResponse,
    client_error,
    conflict,
    invalid_parameter,
    throttled,
)
from fleetactor.simulator._state import ControlPlane, TaskRequest, TokenRecord
from fleetactor.simulator._tasks import Cluster, LastStatus, SimulatedTask, TaskDefinition
from fleetactor.simulator._validation import (
    optional_enum,
    optional_int,
    optional_object,
    optional_object_list,
    optional_string,
    optional_string_list,
    required_string,
)

__all__ = ["CAPACITY_UNAVAILABLE_REASON", "OPERATION_HANDLERS"]

# The reason Fargate gives in RunTask ``failures`` when it has no capacity.
CAPACITY_UNAVAILABLE_REASON = (
    "Capacity is unavailable at this time. Please try again later or in a different availability zone"
)
DEFAULT_STOP_REASON = "Task stopped by user"

MAX_RUN_TASK_COUNT = 10
MAX_DESCRIBE_ITEMS = 100
MAX_PAGE_SIZE = 100
MAX_CLIENT_TOKEN_LENGTH = 64
MAX_GROUP_LENGTH = 255

LAUNCH_TYPES = frozenset({"EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"})
FARGATE_CAPACITY_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
NETWORK_MODES = frozenset({"bridge", "host", "awsvpc", "none"})


# Clusters.


def create_cluster(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    name = optional_string(request, "clusterName") or "default"
    if not NAME_PATTERN.fullmatch(name):
        raise invalid_parameter(
            f"clusterName must contain 1 to 255 letters, numbers, hyphens or underscores, got {name!r}."
        )
    tags = optional_object_list(request, "tags")
    settings = optional_object_list(request, "settings")

    # CreateCluster is idempotent: an existing cluster is returned unchanged.
    cluster = plane.clusters.get(name)
    if cluster is None:
        cluster = plane.add_cluster(name)
        cluster.tags = tags or []
        cluster.settings = settings or [{"name": "containerInsights", "value": "disabled"}]
    return {"cluster": _describe_cluster(plane, cluster, now)}


def describe_clusters(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    references = optional_string_list(request, "clusters") or ["default"]
    if len(references) > MAX_DESCRIBE_ITEMS:
        raise invalid_parameter(
            f"clusters lists {len(references)} clusters; DescribeClusters accepts at most {MAX_DESCRIBE_ITEMS}."
        )
    optional_string_list(request, "include")

    clusters = []
    failures = []
    for reference in references:
        name = plane.cluster_name_from_reference(reference)
        cluster = plane.clusters.get(name)
        if cluster is None:
            failures.append({"arn": plane.arn(f"cluster/{name}"), "reason": "MISSING"})
        else:
            clusters.append(_describe_cluster(plane, cluster, now))
    return {"clusters": clusters, "failures": failures}


def list_clusters(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    entries = [(position, cluster.arn) for position, cluster in enumerate(plane.clusters.values())]
    arns, next_token = _paginate(request, entries)
    response: dict[str, Any] = {"clusterArns": arns}
    if next_token is not None:
        response["nextToken"] = next_token
    return response


def _describe_cluster(plane: ControlPlane, cluster: Cluster, now: float) -> dict[str, Any]:
    statuses = [task.last_status(now) for task in plane.tasks if task.cluster is cluster]
    return {
        "clusterArn": cluster.arn,
        "clusterName": cluster.name,
        "status": "ACTIVE",
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": statuses.count(LastStatus.RUNNING),
        "pendingTasksCount": statuses.count(LastStatus.PROVISIONING) + statuses.count(LastStatus.PENDING),
        "activeServicesCount": 0,
        "statistics": [],
        "tags": cluster.tags,
        "settings": cluster.settings,
        "capacityProviders": [],
        "defaultCapacityProviderStrategy": [],
    }


# Task definitions.


def register_task_definition(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    family = required_string(request, "family")
    if not NAME_PATTERN.fullmatch(family):
        raise client_error(f"family must contain 1 to 255 letters, numbers, hyphens or underscores, got {family!r}.")
    containers = _container_definitions(request)
    network_mode = optional_enum(request, "networkMode", NETWORK_MODES) or "bridge"
    requires = optional_string_list(request, "requiresCompatibilities") or []
    for compatibility in requires:
        if compatibility not in LAUNCH_TYPES:
            choices = ", ".join(sorted(LAUNCH_TYPES))
            raise invalid_parameter(f"requiresCompatibilities must contain only {choices}, got {compatibility!r}.")
    cpu = optional_string(request, "cpu")
    memory = optional_string(request, "memory")
    tags = optional_object_list(request, "tags") or []

    if "FARGATE" in requires and network_mode != "awsvpc":
        raise client_error(f"Fargate tasks need networkMode 'awsvpc', got {network_mode!r}.")
    if "FARGATE" in requires and (cpu is None or memory is None):
        raise client_error("Fargate tasks need cpu and memory set at the task level of the task definition.")

    extra = {
        name: request[name]
        for name in ("taskRoleArn", "executionRoleArn")
        if isinstance(request.get(name), str)
    }
    definition = plane.register(
        family,
        containers,
        now=now,
        network_mode=network_mode,
        requires_compatibilities=requires,
        cpu=cpu,
        memory=memory,
        extra=extra,
    )
    return {"taskDefinition": definition.describe(plane.epoch), "tags": tags}


def _container_definitions(request: dict[str, Any]) -> list[dict[str, Any]]:
    containers = optional_object_list(request, "containerDefinitions")
    if not containers:
        raise client_error("containerDefinitions must list at least one container.")

    described = []
    for container in containers:
        name = optional_string(container, "name")
        if name is None or not NAME_PATTERN.fullmatch(name):
            raise client_error(
                f"Container name must contain 1 to 255 letters, numbers, hyphens or underscores, got {name!r}."
            )
        if not optional_string(container, "image"):
            raise client_error(f"Container {name!r} needs an image.")
        # ECS fills in these defaults when it stores a container definition.
        defaults = {
            "cpu": 0,
            "essential": True,
            "portMappings": [],
            "environment": [],
            "mountPoints": [],
            "volumesFrom": [],
        }
        described.append({**defaults, **container})
    return described


# Tasks.


def run_task(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    """Start tasks, or replay the response of an earlier call with the same clientToken."""
    config = plane.config
    count, task_request = _parse_run_task(plane, request)
    fingerprint = json.dumps({key: value for key, value in request.items() if key != "clientToken"}, sort_keys=True)

    token = task_request.client_token
    record = plane.tokens.get(token) if token is not None else None
    if record is not None and config.idempotency:
        if record.fingerprint != fingerprint:
            raise conflict([task.arn for task in record.tasks])
        return {
            "tasks": [_describe_task(plane, task, now) for task in record.tasks],
            "failures": list(record.failures),
        }

    if plane.launch_bucket is not None and not plane.launch_bucket.try_take(now, count):
        raise throttled()

    outage = config.launch_outage
    in_outage = outage is not None and outage[0] <= now < outage[1]
    tasks: list[SimulatedTask] = []
    failures: list[dict[str, Any]] = []
    for _ in range(count):
        if in_outage or plane.chance(config.launch_failure_rate):
            # Fargate capacity failures carry a reason but no ARN: RunTask
            # failures logged by users (the gchq/sleeper project) show "ARN null".
            failures.append({"reason": CAPACITY_UNAVAILABLE_REASON})
        else:
            tasks.append(plane.create_task(task_request, now))
    plane.counters.launch_failures += len(failures)

    if token is not None and tasks:
        _record_token(plane, token, fingerprint, tasks, failures, count)

    response = {"tasks": [_describe_task(plane, task, now) for task in tasks], "failures": failures}
    if tasks and plane.chance(config.ambiguous_rate):
        plane.counters.ambiguous_launches += 1
        raise LostResponse(response)
    return response


def list_tasks(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    """List task ARNs; a task appears only once its visibility lag has passed."""
    cluster = plane.find_cluster(optional_string(request, "cluster"))
    family = optional_string(request, "family")
    started_by = optional_string(request, "startedBy")
    desired_status = optional_enum(request, "desiredStatus", {"RUNNING", "PENDING", "STOPPED"}) or "RUNNING"
    launch_type = optional_enum(request, "launchType", LAUNCH_TYPES)
    optional_string(request, "daemonName")
    if optional_string(request, "serviceName") is not None:
        raise EcsError("ServiceNotFoundException", "Service not found.")
    if optional_string(request, "containerInstance") is not None:
        raise invalid_parameter("containerInstance was not found: Fargate tasks run on no container instance.")

    retention = plane.config.stopped_task_retention
    entries = [
        (task.sequence, task.arn)
        for task in plane.tasks
        if task.cluster is cluster
        and now >= task.listed_at
        and not task.is_forgotten(now, retention)
        and task.desired_status(now) == desired_status
        and (family is None or task.task_definition.family == family)
        and (started_by is None or task.started_by == started_by)
        and launch_type in (None, task.launch_type)
    ]
    arns, next_token = _paginate(request, entries)
    response: dict[str, Any] = {"taskArns": arns}
    if next_token is not None:
        response["nextToken"] = next_token
    return response


def describe_tasks(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    cluster = plane.find_cluster(optional_string(request, "cluster"))
    references = optional_string_list(request, "tasks")
    if not references:
        raise invalid_parameter(f"tasks is missing: list 1 to {MAX_DESCRIBE_ITEMS} task ids or ARNs.")
    if len(references) > MAX_DESCRIBE_ITEMS:
        raise invalid_parameter(
            f"tasks lists {len(references)} tasks; DescribeTasks accepts at most {MAX_DESCRIBE_ITEMS}."
        )
    include = optional_string_list(request, "include") or []
    for field_name in include:
        if field_name != "TAGS":
            raise invalid_parameter(f"include must contain only TAGS, got {field_name!r}.")

    tasks = []
    failures = []
    for reference in references:
        task = _find_task(plane, reference, cluster, now)
        if task is None:
            arn = reference if reference.startswith("arn:") else plane.arn(f"task/{cluster.name}/{reference}")
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            tasks.append(_describe_task(plane, task, now, include_tags="TAGS" in include))
    return {"tasks": tasks, "failures": failures}


def stop_task(plane: ControlPlane, request: dict[str, Any], now: float) -> dict[str, Any]:
    cluster = plane.find_cluster(optional_string(request, "cluster"))
    reference = required_string(request, "task")
    reason = optional_string(request, "reason") or DEFAULT_STOP_REASON

    task = _find_task(plane, reference, cluster, now)
    if task is None:
        raise invalid_parameter("The referenced task was not found.")
    task.request_stop(now, reason)
    return {"task": _describe_task(plane, task, now)}


def _parse_run_task(plane: ControlPlane, request: dict[str, Any]) -> tuple[int, TaskRequest]:
    reference = required_string(request, "taskDefinition")
    cluster = plane.find_cluster(optional_string(request, "cluster"))
    definition = plane.find_task_definition(reference)

    count = optional_int(request, "count")
    count = 1 if count is None else count
    if not 1 <= count <= MAX_RUN_TASK_COUNT:
        raise invalid_parameter(f"count must be between 1 and {MAX_RUN_TASK_COUNT}, got {count}.")

    started_by = optional_string(request, "startedBy")
    if started_by is not None and not STARTED_BY_PATTERN.fullmatch(started_by):
        raise invalid_parameter(
            f"startedBy must contain 1 to 128 letters, numbers, hyphens, slashes or underscores, got {started_by!r}."
        )
    group = optional_string(request, "group") or f"family:{definition.family}"
    if len(group) > MAX_GROUP_LENGTH:
        raise invalid_parameter(f"group must be at most {MAX_GROUP_LENGTH} characters, got {len(group)}.")

    capacity_provider_name = _capacity_provider(request)
    if not definition.fargate_compatible:
        raise invalid_parameter(
            f"Task definition {definition.family}:{definition.revision} does not support launch type FARGATE: "
            f"it needs networkMode 'awsvpc' and task-level cpu and memory."
        )
    task_request = TaskRequest(
        cluster=cluster,
        task_definition=definition,
        started_by=started_by,
        group=group,
        client_token=_client_token(request),
        overrides=_overrides(request, definition),
        network_configuration=_network_configuration(request),
        tags=optional_object_list(request, "tags") or [],
        capacity_provider_name=capacity_provider_name,
    )
    return count, task_request


def _client_token(request: dict[str, Any]) -> str | None:
    token = optional_string(request, "clientToken")
    if token is None:
        return None
    if not 1 <= len(token) <= MAX_CLIENT_TOKEN_LENGTH:
        raise invalid_parameter(
            f"clientToken must be 1 to {MAX_CLIENT_TOKEN_LENGTH} characters long, got {len(token)} characters."
        )
    if any(not 33 <= ord(character) <= 126 for character in token):
        raise invalid_parameter("clientToken may contain only the characters 33 to 126 (printable ASCII, no space).")
    return token


def _capacity_provider(request: dict[str, Any]) -> str:
    launch_type = optional_enum(request, "launchType", LAUNCH_TYPES)
    strategy = optional_object_list(request, "capacityProviderStrategy")
    if launch_type is not None and strategy:
        raise invalid_parameter("launchType and capacityProviderStrategy cannot both be set; set one of them.")
    if launch_type not in (None, "FARGATE"):
        raise invalid_parameter(
            f"No container instances were found in the cluster for launch type {launch_type}; "
            f"the simulator runs FARGATE tasks only."
        )
    if not strategy:
        return "FARGATE"

    for item in strategy:
        name = item.get("capacityProvider")
        if name not in FARGATE_CAPACITY_PROVIDERS:
            raise invalid_parameter(
                f"Capacity provider {name!r} is not associated with the cluster; use FARGATE or FARGATE_SPOT."
            )
    return strategy[0]["capacityProvider"]


def _network_configuration(request: dict[str, Any]) -> dict[str, Any]:
    configuration = optional_object(request, "networkConfiguration")
    awsvpc = optional_object(configuration or {}, "awsvpcConfiguration")
    subnets = optional_string_list(awsvpc or {}, "subnets")
    if configuration is None or not subnets:
        raise invalid_parameter(
            "networkConfiguration.awsvpcConfiguration.subnets must list at least one subnet: "
            "Fargate tasks use the awsvpc network mode."
        )
    optional_string_list(awsvpc, "securityGroups")
    optional_enum(awsvpc, "assignPublicIp", {"ENABLED", "DISABLED"})
    return configuration


def _overrides(request: dict[str, Any], definition: TaskDefinition) -> dict[str, Any]:
    overrides = optional_object(request, "overrides")
    if overrides is None:
        return {}
    names = definition.container_names()
    for override in optional_object_list(overrides, "containerOverrides") or []:
        name = optional_string(override, "name")
        if name not in names:
            raise invalid_parameter(
                f"Override for container named {name!r} is not a container in task definition "
                f"{definition.family}:{definition.revision}, whose containers are {names}."
            )
        optional_string_list(override, "command")
        optional_object_list(override, "environment")
    return overrides


def _record_token(
    plane: ControlPlane,
    token: str,
    fingerprint: str,
    tasks: list[SimulatedTask],
    failures: list[dict[str, Any]],
    count: int,
) -> None:
    record = plane.tokens.get(token)
    if record is None:
        plane.tokens[token] = TokenRecord(fingerprint, tasks, failures, count, created=len(tasks))
    else:
        # Reached only with idempotency off: the token starts tasks again.
        record.created += len(tasks)


def _find_task(plane: ControlPlane, reference: str, cluster: Cluster, now: float) -> SimulatedTask | None:
    """Return the task a task id or ARN names in ``cluster``, if DescribeTasks can see it at ``now``."""
    task_id = reference
    if reference.startswith("arn:"):
        prefix = plane.arn("task/")
        if not reference.startswith(prefix):
            return None
        # Task ARNs come as task/<cluster>/<id> and, in the old format, task/<id>.
        cluster_name, _, task_id = reference[len(prefix) :].rpartition("/")
        if cluster_name and cluster_name != cluster.name:
            return None

    task = plane.tasks_by_id.get(task_id)
    if task is None or task.cluster is not cluster:
        return None
    if now < task.described_at or task.is_forgotten(now, plane.config.stopped_task_retention):
        return None
    return task


def _describe_task(
    plane: ControlPlane, task: SimulatedTask, now: float, *, include_tags: bool = False
) -> dict[str, Any]:
    return task.describe(now, plane.epoch, region=plane.config.region, include_tags=include_tags)


# Pagination.


def _paginate(request: dict[str, Any], entries: list[tuple[int, str]]) -> tuple[list[str], str | None]:
    """Return one page of ``entries`` (position, value) and the nextToken, if more remain."""
    max_results = optional_int(request, "maxResults")
    max_results = MAX_PAGE_SIZE if max_results is None else max_results
    if not 1 <= max_results <= MAX_PAGE_SIZE:
        raise invalid_parameter(f"maxResults must be between 1 and {MAX_PAGE_SIZE}, got {max_results}.")
    after = _decode_next_token(optional_string(request, "nextToken"))

    remaining = [(position, value) for position, value in entries if position > after]
    page = remaining[:max_results]
    next_token = _encode_next_token(page[-1][0]) if len(remaining) > max_results else None
    return [value for _, value in page], next_token


def _encode_next_token(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode()


def _decode_next_token(token: str | None) -> int:
    if token is None:
        return -1
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        position = decoded["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        position = None
    if isinstance(position, bool) or not isinstance(position, int):
        raise invalid_parameter("nextToken is not valid: pass the nextToken of the previous response unchanged.")
    return position


OPERATION_HANDLERS: dict[str, Callable[[ControlPlane, dict[str, Any], float], dict[str, Any]]] = {
    "CreateCluster": create_cluster,
    "DescribeClusters": describe_clusters,
    "ListClusters": list_clusters,
    "RegisterTaskDefinition": register_task_definition,
    "RunTask": run_task,
    "ListTasks": list_tasks,
    "DescribeTasks": describe_tasks,
    "StopTask": stop_task,
}
