"""Clusters, task definitions and tasks of the simulated control plane.

A task stores the simulated times of its transitions. Its status at any
moment is computed from them, so nothing has to run in the background.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cluster", "LastStatus", "SimulatedTask", "TaskDefinition"]


class LastStatus(str, enum.Enum):
    """The ``lastStatus`` values a simulated Fargate task passes through, in order."""

    PROVISIONING = "PROVISIONING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    DEPROVISIONING = "DEPROVISIONING"
    STOPPED = "STOPPED"


@dataclass
class Cluster:
    """A cluster made at the start or by CreateCluster."""

    name: str
    arn: str
    tags: list[dict[str, Any]] = field(default_factory=list)
    settings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TaskDefinition:
    """One registered revision of a task definition family."""

    family: str
    revision: int
    arn: str
    registered_at: float
    registered_by: str
    container_definitions: list[dict[str, Any]]
    network_mode: str
    requires_compatibilities: list[str]
    cpu: str | None
    memory: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def container_names(self) -> list[str]:
        return [definition["name"] for definition in self.container_definitions]

    @property
    def fargate_compatible(self) -> bool:
        # Fargate runs only awsvpc tasks with task-level cpu and memory.
        return self.network_mode == "awsvpc" and self.cpu is not None and self.memory is not None

    def describe(self, epoch: float) -> dict[str, Any]:
        """Return the TaskDefinition structure of ECS responses."""
        description: dict[str, Any] = {
            "taskDefinitionArn": self.arn,
            "containerDefinitions": self.container_definitions,
            "family": self.family,
            "networkMode": self.network_mode,
            "revision": self.revision,
            "volumes": [],
            "status": "ACTIVE",
            "requiresAttributes": [],
            "placementConstraints": [],
            "compatibilities": ["EC2", "FARGATE"] if self.fargate_compatible else ["EC2"],
            "requiresCompatibilities": self.requires_compatibilities,
            "registeredAt": epoch + self.registered_at,
            "registeredBy": self.registered_by,
            **self.extra,
        }
        if self.cpu is not None:
            description["cpu"] = self.cpu
        if self.memory is not None:
            description["memory"] = self.memory
        return description


@dataclass(eq=False)
class SimulatedTask:
    """One task and the simulated times of its transitions.

    Times are simulated seconds. A task uses capacity on the interval
    [created_at, stopped_at), which is what the ground truth counts.
    """

    sequence: int
    task_id: str
    arn: str
    cluster: Cluster
    task_definition: TaskDefinition
    created_at: float
    listed_at: float
    described_at: float
    running_at: float
    work_ends_at: float
    stop_time: float
    started_by: str | None
    group: str
    foreign: bool
    container_ids: list[str]
    attachment_id: str
    launch_type: str = "FARGATE"
    capacity_provider_name: str = "FARGATE"
    client_token: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    network_configuration: dict[str, Any] | None = None
    tags: list[dict[str, Any]] = field(default_factory=list)
    stop_requested_at: float | None = None
    stop_reason: str | None = None

    @property
    def provisioned_at(self) -> float:
        # PROVISIONING takes the first half of the boot time, PENDING the rest.
        return self.created_at + (self.running_at - self.created_at) / 2

    @property
    def stop_starts_at(self) -> float:
        """Time the work ends or StopTask arrives, whichever is first; desiredStatus turns STOPPED."""
        requested = math.inf if self.stop_requested_at is None else self.stop_requested_at
        return min(self.work_ends_at, requested)

    @property
    def deprovisioning_at(self) -> float:
        return self.stop_starts_at + self.stop_time / 2

    @property
    def stopped_at(self) -> float:
        return self.stop_starts_at + self.stop_time

    @property
    def user_stopped(self) -> bool:
        return self.stop_requested_at is not None and self.stop_requested_at < self.work_ends_at

    def last_status(self, now: float) -> LastStatus:
        if now >= self.stopped_at:
            return LastStatus.STOPPED
        if now >= self.deprovisioning_at:
            return LastStatus.DEPROVISIONING
        if now >= self.stop_starts_at:
            return LastStatus.STOPPING
        if now >= self.running_at:
            return LastStatus.RUNNING
        if now >= self.provisioned_at:
            return LastStatus.PENDING
        return LastStatus.PROVISIONING

    def desired_status(self, now: float) -> str:
        return "STOPPED" if now >= self.stop_starts_at else "RUNNING"

    def is_forgotten(self, now: float, retention: float) -> bool:
        return now >= self.stopped_at + retention

    def request_stop(self, now: float, reason: str) -> None:
        """Apply StopTask at ``now``; a task already stopping keeps its times."""
        if now >= self.stop_starts_at:
            return
        self.stop_requested_at = now
        self.stop_reason = reason

    def describe(self, now: float, epoch: float, *, region: str, include_tags: bool) -> dict[str, Any]:
        """Return the Task structure of ECS responses as it reads at ``now``."""
        status = self.last_status(now)
        description: dict[str, Any] = {
            "taskArn": self.arn,
            "clusterArn": self.cluster.arn,
            "taskDefinitionArn": self.task_definition.arn,
            "availabilityZone": f"{region}a",
            "capacityProviderName": self.capacity_provider_name,
            "launchType": self.launch_type,
            "platformVersion": "1.4.0",
            "platformFamily": "Linux",
            "lastStatus": status.value,
            "desiredStatus": self.desired_status(now),
            "group": self.group,
            "cpu": self.task_definition.cpu or "256",
            "memory": self.task_definition.memory or "512",
            "createdAt": epoch + self.created_at,
            "enableExecuteCommand": False,
            "ephemeralStorage": {"sizeInGiB": 20},
            "healthStatus": "UNKNOWN",
            "overrides": {"containerOverrides": [], "inferenceAcceleratorOverrides": [], **self.overrides},
            "version": self._version(now),
            "attributes": [],
            "containers": self._describe_containers(now),
            "attachments": self._describe_attachments(now),
        }
        if self.started_by is not None:
            description["startedBy"] = self.started_by
        if include_tags:
            description["tags"] = self.tags

        if now >= self.provisioned_at and self.provisioned_at < self.stop_starts_at:
            description["connectivity"] = "CONNECTED"
            description["connectivityAt"] = epoch + self.provisioned_at
            description["pullStartedAt"] = epoch + self.provisioned_at
        if now >= self.running_at and self.running_at < self.stop_starts_at:
            description["pullStoppedAt"] = epoch + self.running_at
            description["startedAt"] = epoch + self.running_at
        if now >= self.stop_starts_at:
            description.update(self._describe_stop(now, epoch))
        return description

    def _describe_stop(self, now: float, epoch: float) -> dict[str, Any]:
        stop: dict[str, Any] = {
            "stoppingAt": epoch + self.stop_starts_at,
            "executionStoppedAt": epoch + self.stop_starts_at,
        }
        if self.user_stopped:
            stop["stopCode"] = "UserInitiated"
            stop["stoppedReason"] = self.stop_reason
        else:
            stop["stopCode"] = "EssentialContainerExited"
            stop["stoppedReason"] = "Essential container in task exited"
        if now >= self.stopped_at:
            stop["stoppedAt"] = epoch + self.stopped_at
        return stop

    def _version(self, now: float) -> int:
        # ECS raises the version on every state change; the number of
        # transitions passed so far gives the same sequence.
        # A task stopped during boot never reaches the later boot states.
        boot = [moment for moment in (self.provisioned_at, self.running_at) if moment < self.stop_starts_at]
        transitions = (*boot, self.stop_starts_at, self.deprovisioning_at, self.stopped_at)
        return 1 + sum(1 for moment in transitions if now >= moment)

    def _describe_containers(self, now: float) -> list[dict[str, Any]]:
        if now >= self.stop_starts_at:
            container_status = "STOPPED"
        elif now >= self.running_at:
            container_status = "RUNNING"
        else:
            container_status = "PENDING"

        containers = []
        for definition, container_id in zip(self.task_definition.container_definitions, self.container_ids):
            container: dict[str, Any] = {
                "containerArn": self.arn.replace(":task/", ":container/", 1) + "/" + container_id,
                "taskArn": self.arn,
                "name": definition["name"],
                "image": definition["image"],
                "lastStatus": container_status,
                "networkBindings": [],
                "networkInterfaces": [],
                "healthStatus": "UNKNOWN",
                "cpu": str(definition.get("cpu", 0)),
            }
            if "memory" in definition:
                container["memory"] = str(definition["memory"])
            if container_status == "STOPPED":
                # 143 is 128 + SIGTERM: the exit code of a container stopped by StopTask.
                container["exitCode"] = 143 if self.user_stopped else 0
            containers.append(container)
        return containers

    def _describe_attachments(self, now: float) -> list[dict[str, Any]]:
        if self.network_configuration is None:
            return []
        if now >= self.stopped_at:
            attachment_status = "DELETED"
        elif now >= self.provisioned_at:
            attachment_status = "ATTACHED"
        else:
            attachment_status = "PRECREATED"
        subnets = self.network_configuration.get("awsvpcConfiguration", {}).get("subnets", [])
        details = [{"name": "subnetId", "value": subnet} for subnet in subnets[:1]]
        return [
            {
                "id": self.attachment_id,
                "type": "ElasticNetworkInterface",
                "status": attachment_status,
                "details": details,
            }
        ]
