"""Token buckets in trio's virtual time, alone and in front of ECS calls."""

from __future__ import annotations

import functools
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from ecs_support import (
    FakeAws,
    RecordedRequest,
    aws_ok,
    fake_aws_env,  # noqa: F401  (fixture)
    fake_provisioner,
    task_arn,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetactor import Job
from fleetactor.ecs import DEFAULT_RATE_LIMIT, RUN_TASK_RATE_LIMIT, RateLimit, TokenBucket

pytestmark = pytest.mark.usefixtures("fake_aws_env")


def assert_within_limit(times: list[float], limit: RateLimit) -> None:
    """Check that no time window contains more grants than the bucket allows."""
    times = sorted(times)
    for first in range(len(times)):
        for last in range(first, len(times)):
            window = times[last] - times[first]
            allowed = limit.burst + window * limit.per_second
            assert last - first + 1 <= allowed + 1e-6, (times[first], times[last])


class TestTokenBucket:
    async def test_150_calls_take_2_5_seconds(self, autojump_clock: Any) -> None:
        bucket = TokenBucket(RateLimit(per_second=20, burst=100))
        start = trio.current_time()

        for _ in range(150):
            await bucket.acquire()

        assert trio.current_time() - start == pytest.approx(2.5)

    async def test_concurrent_callers_spaced(self, autojump_clock: Any) -> None:
        limit = RateLimit(per_second=20, burst=100)
        bucket = TokenBucket(limit)
        grant_times: list[float] = []
        start = trio.current_time()

        async def take() -> None:
            await bucket.acquire()
            grant_times.append(trio.current_time() - start)

        async with trio.open_nursery() as nursery:
            for _ in range(150):
                nursery.start_soon(take)

        grant_times.sort()
        assert grant_times[99] == pytest.approx(0.0)
        assert grant_times[100] == pytest.approx(0.05)
        assert grant_times[-1] == pytest.approx(2.5)
        assert_within_limit(grant_times, limit)

    async def test_refills_after_idle(self, autojump_clock: Any) -> None:
        bucket = TokenBucket(RateLimit(per_second=10, burst=5))
        for _ in range(5):
            await bucket.acquire()

        await trio.sleep(10)
        start = trio.current_time()
        for _ in range(5):
            waited = await bucket.acquire()
            assert waited == 0.0

        assert trio.current_time() == start

    async def test_refill_capped_at_burst(self, autojump_clock: Any) -> None:
        bucket = TokenBucket(RateLimit(per_second=10, burst=5))

        await trio.sleep(60)
        start = trio.current_time()
        for _ in range(6):
            await bucket.acquire()

        assert trio.current_time() - start == pytest.approx(0.1)

    async def test_cancelled_wait_returns_token(self, autojump_clock: Any) -> None:
        bucket = TokenBucket(RateLimit(per_second=1, burst=1))
        await bucket.acquire()

        with trio.move_on_after(0.5):
            await bucket.acquire()
        start = trio.current_time()
        await bucket.acquire()

        # Without the refund, the cancelled caller's token would push this
        # caller to t=2.0; with it, the next token is due at t=1.0.
        assert trio.current_time() - start == pytest.approx(0.5)

    @pytest.mark.parametrize(
        "options",
        [{"per_second": 0, "burst": 1}, {"per_second": float("nan"), "burst": 1}, {"per_second": 1, "burst": 0}],
    )
    def test_rate_limit_rejects_invalid(self, options: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="RateLimit"):
            RateLimit(**options)

    @settings(max_examples=40, deadline=None)
    @given(
        per_second=st.sampled_from([0.5, 2.0, 20.0]),
        burst=st.integers(min_value=1, max_value=8),
        arrivals=st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=30),
    )
    def test_any_arrivals_within_limit(self, per_second: float, burst: int, arrivals: list[float]) -> None:
        limit = RateLimit(per_second=per_second, burst=burst)
        grant_times: list[float] = []

        async def main() -> None:
            bucket = TokenBucket(limit)

            async def arrive(delay: float) -> None:
                await trio.sleep(delay)
                await bucket.acquire()
                grant_times.append(trio.current_time())

            async with trio.open_nursery() as nursery:
                for delay in arrivals:
                    nursery.start_soon(arrive, delay)

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

        assert len(grant_times) == len(arrivals)
        assert_within_limit(grant_times, limit)


def record_times(times: list[float], response: httpx.Response) -> Any:
    def respond(request: RecordedRequest) -> httpx.Response:
        times.append(trio.current_time())
        return response

    return respond


class TestProvisionerRateLimits:
    def test_documented_defaults(self) -> None:
        assert RUN_TASK_RATE_LIMIT == RateLimit(per_second=20, burst=100)
        assert DEFAULT_RATE_LIMIT == RateLimit(per_second=20, burst=50)

    async def test_150_run_tasks_take_2_5_seconds(self, autojump_clock: Any) -> None:
        request_times: list[float] = []
        fake = FakeAws()
        fake.on("RunTask", record_times(request_times, aws_ok({"tasks": [{"taskArn": task_arn("t")}]})))

        async with fake_provisioner(fake) as provisioner:
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for number in range(150):
                    launch = functools.partial(provisioner.launch, client_token=f"token-{number}")
                    nursery.start_soon(launch, Job(f"job-{number}"))
            elapsed = trio.current_time() - start
            statistics = provisioner.statistics()

        assert elapsed == pytest.approx(2.5)
        assert len(request_times) == 150
        assert_within_limit([time - start for time in request_times], RUN_TASK_RATE_LIMIT)
        assert statistics.requests["RunTask"] == 150
        assert statistics.rate_limit_wait > 0

    async def test_describe_uses_default_bucket(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.on("DescribeTasks", lambda request: aws_ok({"tasks": [], "failures": []}))

        async with fake_provisioner(fake) as provisioner:
            start = trio.current_time()
            for number in range(60):
                await provisioner.describe([f"t{number}"])
            elapsed = trio.current_time() - start

        # 50 calls from the full bucket, then 10 more at 20 per second.
        assert elapsed == pytest.approx(0.5)

    async def test_custom_run_task_limit(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.on("RunTask", lambda request: aws_ok({"tasks": [{"taskArn": task_arn("t")}]}))

        async with fake_provisioner(fake, rate_limits={"RunTask": RateLimit(per_second=2, burst=1)}) as provisioner:
            start = trio.current_time()
            for number in range(5):
                await provisioner.launch(Job(f"job-{number}"), client_token=f"token-{number}")
            elapsed = trio.current_time() - start

        assert elapsed == pytest.approx(2.0)
