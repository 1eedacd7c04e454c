"""EcsProvisioner over the wire against a moto server on 127.0.0.1.

moto 5.2.5 ignores client tokens, never paginates ListTasks, and advances a task's
lastStatus on each DescribeTasks that includes it unless the tests freeze it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from ecs_support import (
    ACCESS_KEY_ID,
    FAKE_CREDENTIALS,
    REGION,
    SHARED_SESSION,
    MotoEcs,
    boto3_client,
    fake_aws_env,  # noqa: F401  (fixture)
    frozen_task_states,
    moto_ecs,  # noqa: F401  (fixture)
    moto_provisioner,
    moto_url,  # noqa: F401  (fixture)
)

from fleetactor import Job, LaunchRejected
from fleetactor.ecs import AwsServiceError, EcsProvisioner

pytestmark = pytest.mark.usefixtures("fake_aws_env")


class TestLifecycle:
    async def test_launch_list_describe_stop(self, moto_ecs: MotoEcs) -> None:
        job = Job("file-1", overrides={"command": ["convert", "file-1"], "environment": {"MODE": "fast"}})

        with frozen_task_states(moto_ecs.url):
            async with moto_provisioner(moto_ecs, started_by="lifecycle") as provisioner:
                task_id = await provisioner.launch(job, client_token="lifecycle-1")
                listed = await provisioner.list_running()
                before_stop = await provisioner.describe([task_id])
                await provisioner.stop(task_id, "work finished")
                after_stop = await provisioner.describe([task_id])
                listed_after_stop = await provisioner.list_running()
                statistics = provisioner.statistics()

        assert task_id.startswith(f"arn:aws:ecs:{REGION}:")
        assert list(listed) == [task_id]
        assert before_stop == {task_id: "RUNNING"}
        assert after_stop == {task_id: "STOPPED"}
        assert list(listed_after_stop) == []
        assert dict(statistics.requests) == {"RunTask": 1, "ListTasks": 2, "DescribeTasks": 2, "StopTask": 1}

    async def test_overrides_reach_task(self, moto_ecs: MotoEcs) -> None:
        job = Job("file-2", overrides={"command": ["convert", "file-2"], "environment": {"MODE": "slow"}})

        async with moto_provisioner(moto_ecs, started_by="overrides") as provisioner:
            task_id = await provisioner.launch(job, client_token="overrides-1")

        ecs = boto3_client("ecs", moto_ecs.url)
        task = ecs.describe_tasks(cluster=moto_ecs.cluster, tasks=[task_id])["tasks"][0]
        assert task["startedBy"] == "overrides"
        assert task["overrides"]["containerOverrides"] == [
            {"name": "worker", "command": ["convert", "file-2"], "environment": [{"name": "MODE", "value": "slow"}]}
        ]

    async def test_shutdown_holds_slot_until_stopped(self, moto_ecs: MotoEcs) -> None:
        # With moto's default transitions, each DescribeTasks moves a running
        # task one step: DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED.
        last_statuses: list[str] = []

        async def record_last_status(response: httpx.Response) -> None:
            await response.aread()
            if response.request.headers["X-Amz-Target"].endswith(".DescribeTasks"):
                last_statuses.append(response.json()["tasks"][0]["lastStatus"])

        async with httpx.AsyncClient(event_hooks={"response": [record_last_status]}) as http_client:
            async with moto_provisioner(moto_ecs, started_by="shutdown", http_client=http_client) as provisioner:
                task_id = await provisioner.launch(Job("file-3"), client_token="shutdown-1")
                statuses = [(await provisioner.describe([task_id]))[task_id] for _ in range(6)]

        assert len(last_statuses) == 6
        shutting_down = [
            status
            for last_status, status in zip(last_statuses, statuses)
            if last_status in ("DEACTIVATING", "STOPPING", "DEPROVISIONING")
        ]
        assert len(shutting_down) >= 2
        assert set(shutting_down) == {"RUNNING"}
        assert statuses[-1] == "STOPPED"
        assert statuses[: statuses.index("STOPPED")] == ["RUNNING"] * statuses.index("STOPPED")

    async def test_family_filter_lists_task(self, moto_ecs: MotoEcs) -> None:
        with frozen_task_states(moto_ecs.url):
            async with moto_provisioner(moto_ecs, started_by="family-a") as launcher:
                task_id = await launcher.launch(Job("file-4"), client_token="family-1")
            async with moto_provisioner(moto_ecs, started_by="family-b", list_filter="family") as lister:
                by_family = await lister.list_running()
            async with moto_provisioner(moto_ecs, started_by="family-b") as other_fleet:
                by_started_by = await other_fleet.list_running()

        assert task_id in by_family
        assert task_id not in by_started_by

    async def test_unknown_task_missing(self, moto_ecs: MotoEcs) -> None:
        unknown = f"arn:aws:ecs:{REGION}:123456789012:task/{moto_ecs.cluster}/00000000-0000-0000-0000-000000000000"

        async with moto_provisioner(moto_ecs) as provisioner:
            statuses = await provisioner.describe([unknown])

        assert statuses == {unknown: "MISSING"}

    async def test_unknown_cluster_rejected(self, moto_ecs: MotoEcs) -> None:
        provisioner = EcsProvisioner(
            "no-such-cluster",
            moto_ecs.task_definition,
            region=REGION,
            endpoint_url=moto_ecs.url,
            credentials=FAKE_CREDENTIALS,
            session=SHARED_SESSION,
            subnets=[moto_ecs.subnet],
            security_groups=[moto_ecs.security_group],
        )

        async with provisioner:
            with pytest.raises(LaunchRejected, match="ClusterNotFoundException") as caught:
                await provisioner.launch(Job("file-5"), client_token="unknown-cluster-1")
            statistics = provisioner.statistics()

        assert caught.value.retryable is False
        assert statistics.requests["RunTask"] == 1


# --- request authentication ---------------------------------------------------

_ALLOW_ALL_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
_TRUST_ACCOUNT_ROOT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@contextlib.contextmanager
def moto_authentication(moto_url: str) -> Iterator[None]:
    """Make moto check the signature and IAM permissions of every request."""
    response = httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"0")
    response.raise_for_status()
    try:
        yield
    finally:
        httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"inf").raise_for_status()


@pytest.fixture(scope="module")
def iam_credentials(moto_ecs: MotoEcs) -> dict[str, Credentials]:
    """A user's long-term keys and a role session's temporary keys in moto."""
    iam = boto3_client("iam", moto_ecs.url)
    iam.create_user(UserName="fleet-operator")
    iam.put_user_policy(UserName="fleet-operator", PolicyName="all", PolicyDocument=_ALLOW_ALL_POLICY)
    key = iam.create_access_key(UserName="fleet-operator")["AccessKey"]

    role = iam.create_role(RoleName="fleet-runner", AssumeRolePolicyDocument=_TRUST_ACCOUNT_ROOT)["Role"]
    iam.put_role_policy(RoleName="fleet-runner", PolicyName="all", PolicyDocument=_ALLOW_ALL_POLICY)
    sts = boto3_client("sts", moto_ecs.url)
    session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="fleet-test")["Credentials"]

    return {
        "user": Credentials(key["AccessKeyId"], key["SecretAccessKey"]),
        "role": Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]),
    }


class TestAuthentication:
    @pytest.mark.parametrize("identity", ["user", "role"])
    async def test_valid_signature_accepted(
        self, moto_ecs: MotoEcs, iam_credentials: dict[str, Credentials], identity: str
    ) -> None:
        credentials = iam_credentials[identity]

        with moto_authentication(moto_ecs.url), frozen_task_states(moto_ecs.url):
            async with moto_provisioner(moto_ecs, credentials=credentials, started_by=f"auth-{identity}") as provisioner:
                task_id = await provisioner.launch(Job("file-6"), client_token=f"auth-{identity}-1")
                listed = await provisioner.list_running()

        assert list(listed) == [task_id]

    async def test_wrong_secret_rejected(self, moto_ecs: MotoEcs, iam_credentials: dict[str, Credentials]) -> None:
        user = iam_credentials["user"]
        wrong = Credentials(user.access_key, user.secret_key + "x")

        with moto_authentication(moto_ecs.url):
            async with moto_provisioner(moto_ecs, credentials=wrong) as provisioner:
                with pytest.raises(AwsServiceError) as listing:
                    await provisioner.list_running()
                with pytest.raises(LaunchRejected) as launching:
                    await provisioner.launch(Job("file-7"), client_token="wrong-secret-1")
                statistics = provisioner.statistics()

        assert listing.value.code == "SignatureDoesNotMatch"
        assert listing.value.status_code == 403
        assert "signature we calculated does not match" in listing.value.message
        assert launching.value.retryable is False
        assert launching.value.reason.startswith("SignatureDoesNotMatch: ")
        assert dict(statistics.requests) == {"ListTasks": 1, "RunTask": 1}

    async def test_wrong_session_token_rejected(
        self, moto_ecs: MotoEcs, iam_credentials: dict[str, Credentials]
    ) -> None:
        role = iam_credentials["role"]
        wrong = Credentials(role.access_key, role.secret_key, role.token + "x")

        with moto_authentication(moto_ecs.url):
            async with moto_provisioner(moto_ecs, credentials=wrong) as provisioner:
                with pytest.raises(AwsServiceError) as caught:
                    await provisioner.list_running()

        assert caught.value.code == "InvalidClientTokenId"
        assert caught.value.status_code == 403

    async def test_unknown_access_key_rejected(self, moto_ecs: MotoEcs) -> None:
        assert ACCESS_KEY_ID.startswith("AKIA")

        with moto_authentication(moto_ecs.url):
            async with moto_provisioner(moto_ecs) as provisioner:
                with pytest.raises(AwsServiceError) as caught:
                    await provisioner.list_running()

        assert caught.value.code == "InvalidClientTokenId"
