"""An async client for AWS JSON-protocol APIs, built on botocore and httpx.

botocore supplies the service model, parameter validation, serialization,
endpoint rules, SigV4 signing and response parsing. httpx sends the requests,
so the client runs on trio without blocking the event loop.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any

import botocore
import botocore.session
import httpx
import structlog
import trio
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, HeadersDict, create_request_object, prepare_request_dict
from botocore.credentials import Credentials
from botocore.model import OperationModel
from botocore.parsers import ResponseParserError, create_parser
from botocore.serialize import create_serializer
from botocore.validate import validate_parameters

from fleetactor.ecs._config import (
    ServiceSetup,
    check_static_credentials,
    freeze_credentials,
    load_service_setup,
    resolve_region,
)
from fleetactor.ecs._errors import AwsServiceError
from fleetactor.ecs._ratelimit import RateLimit, TokenBucket
from fleetactor.ecs._retry import RETRYABLE_TRANSPORT_ERRORS, RetryPolicy, is_retryable

__all__ = ["AwsJsonClient", "ClientStatistics"]

logger = structlog.get_logger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

_USER_AGENT = f"fleetactor botocore/{botocore.__version__} httpx/{httpx.__version__}"


@dataclass(frozen=True)
class ClientStatistics:
    """Counters of an ``AwsJsonClient`` since it was created.

    Attributes:
        requests: HTTP requests sent per operation, retries included.
        retries: Retries per operation (requests sent again after a failure).
        rate_limit_wait: Seconds that calls spent waiting for a token bucket,
            summed over all calls.
    """

    requests: Mapping[str, int]
    retries: Mapping[str, int]
    rate_limit_wait: float

    @property
    def total_requests(self) -> int:
        """HTTP requests sent for all operations."""
        return sum(self.requests.values())


class AwsJsonClient:
    """An async client for one AWS service that speaks the AWS JSON protocol.

    Use it as an async context manager, or call ``open`` and ``aclose``::

        async with AwsJsonClient("ecs", region="eu-west-1") as client:
            response = await client.call("ListClusters", {})

    Args:
        service_name: The botocore service name, for example ``"ecs"``.
        region: The AWS region. Defaults to ``AWS_REGION``, then to the
            session's region (``AWS_DEFAULT_REGION`` or the profile).
        endpoint_url: Send requests here instead of the region's endpoint:
            moto, fleetactor's simulator or a VPC endpoint. Defaults to
            ``AWS_ENDPOINT_URL_<SERVICE>``, then ``AWS_ENDPOINT_URL``.
        credentials: Credentials to sign with. Defaults to the session's
            credential provider chain.
        session: The botocore session to read configuration from. Defaults
            to a new session for ``profile``.
        profile: The AWS profile for the default session. Defaults to
            ``AWS_PROFILE``, then to the default profile.
        transport: An httpx transport for the client's own ``AsyncClient``,
            for example ``httpx.MockTransport`` in tests.
        http_client: An ``httpx.AsyncClient`` to send with. The caller owns
            it, and ``aclose`` leaves it open.
        timeout: The httpx timeout of each attempt.
        retry: Attempts and backoff for throttling, 5xx responses, timeouts
            and connection errors.
        rate_limits: A token bucket per operation name.
        default_rate_limit: The bucket for each operation not named in
            ``rate_limits``. None leaves those operations unlimited.
        jitter_random: The random source for backoff jitter. Pass a seeded
            ``random.Random`` for repeatable waits.

    Raises:
        EcsConfigError: No region is configured, or the static credentials
            are incomplete.
        ValueError: Two arguments that exclude each other were both given.
    """

    def __init__(
        self,
        service_name: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: Credentials | None = None,
        session: botocore.session.Session | None = None,
        profile: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        default_rate_limit: RateLimit | None = None,
        jitter_random: random.Random | None = None,
    ) -> None:
        if session is not None and profile is not None:
            msg = "pass either session= or profile=, not both; select the profile when creating the session"
            raise ValueError(msg)
        if transport is not None and http_client is not None:
            msg = "pass either transport= or http_client=, not both; give the transport to the http_client"
            raise ValueError(msg)
        if credentials is not None:
            check_static_credentials(credentials)

        self.service_name = service_name
        self._session = session if session is not None else botocore.session.Session(profile=profile)
        self.region = resolve_region(region, self._session)
        self._requested_endpoint_url = endpoint_url
        self._credentials = credentials
        self._transport = transport
        self._http_client = http_client
        self._owns_http_client = http_client is None
        self._timeout = timeout
        self._retry = retry if retry is not None else RetryPolicy()
        self._jitter_random = jitter_random if jitter_random is not None else random.Random()

        self._rate_limits = dict(rate_limits or {})
        self._default_rate_limit = default_rate_limit
        self._buckets: dict[str, TokenBucket] = {}

        self._setup: ServiceSetup | None = None
        self._serializer: Any = None
        self._parser: Any = None
        self._closed = False

        self._requests: collections.Counter[str] = collections.Counter()
        self._retries: collections.Counter[str] = collections.Counter()
        self._rate_limit_wait = 0.0

    async def __aenter__(self) -> AwsJsonClient:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def endpoint_url(self) -> str:
        """The URL requests go to. Known once the client is open."""
        return self._require_setup().endpoint_url

    async def open(self) -> None:
        """Load the service model, resolve the endpoint and find credentials.

        The loading runs in a worker thread because it reads files and may
        contact a credential source. Opening an open client does nothing.

        Raises:
            EcsConfigError: A setting is missing; the message names it.
            trio.ClosedResourceError: The client was closed.
        """
        if self._closed:
            msg = "this AWS client was closed; create a new one"
            raise trio.ClosedResourceError(msg)
        if self._setup is not None:
            await trio.lowlevel.checkpoint()
            return

        setup = await trio.to_thread.run_sync(
            load_service_setup,
            self.service_name,
            self._session,
            self.region,
            self._requested_endpoint_url,
            self._credentials,
        )
        self._serializer = create_serializer(setup.service_model.protocol, include_validation=False)
        self._parser = create_parser(setup.service_model.protocol)
        if self._http_client is None:
            self._http_client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._timeout,
                verify=setup.ssl_context if setup.ssl_context is not None else True,
            )
        self._setup = setup

    async def aclose(self) -> None:
        """Close the client and the ``httpx.AsyncClient`` it created.

        Closing a closed client does nothing.
        """
        self._closed = True
        http_client, self._http_client = self._http_client, None
        if http_client is not None and self._owns_http_client:
            await http_client.aclose()
        else:
            await trio.lowlevel.checkpoint()

    def statistics(self) -> ClientStatistics:
        """Return the request counters (a snapshot)."""
        return ClientStatistics(
            requests=MappingProxyType(dict(self._requests)),
            retries=MappingProxyType(dict(self._retries)),
            rate_limit_wait=self._rate_limit_wait,
        )

    @property
    def request_counts(self) -> Mapping[str, int]:
        """HTTP requests sent per operation, retries included (a snapshot)."""
        return MappingProxyType(dict(self._requests))

    async def call(self, operation_name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Send one API request, retrying transient failures.

        Each attempt first takes a token from the operation's rate limit, then
        is signed afresh, so a retry carries a new timestamp and signature.

        Returns:
            The parsed response, as botocore returns it, including
            ``ResponseMetadata``.

        Raises:
            botocore.exceptions.ParamValidationError: ``parameters`` do not
                match the operation's input shape. Nothing was sent.
            AwsServiceError: The service returned an error that is not
                retryable, or every attempt failed with a retryable one.
            httpx.TransportError: The last attempt timed out or lost its
                connection. The request may have taken effect.
            trio.ClosedResourceError: The client is not open.
        """
        setup = self._require_setup()
        operation = setup.service_model.operation_model(operation_name)
        validate_parameters(dict(parameters), operation.input_shape)
        request_dict = self._serializer.serialize_to_request(dict(parameters), operation)

        attempt = 1
        unknown_outcome = False
        while True:
            await self._wait_for_token(operation_name)
            try:
                return await self._send_once(setup, operation, request_dict)
            except (AwsServiceError, *RETRYABLE_TRANSPORT_ERRORS) as error:
                if isinstance(error, AwsServiceError):
                    error.after_unknown_outcome = unknown_outcome
                    unknown_outcome = unknown_outcome or error.server_side
                else:
                    unknown_outcome = True
                if attempt >= self._retry.max_attempts or not is_retryable(error):
                    raise
                delay = self._retry.backoff(attempt, self._jitter_random)
                self._log_retry(operation_name, attempt, error, delay)

            self._retries[operation_name] += 1
            attempt += 1
            await trio.sleep(delay)

    def _require_setup(self) -> ServiceSetup:
        if self._setup is None or self._closed:
            msg = "this AWS client is not open: use 'async with' or await open() first"
            raise trio.ClosedResourceError(msg)
        return self._setup

    async def _wait_for_token(self, operation_name: str) -> None:
        bucket = self._buckets.get(operation_name)
        if bucket is None:
            limit = self._rate_limits.get(operation_name, self._default_rate_limit)
            if limit is None:
                return
            bucket = self._buckets[operation_name] = TokenBucket(limit)
        self._rate_limit_wait += await bucket.acquire()

    async def _send_once(
        self,
        setup: ServiceSetup,
        operation: OperationModel,
        request_dict: Mapping[str, Any],
    ) -> dict[str, Any]:
        prepared = await self._sign(setup, request_dict)
        assert self._http_client is not None
        http_request = self._http_client.build_request(
            prepared.method,
            prepared.url,
            headers=list(prepared.headers.items()),
            content=prepared.body,
        )

        self._requests[operation.name] += 1
        response = await self._http_client.send(http_request)

        raw_response = {
            "status_code": response.status_code,
            "headers": HeadersDict(response.headers.items()),
            "body": response.content,
        }
        parsed = self._parser.parse(raw_response, operation.output_shape)
        if "Error" in parsed or response.status_code >= 300:
            parsed = _parse_xml_error(raw_response, operation) or parsed
            raise _service_error(operation.name, response.status_code, parsed)
        return parsed

    async def _sign(self, setup: ServiceSetup, request_dict: Mapping[str, Any]) -> AWSPreparedRequest:
        # A fresh request object per attempt: SigV4Auth adds its headers in
        # place, and each attempt needs its own X-Amz-Date and signature.
        attempt_dict = dict(request_dict, headers=dict(request_dict["headers"]))
        prepare_request_dict(attempt_dict, endpoint_url=setup.endpoint_url, user_agent=_USER_AGENT)
        aws_request = create_request_object(attempt_dict)

        credentials = await freeze_credentials(setup.credentials)
        signing_name = setup.service_model.signing_name or setup.service_model.endpoint_prefix
        SigV4Auth(credentials, signing_name, self.region).add_auth(aws_request)
        return aws_request.prepare()

    def _log_retry(self, operation_name: str, attempt: int, error: Exception, delay: float) -> None:
        if isinstance(error, AwsServiceError):
            error_code, status_code = error.code, error.status_code
        else:
            error_code, status_code = type(error).__name__, None
        logger.warning(
            "aws.request.retrying",
            service=self.service_name,
            operation=operation_name,
            attempt=attempt,
            max_attempts=self._retry.max_attempts,
            error_code=error_code,
            status_code=status_code,
            delay=round(delay, 3),
        )


def _parse_xml_error(raw_response: Mapping[str, Any], operation: OperationModel) -> dict[str, Any] | None:
    """Parse an XML error body, which the JSON parser reports only by status.

    Some front ends respond to JSON-protocol requests with an XML error document,
    and moto 5.2.5 does so when it rejects a signature. Returns None unless
    the body is XML that names an error code.
    """
    if not raw_response["body"].lstrip().startswith(b"<"):
        return None
    try:
        parsed = create_parser("query").parse(raw_response, operation.output_shape)
    except ResponseParserError:
        return None
    code = parsed.get("Error", {}).get("Code")
    if not code or code == str(raw_response["status_code"]):
        return None
    return parsed


def _service_error(operation_name: str, status_code: int, parsed: Mapping[str, Any]) -> AwsServiceError:
    error = parsed.get("Error", {})
    metadata = parsed.get("ResponseMetadata", {})
    return AwsServiceError(
        operation=operation_name,
        code=str(error.get("Code") or status_code),
        message=str(error.get("Message") or ""),
        status_code=status_code,
        request_id=metadata.get("RequestId"),
    )
