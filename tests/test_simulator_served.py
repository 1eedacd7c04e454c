"""The simulator served over HTTP on 127.0.0.1, driven by boto3 and as a module."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import httpx
import pytest
import trio
from process_support import default_sigint, interrupt

from fleetactor.simulator import GROUND_TRUTH_PATH, AmbiguousResponse, EcsSimulator, SimulatorConfig, serve

REGION = "us-east-1"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}
# Knobs that make every state change immediate, because these tests run in real time.
IMMEDIATE = {
    "task_definition_families": ("worker",),
    "visibility_lag": 0.0,
    "boot_time": 0.0,
    "run_time": float("inf"),
    "stop_time": 0.0,
}
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "AKIAFLEETACTORSIM001",
    "AWS_SECRET_ACCESS_KEY": "fleetactor-simulator-test-secret-000000",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class ServerThread:
    """Serves a simulator from its own trio run in a background thread."""

    def __init__(self, simulator: EcsSimulator) -> None:
        self.simulator = simulator
        self.url = ""
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=self._run, name="simulator-server", daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._started.wait(timeout=30), "the simulator server did not start within 30 s"
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        if self._cancel_scope is not None:
            trio.from_thread.run_sync(self._cancel_scope.cancel, trio_token=self._trio_token)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the simulator server did not stop within 30 s"

    def _run(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as error:  # reported to the test thread by start()
            self._failure = error
            self._started.set()

    async def _serve(self) -> None:
        async with trio.open_nursery() as nursery:
            self._cancel_scope = nursery.cancel_scope
            self._trio_token = trio.lowlevel.current_trio_token()
            self.url = await nursery.start(serve, self.simulator)
            self._started.set()


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def served(fake_aws: None) -> Iterator[Callable[..., tuple[EcsSimulator, Any]]]:
    """Return a factory that serves a simulator and returns it with a boto3 ECS client."""
    servers: list[ServerThread] = []

    def start(max_attempts: int = 1, **knobs: Any) -> tuple[EcsSimulator, Any]:
        simulator = EcsSimulator(SimulatorConfig(**{**IMMEDIATE, **knobs}))
        server = ServerThread(simulator)
        server.start()
        servers.append(server)
        return simulator, make_client(server.url, max_attempts)

    yield start
    for server in servers:
        server.stop()


def make_client(url: str, max_attempts: int) -> Any:
    assert url.startswith("http://127.0.0.1:")
    session = boto3.session.Session(
        aws_access_key_id=FAKE_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    retries = {"mode": "standard", "total_max_attempts": max_attempts}
    return session.client("ecs", endpoint_url=url, config=botocore.config.Config(retries=retries))


def error_code(error: botocore.exceptions.ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def test_boto3_call_sequence(served):
    simulator, ecs = served()

    cluster = ecs.create_cluster(clusterName="fleet")["cluster"]
    definition = ecs.register_task_definition(
        family="batch",
        containerDefinitions=[{"name": "main", "image": "busybox", "command": ["sleep", "60"]}],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )["taskDefinition"]
    launched = ecs.run_task(
        cluster="fleet",
        taskDefinition="batch",
        launchType="FARGATE",
        networkConfiguration=NETWORK,
        startedBy="fleet-a",
    )
    task_arn = launched["tasks"][0]["taskArn"]
    listed = ecs.list_tasks(cluster="fleet", startedBy="fleet-a", desiredStatus="RUNNING")["taskArns"]
    described = ecs.describe_tasks(cluster="fleet", tasks=[task_arn, "f" * 32])
    stopped = ecs.stop_task(cluster="fleet", task=task_arn, reason="test finished")["task"]
    stopped_list = ecs.list_tasks(cluster="fleet", desiredStatus="STOPPED")["taskArns"]

    assert cluster["clusterArn"] == "arn:aws:ecs:us-east-1:123456789012:cluster/fleet"
    assert definition["taskDefinitionArn"].endswith(":task-definition/batch:1")
    assert launched["failures"] == []
    assert task_arn.startswith("arn:aws:ecs:us-east-1:123456789012:task/fleet/")
    assert listed == [task_arn]
    assert described["tasks"][0]["lastStatus"] == "RUNNING"
    assert described["tasks"][0]["createdAt"].tzinfo is not None
    assert described["failures"][0]["reason"] == "MISSING"
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stoppedReason"] == "test finished"
    assert stopped_list == [task_arn]
    assert ecs.list_clusters()["clusterArns"][-1] == cluster["clusterArn"]
    assert ecs.describe_clusters(clusters=["fleet"])["clusters"][0]["clusterName"] == "fleet"

    truth = simulator.ground_truth()
    assert truth.tasks_started == 1
    assert truth.calls["RunTask"] == 1


def test_boto3_conflict_exception(served):
    _, ecs = served()
    first = ecs.run_task(taskDefinition="worker", networkConfiguration=NETWORK, clientToken="launch-1")

    with pytest.raises(ecs.exceptions.ConflictException) as raised:
        ecs.run_task(taskDefinition="worker", networkConfiguration=NETWORK, clientToken="launch-1", count=2)

    assert error_code(raised.value) == ("ConflictException", 400)
    assert raised.value.response["resourceIds"] == [first["tasks"][0]["taskArn"]]


def test_boto3_cluster_not_found(served):
    _, ecs = served()

    with pytest.raises(ecs.exceptions.ClusterNotFoundException) as raised:
        ecs.list_tasks(cluster="ghost")

    assert error_code(raised.value) == ("ClusterNotFoundException", 400)


def test_boto3_unknown_task_definition(served):
    _, ecs = served()

    with pytest.raises(ecs.exceptions.ClientException) as raised:
        ecs.run_task(taskDefinition="ghost", networkConfiguration=NETWORK)

    assert raised.value.response["Error"]["Message"] == "TaskDefinition not found."


def test_boto3_throttling(served):
    _, ecs = served(run_task_throttle_rate=1.0)

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ecs.run_task(taskDefinition="worker", networkConfiguration=NETWORK)

    assert error_code(raised.value) == ("ThrottlingException", 400)


def test_boto3_list_outage(served):
    _, ecs = served(list_failure_rate=1.0)

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ecs.list_tasks()

    assert error_code(raised.value) == ("ServerException", 503)


def test_boto3_capacity_failure(served):
    _, ecs = served(launch_failure_rate=1.0)

    response = ecs.run_task(taskDefinition="worker", networkConfiguration=NETWORK)

    assert response["tasks"] == []
    assert response["failures"][0]["reason"].startswith("Capacity is unavailable at this time.")


def test_boto3_disconnect_retried_once(served):
    # botocore fills in clientToken itself and sends the same one on retry,
    # so the dropped response costs no second task.
    simulator, ecs = served(
        max_attempts=3, ambiguous_rate=1.0, ambiguous_response=AmbiguousResponse.DISCONNECT
    )

    response = ecs.run_task(taskDefinition="worker", networkConfiguration=NETWORK)

    assert len(response["tasks"]) == 1
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    truth = simulator.ground_truth()
    assert truth.ambiguous_launches == 1
    assert truth.tasks_started == 1
    assert truth.duplicate_tasks == 0


def test_boto3_disconnect_without_retry(served):
    _, ecs = served(ambiguous_rate=1.0, ambiguous_response=AmbiguousResponse.DISCONNECT)

    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        ecs.run_task(taskDefinition="worker", networkConfiguration=NETWORK)

    assert len(ecs.list_tasks()["taskArns"]) == 1


def test_ground_truth_over_http(served):
    simulator, ecs = served(foreign_tasks=2)
    ecs.run_task(taskDefinition="worker", networkConfiguration=NETWORK)
    url = ecs.meta.endpoint_url + GROUND_TRUTH_PATH

    truth = httpx.get(url).json()
    rejected = httpx.post(url, json={})

    assert truth["peak_active"] == 3
    assert truth["peak_fleet_active"] == 1
    assert truth["foreign_tasks"] == 2
    assert truth["calls"]["RunTask"] == 1
    assert rejected.status_code == 405


def test_module_serves_until_interrupted(fake_aws):
    command = [sys.executable, "-m", "fleetactor.simulator", "--port", "0", "--task-definition", "worker"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        url = ""
        for line in process.stdout:
            if line.startswith("fleetactor ECS simulator listening on "):
                url = line.rsplit(" ", 1)[1].strip()
                break
        assert url.startswith("http://127.0.0.1:")

        ecs = make_client(url, max_attempts=1)
        assert ecs.list_tasks()["taskArns"] == []
        assert httpx.get(url + GROUND_TRUTH_PATH).json()["calls"]["ListTasks"] == 1

        assert interrupt(process, timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
