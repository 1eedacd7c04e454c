"""AwsJsonClient: signing, retries, errors, logging and configuration."""

from __future__ import annotations

import datetime
import random
import threading
from typing import Any

import botocore.exceptions
import botocore.session
import httpx
import pytest
import trio
from botocore.credentials import Credentials, RefreshableCredentials
from ecs_support import (
    ACCESS_KEY_ID,
    FAKE_CREDENTIALS,
    REGION,
    SECRET_ACCESS_KEY,
    SHARED_SESSION,
    FakeAws,
    aws_error,
    aws_ok,
    fake_aws_env,  # noqa: F401  (fixture)
)
from structlog.testing import capture_logs

from fleetactor.ecs import AwsJsonClient, AwsServiceError, EcsConfigError, RetryPolicy

pytestmark = pytest.mark.usefixtures("fake_aws_env")


def make_client(fake: FakeAws, **options: Any) -> AwsJsonClient:
    settings: dict[str, Any] = {
        "region": REGION,
        "credentials": FAKE_CREDENTIALS,
        "session": SHARED_SESSION,
        "transport": fake.transport(),
        "jitter_random": random.Random(5),
    }
    settings.update(options)
    return AwsJsonClient("ecs", **settings)


class TestRequests:
    async def test_json_protocol_request(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_ok({"clusterArns": ["arn:cluster/a"]}))

        async with make_client(fake) as client:
            response = await client.call("ListClusters", {"maxResults": 10})

        assert response["clusterArns"] == ["arn:cluster/a"]
        assert response["ResponseMetadata"]["RequestId"] == "fake-request-ok"
        request = fake.requests[0]
        assert request.headers["X-Amz-Target"] == "AmazonEC2ContainerServiceV20141113.ListClusters"
        assert request.headers["Content-Type"] == "application/x-amz-json-1.1"
        assert request.body == {"maxResults": 10}

    async def test_sigv4_authorization_header(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_ok({}))

        async with make_client(fake) as client:
            await client.call("ListClusters", {})

        headers = fake.requests[0].headers
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
        assert headers["Authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{today}/{REGION}/ecs/aws4_request, SignedHeaders="
        )
        assert "x-amz-target" in headers["Authorization"]
        assert "X-Amz-Date" in headers
        assert "X-Amz-Security-Token" not in headers

    async def test_session_token_header(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_ok({}))
        credentials = Credentials("ASIATEMPORARY", "temporary-secret", "session-token-1")

        async with make_client(fake, credentials=credentials) as client:
            await client.call("ListClusters", {})

        assert fake.requests[0].headers["X-Amz-Security-Token"] == "session-token-1"

    async def test_region_endpoint_url(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_ok({}))

        async with make_client(fake, region="eu-west-1") as client:
            assert client.endpoint_url == "https://ecs.eu-west-1.amazonaws.com"
            await client.call("ListClusters", {})

        assert fake.requests[0].headers["Host"] == "ecs.eu-west-1.amazonaws.com"

    async def test_endpoint_url_override(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_ok({}))

        async with make_client(fake, endpoint_url="http://127.0.0.1:4566") as client:
            assert client.endpoint_url == "http://127.0.0.1:4566"
            await client.call("ListClusters", {})

        assert fake.requests[0].headers["Host"] == "127.0.0.1:4566"

    async def test_invalid_parameters_not_sent(self) -> None:
        fake = FakeAws()

        async with make_client(fake) as client:
            with pytest.raises(botocore.exceptions.ParamValidationError, match="maxResults"):
                await client.call("ListClusters", {"maxResults": "ten"})

        assert fake.requests == []

    async def test_call_before_open(self) -> None:
        client = make_client(FakeAws())

        with pytest.raises(trio.ClosedResourceError, match="not open"):
            await client.call("ListClusters", {})

    async def test_call_after_close(self) -> None:
        client = make_client(FakeAws())
        await client.open()
        await client.aclose()

        with pytest.raises(trio.ClosedResourceError, match="not open"):
            await client.call("ListClusters", {})
        with pytest.raises(trio.ClosedResourceError, match="closed"):
            await client.open()

    async def test_injected_http_client_left_open(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_ok({}))

        async with httpx.AsyncClient(transport=fake.transport()) as http_client:
            async with make_client(fake, transport=None, http_client=http_client) as client:
                await client.call("ListClusters", {})
            assert not http_client.is_closed

        assert len(fake.requests) == 1

    async def test_request_counts_per_operation(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_error(500, "ServerException", "try again"), aws_ok({}))
        fake.queue("ListTasks", aws_ok({}), aws_ok({}))

        async with make_client(fake, retry=RetryPolicy(base_delay=0)) as client:
            await client.call("ListClusters", {})
            await client.call("ListTasks", {})
            await client.call("ListTasks", {})
            statistics = client.statistics()

        assert dict(client.request_counts) == {"ListClusters": 2, "ListTasks": 2}
        assert dict(statistics.requests) == {"ListClusters": 2, "ListTasks": 2}
        assert dict(statistics.retries) == {"ListClusters": 1}
        assert statistics.total_requests == 4


class TestRetries:
    @pytest.mark.parametrize(
        "first_response",
        [
            aws_error(400, "ThrottlingException", "Rate exceeded"),
            aws_error(400, "RequestLimitExceeded", "Request limit exceeded."),
            aws_error(400, "TooManyRequestsException", "Too many requests"),
            aws_error(429, "SlowDown", "slow down"),
            aws_error(500, "ServerException", "internal error"),
            aws_error(503, "ServiceUnavailable", "unavailable"),
            httpx.Response(502, text="<html>bad gateway</html>"),
        ],
    )
    async def test_transient_error_then_success(self, first_response: httpx.Response, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", first_response, aws_ok({"clusterArns": []}))

        async with make_client(fake) as client:
            response = await client.call("ListClusters", {})

        assert response["clusterArns"] == []
        assert len(fake.requests) == 2

    @pytest.mark.parametrize(
        "transport_error",
        [
            httpx.ConnectError("connection refused"),
            httpx.ReadError("connection reset by peer"),
            httpx.ReadTimeout("timed out"),
            httpx.RemoteProtocolError("server disconnected"),
        ],
    )
    async def test_transport_error_then_success(self, transport_error: Exception, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", transport_error, aws_ok({}))

        async with make_client(fake) as client:
            await client.call("ListClusters", {})

        assert len(fake.requests) == 2

    @pytest.mark.parametrize(
        ("code", "status_code"),
        [
            ("ClusterNotFoundException", 400),
            ("InvalidParameterException", 400),
            ("AccessDeniedException", 400),
            ("ClientException", 400),
            ("UnrecognizedClientException", 403),
        ],
    )
    async def test_client_error_not_retried(self, code: str, status_code: int, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_error(status_code, code, f"{code} message"))

        async with make_client(fake) as client:
            with pytest.raises(AwsServiceError) as caught:
                await client.call("ListClusters", {})

        assert len(fake.requests) == 1
        assert caught.value.operation == "ListClusters"
        assert caught.value.code == code
        assert caught.value.message == f"{code} message"
        assert caught.value.status_code == status_code
        assert caught.value.request_id == f"fake-request-{code}"
        assert not caught.value.retryable

    async def test_namespaced_error_code(self) -> None:
        fake = FakeAws()
        fake.queue(
            "ListClusters",
            aws_error(400, "com.amazonaws.ecs#ClusterNotFoundException", "Cluster not found."),
        )

        async with make_client(fake) as client:
            with pytest.raises(AwsServiceError) as caught:
                await client.call("ListClusters", {})

        assert caught.value.code == "ClusterNotFoundException"

    async def test_xml_error_body(self) -> None:
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error>'
            "<Code>SignatureDoesNotMatch</Code><Message>Check your AWS Secret Access Key.</Message>"
            "</Error></Errors></ErrorResponse>"
        )
        fake = FakeAws()
        fake.queue("ListClusters", httpx.Response(403, text=body, headers={"Content-Type": "application/xml"}))

        async with make_client(fake) as client:
            with pytest.raises(AwsServiceError) as caught:
                await client.call("ListClusters", {})

        assert caught.value.code == "SignatureDoesNotMatch"
        assert caught.value.message == "Check your AWS Secret Access Key."
        assert caught.value.status_code == 403

    async def test_html_error_body(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.on("ListClusters", lambda request: httpx.Response(502, text="<html><h1>Bad Gateway</h1></html>"))

        async with make_client(fake, retry=RetryPolicy(max_attempts=2)) as client:
            with pytest.raises(AwsServiceError) as caught:
                await client.call("ListClusters", {})

        assert caught.value.code == "502"
        assert caught.value.status_code == 502
        assert caught.value.retryable

    async def test_attempts_exhausted_raises_last(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.on("ListClusters", lambda request: aws_error(500, "ServerException", "still failing"))

        async with make_client(fake, retry=RetryPolicy(max_attempts=3)) as client:
            with pytest.raises(AwsServiceError, match="ServerException") as caught:
                await client.call("ListClusters", {})

        assert caught.value.status_code == 500
        assert len(fake.requests) == 3

    async def test_timeouts_exhausted_raise_timeout(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", *[httpx.ReadTimeout("timed out") for _ in range(4)])

        async with make_client(fake, retry=RetryPolicy(max_attempts=4)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.call("ListClusters", {})

        assert len(fake.requests) == 4

    async def test_unsupported_protocol_not_retried(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", httpx.UnsupportedProtocol("no such scheme"), aws_ok({}))

        async with make_client(fake) as client:
            with pytest.raises(httpx.UnsupportedProtocol):
                await client.call("ListClusters", {})

        assert len(fake.requests) == 1

    async def test_backoff_waits_in_virtual_time(self, autojump_clock: Any) -> None:
        policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
        fake = FakeAws()
        fake.on("ListClusters", lambda request: aws_error(400, "ThrottlingException", "Rate exceeded"))
        expected_random = random.Random(42)
        expected_delay = sum(policy.backoff(retry, expected_random) for retry in (1, 2, 3))

        async with make_client(fake, retry=policy, jitter_random=random.Random(42)) as client:
            start = trio.current_time()
            with pytest.raises(AwsServiceError, match="ThrottlingException"):
                await client.call("ListClusters", {})
            elapsed = trio.current_time() - start

        assert elapsed == pytest.approx(expected_delay)
        assert elapsed > 0

    def test_backoff_capped_and_jittered(self) -> None:
        policy = RetryPolicy(max_attempts=20, base_delay=0.5, max_delay=4.0)
        jitter_random = random.Random(3)

        for retry in range(1, 20):
            ceiling = min(4.0, 0.5 * 2 ** (retry - 1))
            delays = [policy.backoff(retry, jitter_random) for _ in range(50)]
            assert all(0 <= delay <= ceiling for delay in delays)
            assert len(set(delays)) > 1

    def test_backoff_seed_repeats(self) -> None:
        policy = RetryPolicy()

        first = [policy.backoff(retry, random.Random(11)) for retry in range(1, 6)]
        second = [policy.backoff(retry, random.Random(11)) for retry in range(1, 6)]

        assert first == second

    def test_backoff_huge_retry_number(self) -> None:
        policy = RetryPolicy(max_attempts=5000, base_delay=0.1, max_delay=2.0)

        assert 0 <= policy.backoff(4999, random.Random(0)) <= 2.0

    @pytest.mark.parametrize(
        "options",
        [{"max_attempts": 0}, {"max_attempts": True}, {"base_delay": -1.0}, {"max_delay": float("inf")}],
    )
    def test_retry_policy_rejects_invalid(self, options: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="RetryPolicy"):
            RetryPolicy(**options)

    async def test_each_attempt_signed_afresh(self, autojump_clock: Any) -> None:
        refresh_threads: list[int] = []
        access_keys = iter(f"ASIAROTATED{number:04d}" for number in range(100))

        def refresh() -> dict[str, str]:
            refresh_threads.append(threading.get_ident())
            # Inside botocore's advisory refresh window (15 min) and outside
            # its mandatory one (10 min): every use refreshes, none fails.
            expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=12)
            return {
                "access_key": next(access_keys),
                "secret_key": "rotated-secret",
                "token": "rotated-token",
                "expiry_time": expiry.isoformat(),
            }

        credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test-rotation")
        refresh_threads.clear()
        fake = FakeAws()
        fake.queue("ListClusters", aws_error(500, "ServerException", "retry me"), aws_ok({}))

        async with make_client(fake, credentials=credentials) as client:
            await client.call("ListClusters", {})

        first, second = (request.headers["Authorization"] for request in fake.requests)
        assert "ASIAROTATED0001" in first
        assert "ASIAROTATED0002" in second
        assert len(refresh_threads) == 2
        assert threading.get_ident() not in refresh_threads


class TestLogging:
    async def test_retry_logged_with_operation_and_code(self, autojump_clock: Any) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_error(400, "ThrottlingException", "Rate exceeded"), aws_ok({}))

        with capture_logs() as logs:
            async with make_client(fake) as client:
                await client.call("ListClusters", {})

        assert len(logs) == 1
        assert logs[0]["event"] == "aws.request.retrying"
        assert logs[0]["log_level"] == "warning"
        assert logs[0]["operation"] == "ListClusters"
        assert logs[0]["attempt"] == 1
        assert logs[0]["error_code"] == "ThrottlingException"
        assert logs[0]["status_code"] == 400

    async def test_logs_and_errors_hold_no_secrets(self, autojump_clock: Any) -> None:
        credentials = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, "secret-session-token")
        fake = FakeAws()
        fake.queue(
            "ListClusters",
            aws_error(400, "ThrottlingException", "Rate exceeded"),
            aws_error(500, "ServerException", "broken"),
            httpx.ConnectError("connection refused"),
            aws_error(403, "InvalidSignatureException", "bad signature"),
        )

        with capture_logs() as logs:
            async with make_client(fake, credentials=credentials) as client:
                with pytest.raises(AwsServiceError) as caught:
                    await client.call("ListClusters", {})

        signatures = [request.headers["Authorization"].rsplit("Signature=", 1)[1] for request in fake.requests]
        secrets = [SECRET_ACCESS_KEY, "secret-session-token", "AWS4-HMAC-SHA256", "Signature=", *signatures]
        logged = repr(logs)
        raised = f"{caught.value!s} {caught.value!r}"
        assert len(logs) == 3
        for secret in secrets:
            assert secret not in logged
            assert secret not in raised


class TestConfiguration:
    def test_missing_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AWS_DEFAULT_REGION")

        with pytest.raises(EcsConfigError, match="no AWS region is configured: pass region=..., set AWS_REGION"):
            AwsJsonClient("ecs", session=botocore.session.Session())

    def test_region_from_aws_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_REGION", "eu-central-1")

        client = AwsJsonClient("ecs", session=botocore.session.Session())

        assert client.region == "eu-central-1"

    def test_region_from_aws_default_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")

        client = AwsJsonClient("ecs", session=botocore.session.Session())

        assert client.region == "ap-south-1"

    def test_invalid_region(self) -> None:
        with pytest.raises(EcsConfigError, match="invalid AWS region 'not a region'"):
            AwsJsonClient("ecs", region="not a region", session=SHARED_SESSION)

    def test_missing_profile(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AWS_DEFAULT_REGION")

        with pytest.raises(EcsConfigError, match="AWS profile not found.*fix AWS_PROFILE or profile="):
            AwsJsonClient("ecs", profile="no-such-profile")

    def test_partial_static_credentials(self) -> None:
        with pytest.raises(EcsConfigError, match="both an access key id and a secret access key"):
            AwsJsonClient("ecs", region=REGION, credentials=Credentials(ACCESS_KEY_ID, ""), session=SHARED_SESSION)

    def test_exclusive_arguments(self) -> None:
        with pytest.raises(ValueError, match="either transport= or http_client="):
            AwsJsonClient(
                "ecs",
                region=REGION,
                transport=httpx.MockTransport(lambda request: httpx.Response(200)),
                http_client=httpx.AsyncClient(),
            )
        with pytest.raises(ValueError, match="either session= or profile="):
            AwsJsonClient("ecs", region=REGION, session=SHARED_SESSION, profile="dev")

    async def test_missing_credentials_at_open(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        fake = FakeAws()
        client = AwsJsonClient("ecs", region=REGION, transport=fake.transport())

        with pytest.raises(EcsConfigError, match="no AWS credentials found: pass credentials=.*AWS_ACCESS_KEY_ID"):
            await client.open()

        assert fake.requests == []

    async def test_credentials_from_environment(self) -> None:
        fake = FakeAws()
        fake.queue("ListClusters", aws_ok({}))

        async with AwsJsonClient("ecs", transport=fake.transport()) as client:
            await client.call("ListClusters", {})

        assert f"Credential={ACCESS_KEY_ID}/" in fake.requests[0].headers["Authorization"]

    async def test_endpoint_url_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", "http://127.0.0.1:4566")

        async with AwsJsonClient("ecs", transport=FakeAws().transport()) as client:
            assert client.endpoint_url == "http://127.0.0.1:4566"

    async def test_unknown_service(self) -> None:
        client = AwsJsonClient("no-such-service", region=REGION, credentials=FAKE_CREDENTIALS)

        with pytest.raises(EcsConfigError, match="botocore has no model for AWS service 'no-such-service'"):
            await client.open()

    async def test_non_json_service(self) -> None:
        client = AwsJsonClient("ec2", region=REGION, credentials=FAKE_CREDENTIALS, session=SHARED_SESSION)

        with pytest.raises(EcsConfigError, match="'ec2' uses the 'ec2' protocol"):
            await client.open()
