"""EcsProvisioner against httpx fakes shaped like ECS responses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ecs_support import (
    FAKE_CREDENTIALS,
    SHARED_SESSION,
    FakeAws,
    RecordedRequest,
    aws_error,
    aws_ok,
    fake_aws_env,  # noqa: F401  (fixture)
    fake_provisioner,
    task_arn,
)
from structlog.testing import capture_logs

from fleetactor import Job, LaunchRejected
from fleetactor.ecs import AwsServiceError, EcsProvisioner, InvalidJobOverridesError, RetryPolicy

pytestmark = pytest.mark.usefixtures("fake_aws_env")


def run_task_ok(task_id: str = "task-1") -> httpx.Response:
    return aws_ok({"tasks": [{"taskArn": task_arn(task_id), "lastStatus": "PROVISIONING"}], "failures": []})


def run_task_failure(reason: str, detail: str | None = None) -> httpx.Response:
    failure = {"arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/workers/ci-1", "reason": reason}
    if detail is not None:
        failure["detail"] = detail
    return aws_ok({"tasks": [], "failures": [failure]})


class TestLaunch:
    async def test_run_task_request(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", run_task_ok("abc"))
        job = Job("file-17", overrides={"command": ["convert", "file-17"], "environment": {"MODE": "fast"}})

        async with fake_provisioner(fake, tags={"team": "data"}) as provisioner:
            task_id = await provisioner.launch(job, client_token="launch-0001")

        assert task_id == task_arn("abc")
        assert fake.bodies("RunTask") == [
            {
                "cluster": "workers",
                "taskDefinition": "worker:3",
                "count": 1,
                "startedBy": "fleet-test",
                "clientToken": "launch-0001",
                "launchType": "FARGATE",
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": ["subnet-1"],
                        "securityGroups": ["sg-1"],
                        "assignPublicIp": "DISABLED",
                    }
                },
                "tags": [{"key": "team", "value": "data"}],
                "overrides": {
                    "containerOverrides": [
                        {
                            "name": "worker",
                            "command": ["convert", "file-17"],
                            "environment": [{"name": "MODE", "value": "fast"}],
                        }
                    ]
                },
            }
        ]

    async def test_capacity_provider_strategy(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", run_task_ok())
        strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]

        async with fake_provisioner(fake, capacity_provider_strategy=strategy, platform_version="1.4.0") as provisioner:
            await provisioner.launch(Job("a"), client_token="t")

        body = fake.bodies("RunTask")[0]
        assert body["capacityProviderStrategy"] == strategy
        assert "launchType" not in body
        assert body["platformVersion"] == "1.4.0"

    async def test_no_overrides_without_command(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", run_task_ok())

        async with fake_provisioner(fake, container_name=None, subnets=(), security_groups=()) as provisioner:
            await provisioner.launch(Job("a", overrides={"container": "worker"}), client_token="t")

        body = fake.bodies("RunTask")[0]
        assert "overrides" not in body
        assert "networkConfiguration" not in body

    async def test_job_container_wins(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", run_task_ok())
        job = Job("a", overrides={"container": "sidecar", "command": ["run"]})

        async with fake_provisioner(fake) as provisioner:
            await provisioner.launch(job, client_token="t")

        overrides = fake.bodies("RunTask")[0]["overrides"]["containerOverrides"]
        assert overrides == [{"name": "sidecar", "command": ["run"]}]

    async def test_overrides_without_container_name(self) -> None:
        fake = FakeAws()

        async with fake_provisioner(fake, container_name=None) as provisioner:
            with pytest.raises(InvalidJobOverridesError, match="container_name=") as caught:
                await provisioner.launch(Job("a", overrides={"command": ["run"]}), client_token="t")

        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value, LaunchRejected)
        assert caught.value.retryable is False
        assert "overrides['container']" in caught.value.reason
        assert fake.requests == []

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"command": "run everything"}, "must be a list of strings"),
            ({"command": ["run", 3]}, "must be a list of strings"),
            ({"environment": {"A": 1}}, "must map strings to strings"),
            ({"environment": [("A", "1")]}, "must map strings to strings"),
        ],
    )
    async def test_invalid_overrides(self, overrides: dict[str, Any], message: str) -> None:
        fake = FakeAws()

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(InvalidJobOverridesError, match=message):
                await provisioner.launch(Job("a", overrides=overrides), client_token="t")

        assert fake.requests == []

    @pytest.mark.parametrize("client_token", ["", "x" * 65])
    async def test_invalid_client_token(self, client_token: str) -> None:
        fake = FakeAws()

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(ValueError, match="client_token must be 1 to 64 characters"):
                await provisioner.launch(Job("a"), client_token=client_token)

        assert fake.requests == []

    @pytest.mark.parametrize(
        ("reason", "retryable"),
        [
            ("Capacity is unavailable at this time. Please try again later or in a different availability zone", True),
            ("RESOURCE:MEMORY", True),
            ("RESOURCE:ENI", True),
            ("AGENT", True),
            ("Rate exceeded", True),
            ("You've reached the limit on the number of tasks you can run concurrently", True),
            ("MISSING", False),
            ("ATTRIBUTE", False),
            ("Invalid configuration: task definition is not compatible with FARGATE", False),
        ],
    )
    async def test_partial_failure(self, reason: str, retryable: bool) -> None:
        fake = FakeAws()
        fake.queue("RunTask", run_task_failure(reason))

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(LaunchRejected) as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert caught.value.reason == f"RunTask failure: {reason}"
        assert caught.value.retryable is retryable
        assert len(fake.requests) == 1

    async def test_failure_detail_kept(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", run_task_failure("RESOURCE:CPU", detail="no instance has 4096 CPU units free"))

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(LaunchRejected) as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert caught.value.reason == "RunTask failure: RESOURCE:CPU (no instance has 4096 CPU units free)"

    async def test_throttled_then_success(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("RunTask", aws_error(400, "ThrottlingException", "Rate exceeded"), run_task_ok("t2"))

        async with fake_provisioner(fake) as provisioner:
            task_id = await provisioner.launch(Job("a"), client_token="launch-7")

        assert task_id == task_arn("t2")
        assert [body["clientToken"] for body in fake.bodies("RunTask")] == ["launch-7", "launch-7"]

    async def test_server_error_retry_same_token(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("RunTask", aws_error(500, "ServerException", "Service unavailable"), run_task_ok("t3"))

        async with fake_provisioner(fake) as provisioner:
            task_id = await provisioner.launch(Job("a"), client_token="launch-8")

        bodies = fake.bodies("RunTask")
        assert task_id == task_arn("t3")
        assert len(bodies) == 2
        assert bodies[0] == bodies[1]
        assert bodies[1]["clientToken"] == "launch-8"

    async def test_server_errors_stay_ambiguous(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.on("RunTask", lambda request: aws_error(500, "ServerException", "internal error"))

        async with fake_provisioner(fake, retry=RetryPolicy(max_attempts=3)) as provisioner:
            with pytest.raises(AwsServiceError) as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert not isinstance(caught.value, LaunchRejected)
        assert caught.value.code == "ServerException"
        assert len(fake.requests) == 3

    @pytest.mark.parametrize(
        "transport_error",
        [httpx.ReadTimeout("timed out"), httpx.ReadError("connection reset by peer")],
    )
    async def test_lost_response_stays_ambiguous(self, transport_error: Exception, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("RunTask", *[transport_error] * 2)

        async with fake_provisioner(fake, retry=RetryPolicy(max_attempts=2)) as provisioner:
            with pytest.raises(type(transport_error)):
                await provisioner.launch(Job("a"), client_token="t")

        assert len(fake.requests) == 2

    async def test_throttling_exhausted_is_retryable(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.on("RunTask", lambda request: aws_error(400, "ThrottlingException", "Rate exceeded"))

        async with fake_provisioner(fake, retry=RetryPolicy(max_attempts=2)) as provisioner:
            with pytest.raises(LaunchRejected) as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert caught.value.retryable is True
        assert caught.value.reason == "ThrottlingException: Rate exceeded"

    @pytest.mark.parametrize(
        "first_error",
        [aws_error(500, "ServerException", "internal error"), httpx.ReadError("connection reset by peer")],
    )
    async def test_throttled_after_unknown_outcome_ambiguous(self, first_error: Any, autojump_clock: Any) -> None:
        # The first attempt may have started the task, so a later definite
        # error must not free the slot.
        fake = FakeAws()
        fake.queue("RunTask", first_error, *[aws_error(400, "ThrottlingException", "Rate exceeded")] * 3)

        async with fake_provisioner(fake, retry=RetryPolicy(max_attempts=4)) as provisioner:
            with pytest.raises(AwsServiceError) as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert not isinstance(caught.value, LaunchRejected)
        assert caught.value.code == "ThrottlingException"
        assert caught.value.after_unknown_outcome is True
        assert len(fake.requests) == 4

    async def test_conflict_token_reused(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue(
            "RunTask",
            aws_error(400, "ConflictException", "The request uses the same client token as a previous request"),
        )

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(LaunchRejected, match="client token 'launch-9' was reused") as caught:
                await provisioner.launch(Job("a"), client_token="launch-9")

        assert caught.value.retryable is False
        assert "different RunTask parameters" in caught.value.reason
        assert "ConflictException" in caught.value.reason
        assert len(fake.requests) == 1

    @pytest.mark.parametrize(
        ("code", "message"),
        [
            ("InvalidParameterException", "Task definition does not support launch_type FARGATE."),
            ("ClusterNotFoundException", "Cluster not found."),
            ("AccessDeniedException", "User is not authorized to perform: ecs:RunTask"),
            ("PlatformUnknownException", "The specified platform version does not exist."),
        ],
    )
    async def test_client_error_rejected(self, code: str, message: str, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("RunTask", aws_error(400, code, message))

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(LaunchRejected) as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert caught.value.retryable is False
        assert caught.value.reason == f"{code}: {message}"
        assert len(fake.requests) == 1

    async def test_capacity_client_error_retryable(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", aws_error(400, "ClientException", "Capacity is unavailable at this time."))

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(LaunchRejected) as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert caught.value.retryable is True

    async def test_empty_response_stays_ambiguous(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", aws_ok({"tasks": [], "failures": []}))

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(RuntimeError, match="neither a task nor a failure") as caught:
                await provisioner.launch(Job("a"), client_token="t")

        assert not isinstance(caught.value, LaunchRejected)


def list_tasks_pages(pages: list[list[str]]) -> Any:
    """A ListTasks responder that serves ``pages`` chained by nextToken."""

    def respond(request: RecordedRequest) -> httpx.Response:
        index = int(request.body.get("nextToken", "page-0").removeprefix("page-"))
        body: dict[str, Any] = {"taskArns": pages[index]}
        if index + 1 < len(pages):
            body["nextToken"] = f"page-{index + 1}"
        return aws_ok(body)

    return respond


class TestListRunning:
    async def test_pagination_three_pages(self) -> None:
        pages = [
            [task_arn(f"a{number}") for number in range(100)],
            [task_arn(f"b{number}") for number in range(100)],
            [task_arn(f"c{number}") for number in range(17)],
        ]
        fake = FakeAws()
        fake.on("ListTasks", list_tasks_pages(pages))

        async with fake_provisioner(fake) as provisioner:
            running = await provisioner.list_running()

        assert list(running) == pages[0] + pages[1] + pages[2]
        bodies = fake.bodies("ListTasks")
        assert [body.get("nextToken") for body in bodies] == [None, "page-1", "page-2"]
        for body in bodies:
            assert body["cluster"] == "workers"
            assert body["desiredStatus"] == "RUNNING"
            assert body["maxResults"] == 100
            assert body["startedBy"] == "fleet-test"
            assert "family" not in body

    async def test_family_filter(self) -> None:
        fake = FakeAws()
        fake.on("ListTasks", list_tasks_pages([[task_arn("x")]]))
        definition = "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:3"
        provisioner = EcsProvisioner(
            "workers",
            definition,
            region="us-east-1",
            session=SHARED_SESSION,
            credentials=FAKE_CREDENTIALS,
            transport=fake.transport(),
            list_filter="family",
        )

        async with provisioner:
            running = await provisioner.list_running()

        body = fake.bodies("ListTasks")[0]
        assert list(running) == [task_arn("x")]
        assert body["family"] == "worker"
        assert "startedBy" not in body

    async def test_duplicates_across_pages_dropped(self) -> None:
        fake = FakeAws()
        fake.on("ListTasks", list_tasks_pages([[task_arn("a"), task_arn("b")], [task_arn("b"), task_arn("c")]]))

        async with fake_provisioner(fake) as provisioner:
            running = await provisioner.list_running()

        assert list(running) == [task_arn("a"), task_arn("b"), task_arn("c")]

    async def test_list_error_raises(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.on("ListTasks", lambda request: aws_error(400, "ClusterNotFoundException", "Cluster not found."))

        async with fake_provisioner(fake) as provisioner:
            with pytest.raises(AwsServiceError, match="ClusterNotFoundException"):
                await provisioner.list_running()


def describe_tasks_responder(last_statuses: dict[str, str], failures: dict[str, str] | None = None) -> Any:
    """A DescribeTasks responder that reports the tasks in ``last_statuses``."""
    failures = failures or {}

    def respond(request: RecordedRequest) -> httpx.Response:
        tasks = []
        reported_failures = []
        for reference in request.body["tasks"]:
            task_id = reference.rsplit("/", 1)[-1]
            if task_id in last_statuses:
                tasks.append({"taskArn": task_arn(task_id), "lastStatus": last_statuses[task_id]})
            elif task_id in failures:
                reported_failures.append({"arn": task_arn(task_id), "reason": failures[task_id]})
        return aws_ok({"tasks": tasks, "failures": reported_failures})

    return respond


class TestDescribe:
    async def test_batches_of_100(self) -> None:
        task_ids = [task_arn(f"t{number}") for number in range(250)]
        fake = FakeAws()
        fake.on("DescribeTasks", describe_tasks_responder({f"t{number}": "RUNNING" for number in range(250)}))

        async with fake_provisioner(fake) as provisioner:
            statuses = await provisioner.describe(task_ids)

        batches = [body["tasks"] for body in fake.bodies("DescribeTasks")]
        assert [len(batch) for batch in batches] == [100, 100, 50]
        assert batches[0] + batches[1] + batches[2] == task_ids
        assert all(body["cluster"] == "workers" for body in fake.bodies("DescribeTasks"))
        assert len(statuses) == 250
        assert set(statuses.values()) == {"RUNNING"}

    @pytest.mark.parametrize(
        ("last_status", "expected"),
        [
            ("PROVISIONING", "PENDING"),
            ("PENDING", "PENDING"),
            ("ACTIVATING", "PENDING"),
            ("RUNNING", "RUNNING"),
            ("DEACTIVATING", "RUNNING"),
            ("STOPPING", "RUNNING"),
            ("DEPROVISIONING", "RUNNING"),
            ("STOPPED", "STOPPED"),
            ("HIBERNATING", "PENDING"),
        ],
    )
    async def test_status_mapping(self, last_status: str, expected: str) -> None:
        fake = FakeAws()
        fake.on("DescribeTasks", describe_tasks_responder({"t1": last_status}))

        async with fake_provisioner(fake) as provisioner:
            statuses = await provisioner.describe([task_arn("t1")])

        assert statuses == {task_arn("t1"): expected}
        assert type(statuses[task_arn("t1")]) is str

    async def test_missing_and_absent(self) -> None:
        fake = FakeAws()
        fake.on("DescribeTasks", describe_tasks_responder({"live": "RUNNING"}, failures={"gone": "MISSING"}))

        async with fake_provisioner(fake) as provisioner:
            statuses = await provisioner.describe([task_arn("live"), task_arn("gone"), task_arn("never")])

        assert statuses == {task_arn("live"): "RUNNING", task_arn("gone"): "MISSING", task_arn("never"): "MISSING"}

    async def test_other_failure_keeps_capacity(self) -> None:
        fake = FakeAws()
        fake.on("DescribeTasks", describe_tasks_responder({}, failures={"odd": "INTERNAL_ERROR"}))

        with capture_logs() as logs:
            async with fake_provisioner(fake) as provisioner:
                statuses = await provisioner.describe([task_arn("odd")])

        assert statuses == {task_arn("odd"): "PENDING"}
        assert logs == [
            {"event": "ecs.describe.failure", "log_level": "warning", "task_id": "odd", "reason": "INTERNAL_ERROR"}
        ]

    async def test_bare_ids_matched(self) -> None:
        fake = FakeAws()
        fake.on("DescribeTasks", describe_tasks_responder({"t1": "STOPPED", "t2": "RUNNING"}))

        async with fake_provisioner(fake) as provisioner:
            statuses = await provisioner.describe(["t1", task_arn("t2"), "t1"])

        assert statuses == {"t1": "STOPPED", task_arn("t2"): "RUNNING"}
        assert fake.bodies("DescribeTasks")[0]["tasks"] == ["t1", task_arn("t2")]

    async def test_empty_sends_nothing(self) -> None:
        fake = FakeAws()

        async with fake_provisioner(fake) as provisioner:
            statuses = await provisioner.describe([])

        assert statuses == {}
        assert fake.requests == []


class TestStop:
    async def test_stop_task_request(self) -> None:
        fake = FakeAws()
        fake.queue("StopTask", aws_ok({"task": {"taskArn": task_arn("t1"), "lastStatus": "RUNNING"}}))

        async with fake_provisioner(fake) as provisioner:
            status = await provisioner.stop(task_arn("t1"), "x" * 300)

        assert status == "RUNNING"
        body = fake.bodies("StopTask")[0]
        assert body["cluster"] == "workers"
        assert body["task"] == task_arn("t1")
        assert body["reason"] == "x" * 255


class TestConstruction:
    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"launch_type": "EC2", "capacity_provider_strategy": [{"capacityProvider": "FARGATE"}]}, "not both"),
            ({"started_by": "has spaces"}, "started_by must be"),
            ({"started_by": "x" * 129}, "started_by must be"),
            ({"list_filter": "tags"}, "list_filter must be"),
            ({"subnets": (), "security_groups": ["sg-1"]}, "security_groups need subnets"),
            ({"subnets": "subnet-1"}, "subnets must be a list of id strings"),
            ({"security_groups": ["sg-1", ""]}, "security_groups must be a list of id strings"),
        ],
    )
    def test_invalid_options(self, options: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            fake_provisioner(FakeAws(), **options)

    @pytest.mark.parametrize("argument", ["cluster", "task_definition"])
    def test_empty_names(self, argument: str) -> None:
        names = {"cluster": "workers", "task_definition": "worker:3", argument: ""}

        with pytest.raises(ValueError, match=f"{argument} must be a non-empty string"):
            EcsProvisioner(names["cluster"], names["task_definition"], region="us-east-1")

    async def test_launch_type_ec2(self) -> None:
        fake = FakeAws()
        fake.queue("RunTask", run_task_ok())

        async with fake_provisioner(fake, launch_type="EC2") as provisioner:
            await provisioner.launch(Job("a"), client_token="t")

        assert fake.bodies("RunTask")[0]["launchType"] == "EC2"
