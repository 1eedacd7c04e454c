"""State of the simulated control plane: clusters, task definitions, tasks, tokens."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from fleetactor.simulator._config import RunTimeDistribution, SimulatorConfig
from fleetactor.simulator._errors import client_error, cluster_not_found
from fleetactor.simulator._ground_truth import FaultCounters
from fleetactor.simulator._tasks import Cluster, SimulatedTask, TaskDefinition
from fleetactor.simulator._throttle import FARGATE_LAUNCH_RATE, TokenBucket

__all__ = ["OPERATIONS", "ControlPlane", "TaskRequest", "TokenRecord"]

OPERATIONS = (
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "RegisterTaskDefinition",
    "RunTask",
    "ListTasks",
    "DescribeTasks",
    "StopTask",
)


@dataclass(frozen=True)
class TaskRequest:
    """Validated RunTask parameters, shared by every task that the call starts."""

    cluster: Cluster
    task_definition: TaskDefinition
    started_by: str | None
    group: str
    client_token: str | None
    overrides: dict[str, Any]
    network_configuration: dict[str, Any] | None
    tags: list[dict[str, Any]]
    capacity_provider_name: str


@dataclass
class TokenRecord:
    """The first RunTask call of a clientToken that started tasks."""

    fingerprint: str
    tasks: list[SimulatedTask]
    failures: list[dict[str, Any]]
    count: int
    # Tasks created under the token in total; more than ``count`` only while
    # idempotency is off.
    created: int = 0


@dataclass
class ControlPlane:
    """Everything the simulated ECS API stores, plus its one random generator."""

    config: SimulatorConfig
    random: random.Random
    counters: FaultCounters
    clusters: dict[str, Cluster] = field(default_factory=dict)
    task_definitions: dict[str, list[TaskDefinition]] = field(default_factory=dict)
    tasks: list[SimulatedTask] = field(default_factory=list)
    tasks_by_id: dict[str, SimulatedTask] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    # Fargate launch quota, one token per task; None when rate limits are off.
    launch_bucket: TokenBucket | None = None
    # Unix time of simulated time zero, set when the simulator's clock starts.
    epoch: float = 0.0

    @classmethod
    def create(cls, config: SimulatorConfig) -> ControlPlane:
        """Build the state at time zero: the start cluster, families and foreign tasks."""
        counters = FaultCounters(
            calls={operation: 0 for operation in OPERATIONS},
            throttled={operation: 0 for operation in OPERATIONS},
        )
        plane = cls(config=config, random=random.Random(config.seed), counters=counters)
        if config.rate_limits:
            plane.launch_bucket = TokenBucket(FARGATE_LAUNCH_RATE)
        cluster = plane.add_cluster(config.cluster_name)
        for family in config.task_definition_families:
            plane.register(family, _default_containers(family), now=0.0, requires_compatibilities=["FARGATE"])

        if config.foreign_tasks:
            foreign_definition = plane.register(
                config.foreign_family,
                _default_containers(config.foreign_family),
                now=0.0,
                requires_compatibilities=["FARGATE"],
            )
            request = TaskRequest(
                cluster=cluster,
                task_definition=foreign_definition,
                started_by=config.foreign_started_by,
                group=f"family:{config.foreign_family}",
                client_token=None,
                overrides={},
                network_configuration=None,
                tags=[],
                capacity_provider_name="FARGATE",
            )
            for _ in range(config.foreign_tasks):
                plane.create_foreign_task(request)
        return plane

    # Names and ARNs.

    def arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{self.config.region}:{self.config.account_id}:{resource}"

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def chance(self, rate: float) -> bool:
        """Return True with probability ``rate``."""
        # No draw for a rate of 0, so a knob left off does not shift later draws.
        return rate > 0 and self.random.random() < rate

    # Clusters.

    def add_cluster(self, name: str) -> Cluster:
        cluster = Cluster(name=name, arn=self.arn(f"cluster/{name}"))
        self.clusters[name] = cluster
        return cluster

    def cluster_name_from_reference(self, reference: str) -> str:
        """Return the cluster name in a name or cluster ARN (ECS accepts both)."""
        prefix = self.arn("cluster/")
        if reference.startswith(prefix):
            return reference[len(prefix) :]
        return reference

    def find_cluster(self, reference: str | None) -> Cluster:
        """Return the named cluster, "default" when None; raise ClusterNotFoundException."""
        name = self.cluster_name_from_reference(reference or "default")
        cluster = self.clusters.get(name)
        if cluster is None:
            raise cluster_not_found()
        return cluster

    # Task definitions.

    def register(
        self,
        family: str,
        container_definitions: list[dict[str, Any]],
        *,
        now: float,
        network_mode: str = "awsvpc",
        requires_compatibilities: list[str] | None = None,
        cpu: str | None = "256",
        memory: str | None = "512",
        extra: dict[str, Any] | None = None,
    ) -> TaskDefinition:
        revisions = self.task_definitions.setdefault(family, [])
        revision = len(revisions) + 1
        definition = TaskDefinition(
            family=family,
            revision=revision,
            arn=self.arn(f"task-definition/{family}:{revision}"),
            registered_at=now,
            registered_by=f"arn:aws:iam::{self.config.account_id}:root",
            container_definitions=container_definitions,
            network_mode=network_mode,
            requires_compatibilities=requires_compatibilities or [],
            cpu=cpu,
            memory=memory,
            extra=extra or {},
        )
        revisions.append(definition)
        return definition

    def find_task_definition(self, reference: str) -> TaskDefinition:
        """Resolve ``family``, ``family:revision`` or a task definition ARN.

        Raises:
            EcsError: ClientException "TaskDefinition not found." when no
                revision matches.
        """
        prefix = self.arn("task-definition/")
        if reference.startswith(prefix):
            reference = reference[len(prefix) :]
        family, _, revision_text = reference.partition(":")
        revisions = self.task_definitions.get(family)
        if not revisions:
            raise client_error("TaskDefinition not found.")
        if not revision_text:
            return revisions[-1]
        if not revision_text.isdigit() or not 1 <= int(revision_text) <= len(revisions):
            raise client_error("TaskDefinition not found.")
        return revisions[int(revision_text) - 1]

    # Tasks.

    def create_task(self, request: TaskRequest, now: float) -> SimulatedTask:
        """Create one task at ``now``, drawing its id, lag and run time."""
        config = self.config
        task_id = f"{self.random.getrandbits(128):032x}"
        running_at = now + config.boot_time
        task = SimulatedTask(
            sequence=len(self.tasks),
            task_id=task_id,
            arn=self.arn(f"task/{request.cluster.name}/{task_id}"),
            cluster=request.cluster,
            task_definition=request.task_definition,
            created_at=now,
            listed_at=now + self._draw_visibility_lag(),
            described_at=now + config.describe_lag,
            running_at=running_at,
            work_ends_at=running_at + self._draw_run_time(),
            stop_time=config.stop_time,
            started_by=request.started_by,
            group=request.group,
            foreign=False,
            container_ids=[self.new_uuid() for _ in request.task_definition.container_definitions],
            attachment_id=self.new_uuid(),
            capacity_provider_name=request.capacity_provider_name,
            client_token=request.client_token,
            overrides=request.overrides,
            network_configuration=request.network_configuration,
            tags=request.tags,
        )
        self._add_task(task)
        return task

    def create_foreign_task(self, request: TaskRequest) -> SimulatedTask:
        """Create a task that is RUNNING and listed at time zero."""
        task_id = f"{self.random.getrandbits(128):032x}"
        task = SimulatedTask(
            sequence=len(self.tasks),
            task_id=task_id,
            arn=self.arn(f"task/{request.cluster.name}/{task_id}"),
            cluster=request.cluster,
            task_definition=request.task_definition,
            created_at=0.0,
            listed_at=0.0,
            described_at=0.0,
            running_at=0.0,
            work_ends_at=self.config.foreign_run_time,
            stop_time=self.config.stop_time,
            started_by=request.started_by,
            group=request.group,
            foreign=True,
            container_ids=[self.new_uuid() for _ in request.task_definition.container_definitions],
            attachment_id=self.new_uuid(),
        )
        self._add_task(task)
        return task

    def _add_task(self, task: SimulatedTask) -> None:
        self.tasks.append(task)
        self.tasks_by_id[task.task_id] = task

    def _draw_visibility_lag(self) -> float:
        config = self.config
        if config.visibility_lag_max is None:
            return config.visibility_lag
        return self.random.uniform(config.visibility_lag, config.visibility_lag_max)

    def _draw_run_time(self) -> float:
        config = self.config
        if config.run_time_sampler is not None:
            value = config.run_time_sampler(self.random)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                msg = f"SimulatorConfig.run_time_sampler returned {value!r}; it must return seconds >= 0"
                raise ValueError(msg)
            return float(value)
        if config.run_time_distribution is RunTimeDistribution.FIXED:
            return config.run_time
        if config.run_time == 0 or math.isinf(config.run_time):
            return config.run_time
        return self.random.expovariate(1 / config.run_time)


def _default_containers(family: str) -> list[dict[str, Any]]:
    return [{"name": family, "image": f"{family}:latest", "essential": True, "cpu": 0}]
