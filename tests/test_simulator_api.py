"""ECS API surface of the simulator: validation, idempotency, pagination, protocol."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from structlog.testing import capture_logs
from test_simulator import EPOCH, RUN, SUBNETS, TARGET_PREFIX, EcsCaller, make_ecs  # noqa: F401

from fleetactor.simulator import GROUND_TRUTH_PATH, EcsSimulator, SimulatorConfig, SimulatorTransport

SECRET_AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=AKIDSECRETVALUE/20240101/us-east-1/ecs/aws4_request, Signature=ff"


# Clusters.


async def test_create_cluster_idempotent(make_ecs):
    _, ecs = make_ecs()

    first = (await ecs.call("CreateCluster", clusterName="fleet"))["cluster"]
    second = (await ecs.call("CreateCluster", clusterName="fleet"))["cluster"]

    assert first == second
    assert first["clusterArn"] == "arn:aws:ecs:us-east-1:123456789012:cluster/fleet"
    assert first["status"] == "ACTIVE"


async def test_create_cluster_invalid_name(make_ecs):
    _, ecs = make_ecs()

    status, code, message = await ecs.error("CreateCluster", clusterName="bad name")

    assert (status, code) == (400, "InvalidParameterException")
    assert "'bad name'" in message


async def test_describe_clusters_missing(make_ecs):
    _, ecs = make_ecs()
    await ecs.call("CreateCluster", clusterName="fleet")

    response = await ecs.call(
        "DescribeClusters", clusters=["fleet", "arn:aws:ecs:us-east-1:123456789012:cluster/default", "ghost"]
    )

    assert [cluster["clusterName"] for cluster in response["clusters"]] == ["fleet", "default"]
    assert response["failures"] == [{"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/ghost", "reason": "MISSING"}]


async def test_list_clusters_pages(make_ecs):
    _, ecs = make_ecs()
    for index in range(4):
        await ecs.call("CreateCluster", clusterName=f"fleet-{index}")

    first = await ecs.call("ListClusters", maxResults=3)
    second = await ecs.call("ListClusters", maxResults=3, nextToken=first["nextToken"])

    assert len(first["clusterArns"]) == 3
    assert first["clusterArns"][0].endswith(":cluster/default")
    assert [arn.rsplit("/", 1)[1] for arn in second["clusterArns"]] == ["fleet-2", "fleet-3"]
    assert "nextToken" not in second


# Task definitions.


async def test_register_revisions(make_ecs):
    _, ecs = make_ecs()
    definition = {
        "family": "batch",
        "containerDefinitions": [{"name": "main", "image": "busybox"}],
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
    }

    first = (await ecs.call("RegisterTaskDefinition", **definition))["taskDefinition"]
    second = (await ecs.call("RegisterTaskDefinition", **definition))["taskDefinition"]

    assert first["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:123456789012:task-definition/batch:1"
    assert second["revision"] == 2
    assert first["containerDefinitions"][0]["essential"] is True
    assert first["registeredAt"] == pytest.approx(EPOCH)
    for reference in ("batch", "batch:1", first["taskDefinitionArn"]):
        task = (await ecs.run(taskDefinition=reference))["tasks"][0]
        expected = second["taskDefinitionArn"] if reference == "batch" else first["taskDefinitionArn"]
        assert task["taskDefinitionArn"] == expected, reference


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"containerDefinitions": []}, "at least one container"),
        ({"containerDefinitions": [{"name": "main"}]}, "needs an image"),
        ({"networkMode": "bridge"}, "networkMode 'awsvpc'"),
        ({"cpu": None}, "cpu and memory"),
    ],
)
async def test_register_rejects_invalid(make_ecs, changes, fragment):
    _, ecs = make_ecs()
    definition = {
        "family": "batch",
        "containerDefinitions": [{"name": "main", "image": "busybox"}],
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
    }
    definition.update(changes)
    definition = {key: value for key, value in definition.items() if value is not None}

    status, code, message = await ecs.error("RegisterTaskDefinition", **definition)

    assert (status, code) == (400, "ClientException")
    assert fragment in message


# RunTask validation.


@pytest.mark.parametrize(
    ("changes", "code", "fragment"),
    [
        ({"cluster": "ghost"}, "ClusterNotFoundException", "Cluster not found."),
        ({"taskDefinition": "ghost"}, "ClientException", "TaskDefinition not found."),
        ({"taskDefinition": "worker:2"}, "ClientException", "TaskDefinition not found."),
        ({"count": 0}, "InvalidParameterException", "between 1 and 10, got 0"),
        ({"count": 11}, "InvalidParameterException", "between 1 and 10, got 11"),
        ({"count": "3"}, "InvalidParameterException", "count must be an integer"),
        ({"count": True}, "InvalidParameterException", "count must be an integer"),
        ({"taskDefinition": 7}, "InvalidParameterException", "taskDefinition must be a string"),
        ({"startedBy": "no spaces allowed"}, "InvalidParameterException", "startedBy"),
        ({"networkConfiguration": None}, "InvalidParameterException", "at least one subnet"),
        ({"launchType": "EC2"}, "InvalidParameterException", "FARGATE tasks only"),
        ({"launchType": "SPACE"}, "InvalidParameterException", "launchType must be one of"),
        (
            {"overrides": {"containerOverrides": [{"name": "sidecar", "command": ["true"]}]}},
            "InvalidParameterException",
            "'sidecar' is not a container",
        ),
    ],
)
async def test_run_task_rejects_invalid(make_ecs, changes, code, fragment):
    simulator, ecs = make_ecs()
    request = {key: value for key, value in {**RUN, **changes}.items() if value is not None}

    status, error_code, message = await ecs.error("RunTask", **request)

    assert status == 400
    assert error_code == code
    assert fragment in message
    assert simulator.ground_truth().tasks_started == 0


async def test_run_task_missing_definition(make_ecs):
    _, ecs = make_ecs()

    status, code, message = await ecs.error("RunTask", cluster="default", networkConfiguration=SUBNETS)

    assert (status, code) == (400, "InvalidParameterException")
    assert "taskDefinition is missing" in message


async def test_run_task_response_shape(make_ecs):
    _, ecs = make_ecs()

    response = await ecs.run(
        startedBy="fleet-1",
        overrides={"containerOverrides": [{"name": "worker", "command": ["run", "job-7"]}]},
        tags=[{"key": "team", "value": "data"}],
    )

    task = response["tasks"][0]
    assert response["failures"] == []
    assert task["startedBy"] == "fleet-1"
    assert task["group"] == "family:worker"
    assert task["launchType"] == "FARGATE"
    assert task["clusterArn"] == "arn:aws:ecs:us-east-1:123456789012:cluster/default"
    assert task["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1"
    assert task["overrides"]["containerOverrides"] == [{"name": "worker", "command": ["run", "job-7"]}]
    assert task["containers"][0]["name"] == "worker"
    assert task["attachments"][0]["details"] == [{"name": "subnetId", "value": "subnet-1"}]
    assert task["createdAt"] == pytest.approx(EPOCH)
    assert isinstance(task["version"], int)


# clientToken idempotency.


async def test_client_token_replays_tasks(make_ecs):
    simulator, ecs = make_ecs()

    first = await ecs.run(clientToken="launch-1", count=2)
    second = await ecs.run(clientToken="launch-1", count=2)

    assert [task["taskArn"] for task in second["tasks"]] == [task["taskArn"] for task in first["tasks"]]
    truth = simulator.ground_truth()
    assert truth.tasks_started == 2
    assert truth.duplicate_tasks == 0


async def test_client_token_conflict(make_ecs):
    simulator, ecs = make_ecs()
    first = await ecs.run(clientToken="launch-1")

    response = await ecs.send("RunTask", {**RUN, "clientToken": "launch-1", "startedBy": "other"})

    assert response.status_code == 400
    body = response.json()
    assert body["__type"] == "ConflictException"
    assert body["resourceIds"] == [first["tasks"][0]["taskArn"]]
    assert simulator.ground_truth().tasks_started == 1


@pytest.mark.parametrize("token", ["x" * 65, "has space", "tab\there", ""])
async def test_client_token_rejects_invalid(make_ecs, token):
    _, ecs = make_ecs()

    status, code, _ = await ecs.error("RunTask", **RUN, clientToken=token)

    assert (status, code) == (400, "InvalidParameterException")


async def test_client_token_max_length(make_ecs):
    _, ecs = make_ecs()

    response = await ecs.run(clientToken="x" * 64)

    assert len(response["tasks"]) == 1


async def test_client_token_failed_launch_unrecorded(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(launch_outage=(0.0, 10.0))
    failed = await ecs.run(clientToken="launch-1")
    await trio.sleep(10.0)

    response = await ecs.run(clientToken="launch-1")

    assert failed["tasks"] == []
    assert len(response["tasks"]) == 1
    assert simulator.ground_truth().duplicate_tasks == 0


async def test_idempotency_off_duplicates(make_ecs):
    simulator, ecs = make_ecs(idempotency=False)

    await ecs.run(clientToken="launch-1")
    await ecs.run(clientToken="launch-1")
    await ecs.run(clientToken="launch-1", startedBy="other")

    truth = simulator.ground_truth()
    assert truth.tasks_started == 3
    assert truth.duplicate_tasks == 2
    assert dict(truth.duplicate_tasks_by_token) == {"launch-1": 2}


# ListTasks.


async def test_list_tasks_pages(make_ecs):
    _, ecs = make_ecs()
    arns = []
    for _ in range(25):
        arns += [task["taskArn"] for task in (await ecs.run(count=10))["tasks"]]

    pages = []
    response = await ecs.call("ListTasks", cluster="default")
    pages.append(response["taskArns"])
    while "nextToken" in response:
        response = await ecs.call("ListTasks", cluster="default", nextToken=response["nextToken"])
        pages.append(response["taskArns"])

    assert [len(page) for page in pages] == [100, 100, 50]
    assert [arn for page in pages for arn in page] == arns


async def test_list_tasks_max_results(make_ecs):
    _, ecs = make_ecs()
    await ecs.run(count=5)

    response = await ecs.call("ListTasks", cluster="default", maxResults=3)

    assert len(response["taskArns"]) == 3
    assert "nextToken" in response


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [
        ({"maxResults": 0}, "between 1 and 100, got 0"),
        ({"maxResults": 101}, "between 1 and 100, got 101"),
        ({"maxResults": "10"}, "maxResults must be an integer"),
        ({"nextToken": "not-a-token"}, "nextToken is not valid"),
        ({"desiredStatus": "DONE"}, "desiredStatus must be one of"),
    ],
)
async def test_list_tasks_rejects_invalid(make_ecs, request_body, fragment):
    _, ecs = make_ecs()

    status, code, message = await ecs.error("ListTasks", cluster="default", **request_body)

    assert (status, code) == (400, "InvalidParameterException")
    assert fragment in message


async def test_list_tasks_filters(make_ecs):
    _, ecs = make_ecs()
    await ecs.call(
        "RegisterTaskDefinition",
        family="other",
        containerDefinitions=[{"name": "main", "image": "busybox"}],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    mine = (await ecs.run(startedBy="fleet-a"))["tasks"][0]["taskArn"]
    theirs = (await ecs.run(taskDefinition="other"))["tasks"][0]["taskArn"]

    assert await ecs.listed(startedBy="fleet-a") == [mine]
    assert await ecs.listed(family="other") == [theirs]
    assert await ecs.listed(desiredStatus="PENDING") == []
    assert await ecs.listed(launchType="FARGATE") == [mine, theirs]
    assert await ecs.listed(launchType="EC2") == []


async def test_list_tasks_unknown_cluster(make_ecs):
    _, ecs = make_ecs()

    status, code, message = await ecs.error("ListTasks", cluster="ghost")

    assert (status, code, message) == (400, "ClusterNotFoundException", "Cluster not found.")


async def test_list_tasks_unknown_service(make_ecs):
    _, ecs = make_ecs()

    status, code, _ = await ecs.error("ListTasks", cluster="default", serviceName="web")

    assert (status, code) == (400, "ServiceNotFoundException")


# DescribeTasks and StopTask.


async def test_describe_tasks_missing(make_ecs):
    _, ecs = make_ecs()
    arn = (await ecs.run())["tasks"][0]["taskArn"]
    task_id = arn.rsplit("/", 1)[1]
    await ecs.call("CreateCluster", clusterName="other")

    response = await ecs.call("DescribeTasks", cluster="default", tasks=[task_id, "f" * 32, arn])
    elsewhere = await ecs.call("DescribeTasks", cluster="other", tasks=[arn])

    assert [task["taskArn"] for task in response["tasks"]] == [arn, arn]
    missing_arn = "arn:aws:ecs:us-east-1:123456789012:task/default/" + "f" * 32
    assert response["failures"] == [{"arn": missing_arn, "reason": "MISSING"}]
    assert elsewhere["failures"] == [{"arn": arn, "reason": "MISSING"}]


@pytest.mark.parametrize(
    ("tasks", "fragment"),
    [([], "tasks is missing"), (["a"] * 101, "at most 100"), ("abc", "list of strings")],
)
async def test_describe_tasks_rejects_invalid(make_ecs, tasks, fragment):
    _, ecs = make_ecs()

    status, code, message = await ecs.error("DescribeTasks", cluster="default", tasks=tasks)

    assert (status, code) == (400, "InvalidParameterException")
    assert fragment in message


async def test_describe_tasks_tags(make_ecs):
    _, ecs = make_ecs()
    arn = (await ecs.run(tags=[{"key": "team", "value": "data"}]))["tasks"][0]["taskArn"]

    plain = await ecs.call("DescribeTasks", cluster="default", tasks=[arn])
    tagged = await ecs.call("DescribeTasks", cluster="default", tasks=[arn], include=["TAGS"])

    assert "tags" not in plain["tasks"][0]
    assert tagged["tasks"][0]["tags"] == [{"key": "team", "value": "data"}]


async def test_stop_task_unknown(make_ecs):
    _, ecs = make_ecs()

    status, code, message = await ecs.error("StopTask", cluster="default", task="f" * 32)

    assert (status, code, message) == (400, "InvalidParameterException", "The referenced task was not found.")


async def test_stop_task_default_reason(make_ecs):
    _, ecs = make_ecs(stop_time=0.0)
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    stopped = (await ecs.call("StopTask", cluster="default", task=arn))["task"]

    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stoppedReason"] == "Task stopped by user"
    assert stopped["containers"][0]["exitCode"] == 143


# HTTP protocol.


async def test_protocol_missing_target(make_ecs):
    _, ecs = make_ecs()

    response = await ecs.client.post("/", content=b"{}")

    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


async def test_protocol_unimplemented_operation(make_ecs):
    _, ecs = make_ecs()

    status, code, message = await ecs.error("CreateService")

    assert (status, code) == (400, "UnknownOperationException")
    assert "'CreateService'" in message


@pytest.mark.parametrize(("body", "fragment"), [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object")])
async def test_protocol_rejects_bad_body(make_ecs, body, fragment):
    _, ecs = make_ecs()

    response = await ecs.client.post("/", content=body, headers={"X-Amz-Target": TARGET_PREFIX + "ListTasks"})

    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"
    assert fragment in response.json()["message"]


async def test_protocol_rejects_large_body(make_ecs):
    _, ecs = make_ecs()
    body = json.dumps({"cluster": "x" * (2 * 1024 * 1024)})

    response = await ecs.client.post("/", content=body, headers={"X-Amz-Target": TARGET_PREFIX + "ListTasks"})

    assert response.status_code == 413


async def test_protocol_rejects_get(make_ecs):
    _, ecs = make_ecs()

    response = await ecs.client.get("/")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_protocol_headers(make_ecs):
    _, ecs = make_ecs()

    response = await ecs.send("ListTasks", {"cluster": "default"})

    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert len(response.headers["x-amzn-requestid"]) == 36


async def test_ground_truth_path(make_ecs, autojump_clock):
    simulator, ecs = make_ecs()
    await ecs.run()

    response = await ecs.client.get(GROUND_TRUTH_PATH)

    assert response.status_code == 200
    assert response.json() == simulator.ground_truth().as_dict()
    assert response.json()["tasks_started"] == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_ground_truth_read_only(make_ecs, method):
    _, ecs = make_ecs()

    response = await ecs.client.request(method, GROUND_TRUTH_PATH, content=b"{}")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


async def test_authorization_never_echoed(make_ecs):
    _, ecs = make_ecs(run_task_throttle_rate=0.5, seed=2)
    headers = {"X-Amz-Target": TARGET_PREFIX + "RunTask", "Authorization": SECRET_AUTHORIZATION}

    with capture_logs() as logs:
        responses = [await ecs.client.post("/", content=json.dumps(RUN), headers=headers) for _ in range(6)]
        responses.append(await ecs.client.post("/", content=b"{", headers=headers))

    assert {response.status_code for response in responses} == {200, 400}
    for response in responses:
        assert "AKIDSECRETVALUE" not in response.text
        assert all("AKIDSECRETVALUE" not in value for value in response.headers.values())
    assert "AKIDSECRETVALUE" not in repr(logs)


async def test_internal_error_logged(make_ecs):
    _, ecs = make_ecs(run_time_sampler=lambda generator: -1.0)
    headers = {"X-Amz-Target": TARGET_PREFIX + "RunTask", "Authorization": SECRET_AUTHORIZATION}

    with capture_logs() as logs:
        response = await ecs.client.post("/", content=json.dumps(RUN), headers=headers)

    assert response.status_code == 500
    assert response.json()["__type"] == "ServerException"
    assert [entry["event"] for entry in logs] == ["simulator.request_failed"]
    assert logs[0]["operation"] == "RunTask"
    assert "AKIDSECRETVALUE" not in repr(logs)


async def test_transport_any_base_url():
    simulator = EcsSimulator(SimulatorConfig(visibility_lag=0.0))
    transport = SimulatorTransport(simulator)

    async with httpx.AsyncClient(transport=transport, base_url="http://ecs.test:4566/prefix") as client:
        caller = EcsCaller(client)
        response = await caller.call("ListTasks")

    assert response == {"taskArns": []}
    assert simulator.ground_truth().calls["ListTasks"] == 1
