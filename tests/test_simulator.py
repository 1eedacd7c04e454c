"""Behaviour knobs and ground truth of the ECS simulator, in virtual time."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
import trio

from fleetactor.simulator import (
    CAPACITY_UNAVAILABLE_REASON,
    AmbiguousResponse,
    EcsSimulator,
    RunTimeDistribution,
    SimulatorConfig,
    SimulatorTransport,
)

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
EPOCH = 1_700_000_000.0
SUBNETS = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
RUN = {"cluster": "default", "taskDefinition": "worker", "networkConfiguration": SUBNETS}

# Knobs that keep a test about one knob: instant boot, no lag, no rate limits.
QUIET = {
    "task_definition_families": ("worker",),
    "epoch": EPOCH,
    "visibility_lag": 0.0,
    "boot_time": 0.0,
    "run_time": math.inf,
    "stop_time": 0.0,
    "rate_limits": False,
}


class EcsCaller:
    """Sends ECS JSON requests through an httpx client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, operation: str, request: dict[str, Any]) -> httpx.Response:
        headers = {
            "X-Amz-Target": TARGET_PREFIX + operation,
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ecs/aws4_request, Signature=00",
        }
        return await self.client.post("/", content=json.dumps(request), headers=headers)

    async def call(self, operation: str, **request: Any) -> dict[str, Any]:
        response = await self.send(operation, request)
        assert response.status_code == 200, response.text
        return response.json()

    async def error(self, operation: str, **request: Any) -> tuple[int, str, str]:
        response = await self.send(operation, request)
        assert response.status_code != 200, response.text
        body = response.json()
        return response.status_code, body["__type"], body["message"]

    async def run(self, **request: Any) -> dict[str, Any]:
        return await self.call("RunTask", **{**RUN, **request})

    async def listed(self, **request: Any) -> list[str]:
        response = await self.call("ListTasks", **{"cluster": "default", **request})
        return response["taskArns"]

    async def describe(self, arn: str) -> dict[str, Any]:
        response = await self.call("DescribeTasks", cluster="default", tasks=[arn])
        assert response["failures"] == []
        return response["tasks"][0]


@pytest.fixture
async def make_ecs():
    """Return a factory of (simulator, caller) pairs; knobs override QUIET."""
    clients: list[httpx.AsyncClient] = []

    def make(**knobs: Any) -> tuple[EcsSimulator, EcsCaller]:
        simulator = EcsSimulator(SimulatorConfig(**{**QUIET, **knobs}))
        client = httpx.AsyncClient(transport=SimulatorTransport(simulator), base_url="http://ecs.simulator")
        clients.append(client)
        return simulator, EcsCaller(client)

    yield make
    for client in clients:
        await client.aclose()


async def sleep_until(moment: float, start: float) -> None:
    await trio.sleep_until(start + moment)


# Visibility lag.


async def test_lag_hides_new_task(make_ecs, autojump_clock):
    _, ecs = make_ecs(visibility_lag=8.0)
    start = trio.current_time()
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    assert await ecs.listed() == []
    assert (await ecs.describe(arn))["lastStatus"] == "RUNNING"
    await sleep_until(7.9, start)
    assert await ecs.listed() == []
    await sleep_until(8.0, start)
    assert await ecs.listed() == [arn]


async def test_lag_uniform_between_bounds(make_ecs, autojump_clock):
    _, ecs = make_ecs(visibility_lag=2.0, visibility_lag_max=10.0, seed=3)
    start = trio.current_time()
    arns = []
    for _ in range(3):
        response = await ecs.run(count=10)
        arns += [task["taskArn"] for task in response["tasks"]]

    first_seen: dict[str, float] = {}
    while len(first_seen) < len(arns) and trio.current_time() - start < 20:
        for arn in await ecs.listed():
            first_seen.setdefault(arn, trio.current_time() - start)
        await trio.sleep(0.5)

    assert sorted(first_seen) == sorted(arns)
    assert min(first_seen.values()) >= 2.0
    assert max(first_seen.values()) <= 10.5
    assert len(set(first_seen.values())) > 5


async def test_blind_list_never_lists(make_ecs, autojump_clock):
    _, ecs = make_ecs(visibility_lag=math.inf)
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    await trio.sleep(10_000)
    assert await ecs.listed() == []
    assert (await ecs.describe(arn))["lastStatus"] == "RUNNING"


async def test_describe_lag_reports_missing(make_ecs, autojump_clock):
    _, ecs = make_ecs(describe_lag=3.0)
    start = trio.current_time()
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    response = await ecs.call("DescribeTasks", cluster="default", tasks=[arn])
    assert response["tasks"] == []
    assert response["failures"] == [{"arn": arn, "reason": "MISSING"}]
    status, code, _ = await ecs.error("StopTask", cluster="default", task=arn)
    assert (status, code) == (400, "InvalidParameterException")

    await sleep_until(3.0, start)
    assert (await ecs.describe(arn))["taskArn"] == arn


# Lifecycle.


async def test_boot_phases(make_ecs, autojump_clock):
    _, ecs = make_ecs(boot_time=10.0)
    start = trio.current_time()
    launched = (await ecs.run())["tasks"][0]
    arn = launched["taskArn"]

    assert launched["lastStatus"] == "PROVISIONING"
    assert launched["desiredStatus"] == "RUNNING"
    assert "startedAt" not in launched
    await sleep_until(5.0, start)
    assert (await ecs.describe(arn))["lastStatus"] == "PENDING"
    await sleep_until(10.0, start)
    running = await ecs.describe(arn)
    assert running["lastStatus"] == "RUNNING"
    assert running["startedAt"] == pytest.approx(EPOCH + 10.0)
    assert running["createdAt"] == pytest.approx(EPOCH)


async def test_run_and_stop_phases(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(boot_time=10.0, run_time=60.0, stop_time=20.0)
    start = trio.current_time()
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    await sleep_until(69.9, start)
    assert (await ecs.describe(arn))["lastStatus"] == "RUNNING"
    assert await ecs.listed(desiredStatus="RUNNING") == [arn]

    await sleep_until(70.0, start)
    stopping = await ecs.describe(arn)
    assert (stopping["lastStatus"], stopping["desiredStatus"]) == ("STOPPING", "STOPPED")
    assert await ecs.listed(desiredStatus="RUNNING") == []
    assert await ecs.listed(desiredStatus="STOPPED") == [arn]

    await sleep_until(80.0, start)
    assert (await ecs.describe(arn))["lastStatus"] == "DEPROVISIONING"
    await sleep_until(89.9, start)
    assert simulator.ground_truth().active == 1

    await sleep_until(90.0, start)
    stopped = await ecs.describe(arn)
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["stoppedReason"] == "Essential container in task exited"
    assert stopped["stoppedAt"] == pytest.approx(EPOCH + 90.0)
    assert stopped["containers"][0]["exitCode"] == 0
    assert simulator.ground_truth().active == 0


async def test_stop_task_during_boot(make_ecs, autojump_clock):
    _, ecs = make_ecs(boot_time=30.0, stop_time=10.0)
    start = trio.current_time()
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    await sleep_until(5.0, start)
    stopping = (await ecs.call("StopTask", cluster="default", task=arn, reason="no longer needed"))["task"]
    assert stopping["desiredStatus"] == "STOPPED"
    assert stopping["lastStatus"] == "STOPPING"

    await sleep_until(15.0, start)
    stopped = await ecs.describe(arn)
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "no longer needed"
    assert "startedAt" not in stopped


async def test_exponential_run_time(make_ecs, autojump_clock):
    knobs = {
        "run_time": 100.0,
        "run_time_distribution": RunTimeDistribution.EXPONENTIAL,
        "stopped_task_retention": math.inf,
        "seed": 7,
    }

    async def draw_run_times() -> list[float]:
        _, ecs = make_ecs(**knobs)
        arns = []
        for _ in range(6):
            arns += [task["taskArn"] for task in (await ecs.run(count=10))["tasks"]]
        await trio.sleep(10_000)
        response = await ecs.call("DescribeTasks", cluster="default", tasks=arns)
        return [task["stoppedAt"] - task["createdAt"] for task in response["tasks"]]

    run_times = await draw_run_times()
    assert len(run_times) == 60
    assert 60 < sum(run_times) / len(run_times) < 150
    assert len(set(run_times)) == 60
    assert await draw_run_times() == run_times


async def test_run_time_sampler(make_ecs, autojump_clock):
    _, ecs = make_ecs(run_time_sampler=lambda generator: 42.0)
    start = trio.current_time()
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    await sleep_until(41.9, start)
    assert (await ecs.describe(arn))["lastStatus"] == "RUNNING"
    await sleep_until(42.0, start)
    assert (await ecs.describe(arn))["lastStatus"] == "STOPPED"


async def test_stopped_task_forgotten(make_ecs, autojump_clock):
    _, ecs = make_ecs(run_time=10.0, stopped_task_retention=100.0)
    start = trio.current_time()
    arn = (await ecs.run())["tasks"][0]["taskArn"]

    await sleep_until(109.9, start)
    assert (await ecs.describe(arn))["lastStatus"] == "STOPPED"
    assert await ecs.listed(desiredStatus="STOPPED") == [arn]
    await sleep_until(110.0, start)
    response = await ecs.call("DescribeTasks", cluster="default", tasks=[arn])
    assert response["failures"] == [{"arn": arn, "reason": "MISSING"}]
    assert await ecs.listed(desiredStatus="STOPPED") == []


# Launch failures and ambiguous launches.


async def test_launch_failure_rate_one(make_ecs):
    simulator, ecs = make_ecs(launch_failure_rate=1.0)

    response = await ecs.run(count=3)

    assert response["tasks"] == []
    assert response["failures"] == [{"reason": CAPACITY_UNAVAILABLE_REASON}] * 3
    truth = simulator.ground_truth()
    assert truth.launch_failures == 3
    assert truth.tasks_started == 0


async def test_launch_failure_rate_partial(make_ecs):
    simulator, ecs = make_ecs(launch_failure_rate=0.5, seed=11)

    started = 0
    failed = 0
    for _ in range(5):
        response = await ecs.run(count=10)
        assert len(response["tasks"]) + len(response["failures"]) == 10
        started += len(response["tasks"])
        failed += len(response["failures"])

    assert 10 < failed < 40
    assert simulator.ground_truth().tasks_started == started
    assert simulator.ground_truth().launch_failures == failed


async def test_launch_outage_window(make_ecs, autojump_clock):
    _, ecs = make_ecs(launch_outage=(10.0, 20.0))
    start = trio.current_time()

    for moment, expected_tasks in ((5.0, 1), (10.0, 0), (19.9, 0), (20.0, 1)):
        await sleep_until(moment, start)
        response = await ecs.run()
        assert len(response["tasks"]) == expected_tasks, moment
        assert len(response["failures"]) == 1 - expected_tasks, moment


async def test_ambiguous_server_error(make_ecs):
    simulator, ecs = make_ecs(ambiguous_rate=1.0)

    status, code, _ = await ecs.error("RunTask", **RUN, clientToken="launch-1")
    assert (status, code) == (500, "ServerException")
    listed = await ecs.listed()
    assert len(listed) == 1

    retried = await ecs.run(clientToken="launch-1")
    assert [task["taskArn"] for task in retried["tasks"]] == listed
    truth = simulator.ground_truth()
    assert truth.ambiguous_launches == 1
    assert truth.tasks_started == 1
    assert truth.duplicate_tasks == 0


async def test_ambiguous_disconnect(make_ecs):
    simulator, ecs = make_ecs(ambiguous_rate=1.0, ambiguous_response=AmbiguousResponse.DISCONNECT)

    with pytest.raises(httpx.RemoteProtocolError):
        await ecs.run()

    assert len(await ecs.listed()) == 1
    assert simulator.ground_truth().ambiguous_launches == 1


# Throttling and ListTasks failures.


@pytest.mark.parametrize(
    ("knob", "operation", "request_body"),
    [
        ("run_task_throttle_rate", "RunTask", RUN),
        ("list_tasks_throttle_rate", "ListTasks", {"cluster": "default"}),
        ("describe_tasks_throttle_rate", "DescribeTasks", {"cluster": "default", "tasks": ["0" * 32]}),
    ],
)
async def test_throttle_rate(make_ecs, knob, operation, request_body):
    simulator, ecs = make_ecs(**{knob: 1.0})

    status, code, message = await ecs.error(operation, **request_body)

    assert (status, code, message) == (400, "ThrottlingException", "Rate exceeded")
    truth = simulator.ground_truth()
    assert truth.throttled[operation] == 1
    assert truth.calls[operation] == 1
    assert truth.tasks_started == 0


async def test_throttle_rate_spares_others(make_ecs):
    _, ecs = make_ecs(run_task_throttle_rate=1.0)

    assert await ecs.listed() == []


async def test_rate_limit_run_task_calls(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(rate_limits=True)
    statuses: list[int] = []

    async def launch() -> None:
        statuses.append((await ecs.send("RunTask", RUN)).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(25):
            nursery.start_soon(launch)
    assert sorted(statuses) == [200] * 20 + [400] * 5
    assert simulator.ground_truth().throttled["RunTask"] == 5

    # The bucket refills 20 calls per second: one call every 0.05 s.
    await trio.sleep(0.05)
    assert (await ecs.send("RunTask", RUN)).status_code == 200
    assert (await ecs.send("RunTask", RUN)).status_code == 400


async def test_rate_limit_fargate_launches(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(rate_limits=True)

    for _ in range(10):
        await ecs.run(count=10)
    status, code, _ = await ecs.error("RunTask", **RUN, count=10)
    assert (status, code) == (400, "ThrottlingException")
    assert simulator.ground_truth().tasks_started == 100

    # 20 tasks per second refill: 10 tokens after 0.5 s.
    await trio.sleep(0.5)
    assert len((await ecs.run(count=10))["tasks"]) == 10


async def test_rate_limits_off(make_ecs):
    simulator, ecs = make_ecs(rate_limits=False)

    for _ in range(30):
        await ecs.run(count=10)

    assert simulator.ground_truth().tasks_started == 300


async def test_list_failure_rate_one(make_ecs):
    simulator, ecs = make_ecs(list_failure_rate=1.0)

    status, code, _ = await ecs.error("ListTasks", cluster="default")

    assert (status, code) == (503, "ServerException")
    assert simulator.ground_truth().list_failures == 1


async def test_list_failure_rate_partial(make_ecs):
    simulator, ecs = make_ecs(list_failure_rate=0.25, seed=5)

    statuses = [(await ecs.send("ListTasks", {"cluster": "default"})).status_code for _ in range(200)]

    assert set(statuses) == {200, 503}
    assert 25 < statuses.count(503) < 75
    assert simulator.ground_truth().list_failures == statuses.count(503)


# Foreign tasks.


async def test_foreign_tasks_listed_at_once(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(foreign_tasks=3, visibility_lag=8.0, foreign_started_by="old-fleet")

    listed = await ecs.listed()
    assert len(listed) == 3
    described = await ecs.describe(listed[0])
    assert described["startedBy"] == "old-fleet"
    assert described["lastStatus"] == "RUNNING"
    assert await ecs.listed(startedBy="old-fleet") == listed

    await ecs.run()
    truth = simulator.ground_truth()
    assert (truth.active, truth.fleet_active) == (4, 1)
    assert truth.foreign_tasks == 3
    assert truth.tasks_started == 1


async def test_foreign_run_time(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(foreign_tasks=2, foreign_run_time=50.0)
    start = trio.current_time()

    await sleep_until(49.9, start)
    assert len(await ecs.listed()) == 2
    await sleep_until(50.0, start)
    assert await ecs.listed() == []
    truth = simulator.ground_truth()
    assert truth.peak_active == 2
    assert truth.peak_fleet_active == 0
    assert truth.active == 0


# Latency and determinism.


async def test_latency_delays_requests(make_ecs, autojump_clock):
    _, ecs = make_ecs(latency=0.25)
    start = trio.current_time()

    await ecs.listed()

    assert trio.current_time() - start == pytest.approx(0.25)


async def test_same_seed_same_tasks(make_ecs):
    async def launch(seed: int) -> list[str]:
        _, ecs = make_ecs(seed=seed)
        return [task["taskArn"] for task in (await ecs.run(count=5))["tasks"]]

    first = await launch(1)
    assert await launch(1) == first
    assert await launch(2) != first
    assert all(len(arn.rsplit("/", 1)[1]) == 32 for arn in first)
    assert first[0].startswith("arn:aws:ecs:us-east-1:123456789012:task/default/")


# Ground truth.


async def test_ground_truth_exact_peak(make_ecs, autojump_clock):
    run_times = iter([30.0, 10.0, 50.0, 5.0])
    simulator, ecs = make_ecs(run_time_sampler=lambda generator: next(run_times), stop_time=2.0)
    start = trio.current_time()

    await ecs.run(count=2)  # [0, 32) and [0, 12)
    await sleep_until(20.0, start)
    await ecs.run()  # [20, 72)
    await sleep_until(31.0, start)
    await ecs.run()  # [31, 38)
    await sleep_until(100.0, start)

    truth = simulator.ground_truth()
    assert truth.peak_active == 3
    assert truth.peak_active_at == pytest.approx(31.0)
    assert truth.peak_fleet_active == 3
    assert truth.active == 0
    timeline = [(round(point.time, 6), point.active) for point in truth.timeline]
    assert timeline == [(0.0, 2), (12.0, 1), (20.0, 2), (31.0, 3), (32.0, 2), (38.0, 1), (72.0, 0)]
    assert truth.time == pytest.approx(100.0)


async def test_ground_truth_back_to_back(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(run_time=10.0)
    start = trio.current_time()

    await ecs.run()
    await sleep_until(10.0, start)
    await ecs.run()

    truth = simulator.ground_truth()
    assert truth.peak_active == 1
    assert truth.active == 1


async def test_ground_truth_as_dict(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(foreign_tasks=1)
    await ecs.run(clientToken="launch-1")

    encoded = json.dumps(simulator.ground_truth().as_dict())

    decoded = json.loads(encoded)
    assert decoded["peak_active"] == 2
    assert decoded["peak_fleet_active"] == 1
    assert decoded["calls"]["RunTask"] == 1
    assert decoded["timeline"] == [{"time": 0.0, "active": 2, "fleet_active": 1}]
    assert decoded["duplicate_tasks_by_token"] == {}


# The cap bug that ListTasks-based controllers have.


async def list_only_controller(ecs: EcsCaller, cap: int) -> None:
    """Launch one worker unless ListTasks already shows ``cap`` of them.

    A throttled RunTask is retried after 0.1 s, as the AWS SDKs do.
    """
    listed = await ecs.listed(startedBy="fleet")
    if len(listed) >= cap:
        return
    while (await ecs.send("RunTask", {**RUN, "startedBy": "fleet"})).status_code != 200:
        await trio.sleep(0.1)


async def test_list_only_controller_overshoots(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(visibility_lag=8.0, boot_time=0.0, run_time=60.0, rate_limits=True)

    async with trio.open_nursery() as nursery:
        for _ in range(24):
            nursery.start_soon(list_only_controller, ecs, 16)
    await trio.sleep(100)

    truth = simulator.ground_truth()
    assert truth.tasks_started == 24
    assert truth.peak_fleet_active == 24
    # 4 calls beyond the burst of 20, then 2 of those again at 0.1 s, when
    # only 2 tokens have refilled.
    assert truth.throttled["RunTask"] == 6


async def test_list_only_controller_without_lag(make_ecs, autojump_clock):
    simulator, ecs = make_ecs(visibility_lag=0.0, run_time=60.0)

    for _ in range(24):
        await list_only_controller(ecs, 16)

    assert simulator.ground_truth().peak_fleet_active == 16
