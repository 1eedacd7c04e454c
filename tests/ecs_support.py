"""Shared fixtures and fakes for the ECS tests.

Test modules import the fixtures they use from here. Every fixture keeps AWS
traffic on 127.0.0.1: credentials are fake, instance metadata lookups are off,
and no shared config or credentials file is read.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import httpx
import pytest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

from fleetactor.ecs import EcsProvisioner

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAFLEETACTORTEST01"
SECRET_ACCESS_KEY = "fleetactor-test-secret-key-0000000000000"
FAKE_CREDENTIALS = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)

_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/fleetactor-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/fleetactor-tests/credentials",
}
_REMOVED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def apply_fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set fake AWS credentials and region, and turn off remote lookups."""
    for name, value in _ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in _REMOVED_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    apply_fake_aws_environment(monkeypatch)


# --- httpx.MockTransport fakes ------------------------------------------------


@dataclass
class RecordedRequest:
    """One request a ``FakeAws`` received."""

    operation: str
    body: dict[str, Any]
    headers: httpx.Headers


Responder = Callable[[RecordedRequest], httpx.Response]


@dataclass
class FakeAws:
    """An AWS JSON-protocol endpoint for ``httpx.MockTransport``.

    Each operation responds from its queue of responses first, then with its
    fallback responder. Every request is recorded in ``requests``.
    """

    queued: dict[str, list[httpx.Response | Exception]] = field(default_factory=dict)
    fallbacks: dict[str, Responder] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)

    def queue(self, operation: str, *responses: httpx.Response | Exception) -> None:
        self.queued.setdefault(operation, []).extend(responses)

    def on(self, operation: str, responder: Responder) -> None:
        self.fallbacks[operation] = responder

    def bodies(self, operation: str) -> list[dict[str, Any]]:
        return [request.body for request in self.requests if request.operation == operation]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        target = request.headers["X-Amz-Target"]
        recorded = RecordedRequest(
            operation=target.rsplit(".", 1)[-1],
            body=json.loads(request.content or b"{}"),
            headers=request.headers,
        )
        self.requests.append(recorded)

        queue = self.queued.get(recorded.operation)
        if queue:
            response = queue.pop(0)
            if isinstance(response, Exception):
                raise response
            return response
        responder = self.fallbacks.get(recorded.operation)
        if responder is None:
            return aws_error(400, "InvalidAction", f"the fake has no answer for {recorded.operation}")
        return responder(recorded)


def aws_ok(body: Mapping[str, Any]) -> httpx.Response:
    """A 200 response in the AWS JSON 1.1 protocol."""
    return httpx.Response(
        200,
        json=dict(body),
        headers={"x-amzn-RequestId": "fake-request-ok", "Content-Type": "application/x-amz-json-1.1"},
    )


def aws_error(status_code: int, code: str, message: str) -> httpx.Response:
    """An error response in the AWS JSON 1.1 protocol."""
    return httpx.Response(
        status_code,
        json={"__type": code, "message": message},
        headers={"x-amzn-RequestId": f"fake-request-{code}", "Content-Type": "application/x-amz-json-1.1"},
    )


def task_arn(task_id: str, cluster: str = "workers") -> str:
    return f"arn:aws:ecs:{REGION}:123456789012:task/{cluster}/{task_id}"


# One botocore session for the tests that pass region and credentials
# explicitly: its loader caches the ECS model, which is slow to load.
SHARED_SESSION = botocore.session.Session()


def fake_provisioner(fake: FakeAws, **options: Any) -> EcsProvisioner:
    """An EcsProvisioner that sends to ``fake``, with test defaults."""
    settings: dict[str, Any] = {
        "region": REGION,
        "credentials": FAKE_CREDENTIALS,
        "session": SHARED_SESSION,
        "transport": fake.transport(),
        "subnets": ["subnet-1"],
        "security_groups": ["sg-1"],
        "container_name": "worker",
        "started_by": "fleet-test",
        "jitter_random": random.Random(1),
    }
    settings.update(options)
    return EcsProvisioner("workers", "worker:3", **settings)


# --- moto server -------------------------------------------------------------


@dataclass(frozen=True)
class MotoEcs:
    """A cluster and the network resources a Fargate task needs, in moto."""

    url: str
    cluster: str
    task_definition: str
    family: str
    subnet: str
    security_group: str


@contextlib.contextmanager
def _fake_aws_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        apply_fake_aws_environment(monkeypatch)
        yield


def boto3_client(service_name: str, url: str, **credentials: str) -> Any:
    """A boto3 client for the moto server, with fake credentials by default."""
    return boto3.client(
        service_name,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=credentials.get("aws_access_key_id", ACCESS_KEY_ID),
        aws_secret_access_key=credentials.get("aws_secret_access_key", SECRET_ACCESS_KEY),
        aws_session_token=credentials.get("aws_session_token"),
    )


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """The URL of a moto server on 127.0.0.1, started once per test session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto_ecs(moto_url: str) -> MotoEcs:
    """A cluster, VPC, subnet, security group and task definition in moto.

    Each test module gets its own cluster, so tasks of one module never show
    up in another module's listings.
    """
    with _fake_aws_environment():
        ec2 = boto3_client("ec2", moto_url)
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto 5.2.5 fails RunTask with HTTP 500 for an awsvpc task in a VPC
        # without DNS hostnames: its network interface has no private DNS name.
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group_id = ec2.create_security_group(GroupName=f"workers-{vpc_id}", Description="workers", VpcId=vpc_id)[
            "GroupId"
        ]

        ecs = boto3_client("ecs", moto_url)
        cluster = f"workers-{vpc_id}"
        ecs.create_cluster(clusterName=cluster)
        family = f"worker-{vpc_id}"
        definition = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "worker", "image": "worker:latest", "memory": 512, "essential": True}],
        )["taskDefinition"]
    return MotoEcs(
        url=moto_url,
        cluster=cluster,
        task_definition=definition["taskDefinitionArn"],
        family=family,
        subnet=subnet_id,
        security_group=group_id,
    )


def moto_provisioner(moto_ecs: MotoEcs, **options: Any) -> EcsProvisioner:
    """An EcsProvisioner for the moto cluster, with fake credentials by default."""
    settings: dict[str, Any] = {
        "region": REGION,
        "endpoint_url": moto_ecs.url,
        "credentials": FAKE_CREDENTIALS,
        "session": SHARED_SESSION,
        "subnets": [moto_ecs.subnet],
        "security_groups": [moto_ecs.security_group],
        "container_name": "worker",
    }
    settings.update(options)
    return EcsProvisioner(moto_ecs.cluster, moto_ecs.task_definition, **settings)


def set_task_transition(moto_url: str, transition: Mapping[str, Any]) -> None:
    """Set how moto advances ``lastStatus`` of ECS tasks.

    ``{"progression": "manual", "times": N}`` advances a task one state every
    N DescribeTasks calls that include it. moto's default is N=1.
    """
    response = httpx.post(
        f"{moto_url}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": dict(transition)},
    )
    response.raise_for_status()


@contextlib.contextmanager
def frozen_task_states(moto_url: str) -> Iterator[None]:
    """Keep moto's tasks in their current state however often they are described."""
    set_task_transition(moto_url, {"progression": "manual", "times": 10**9})
    try:
        yield
    finally:
        set_task_transition(moto_url, {"progression": "manual", "times": 1})
