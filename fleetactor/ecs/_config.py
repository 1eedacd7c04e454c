"""Region, endpoint and credentials from arguments, environment and AWS profiles.

A botocore session reads the standard sources: ``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID`` and friends, ``AWS_PROFILE``, the shared config and
credentials files, and the rest of botocore's credential provider chain.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

import botocore.exceptions
import botocore.session
import trio
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.endpoint_provider import EndpointProvider
from botocore.model import ServiceModel
from botocore.utils import ensure_boolean, validate_region_name

from fleetactor.ecs._errors import EcsConfigError

__all__ = [
    "ServiceSetup",
    "check_static_credentials",
    "freeze_credentials",
    "load_service_setup",
    "resolve_region",
]

_REGION_HELP = (
    "pass region=..., set AWS_REGION or AWS_DEFAULT_REGION, or set 'region' in the AWS config profile"
)
_CREDENTIALS_HELP = (
    "pass credentials=botocore.credentials.Credentials(...), set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or select a profile with AWS_PROFILE or profile=..."
)


def resolve_region(region: str | None, session: botocore.session.Session) -> str:
    """Return the region from the argument, ``AWS_REGION``, or the session.

    botocore itself reads only ``AWS_DEFAULT_REGION`` and the profile.
    ``AWS_REGION`` is checked first because ECS and Lambda set it in the
    environment of every task and function.

    Raises:
        EcsConfigError: No region is configured, the region is not a valid
            host label, or the selected profile does not exist.
    """
    if region is None:
        region = os.environ.get("AWS_REGION") or None
    if region is None:
        try:
            region = session.get_config_variable("region")
        except botocore.exceptions.ProfileNotFound as error:
            msg = f"AWS profile not found: {error}; fix AWS_PROFILE or profile=..."
            raise EcsConfigError(msg) from error
    if not region:
        msg = f"no AWS region is configured: {_REGION_HELP}"
        raise EcsConfigError(msg)

    try:
        validate_region_name(region)
    except botocore.exceptions.InvalidRegionError as error:
        msg = f"invalid AWS region {region!r}: a region is a name such as 'us-east-1'"
        raise EcsConfigError(msg) from error
    return region


@dataclass(frozen=True)
class ServiceSetup:
    """Service model, endpoint and credentials, loaded once when a client opens."""

    service_model: ServiceModel
    endpoint_url: str
    credentials: Credentials
    ssl_context: ssl.SSLContext | None


def load_service_setup(
    service_name: str,
    session: botocore.session.Session,
    region: str,
    endpoint_url: str | None,
    credentials: Credentials | None,
) -> ServiceSetup:
    """Load the service model, pick the endpoint and find credentials.

    This reads files and may contact a credential source (the ECS container
    endpoint, an SSO cache, a credential process), so callers run it in a
    worker thread.

    Raises:
        EcsConfigError: The service is unknown to botocore, it does not speak
            the AWS JSON protocol, or no credentials were found.
    """
    try:
        service_model = session.get_service_model(service_name)
    except botocore.exceptions.UnknownServiceError as error:
        msg = f"botocore has no model for AWS service {service_name!r}"
        raise EcsConfigError(msg) from error
    if service_model.protocol != "json":
        msg = (
            f"AWS service {service_name!r} uses the {service_model.protocol!r} protocol; "
            "this client speaks only the AWS JSON protocol"
        )
        raise EcsConfigError(msg)

    return ServiceSetup(
        service_model=service_model,
        endpoint_url=_resolve_endpoint_url(session, service_model, region, endpoint_url),
        credentials=credentials if credentials is not None else _load_credentials(session),
        ssl_context=_load_ssl_context(session),
    )


def _configured_endpoint_url(session: botocore.session.Session, service_model: ServiceModel) -> str | None:
    # botocore reads the same two variables when it creates a client. The
    # services section of the shared config file is not read here.
    if ensure_boolean(session.get_config_variable("ignore_configured_endpoint_urls") or False):
        return None
    service_variable = "AWS_ENDPOINT_URL_" + service_model.service_id.upper().replace(" ", "_")
    return os.environ.get(service_variable) or os.environ.get("AWS_ENDPOINT_URL") or None


def _resolve_endpoint_url(
    session: botocore.session.Session,
    service_model: ServiceModel,
    region: str,
    endpoint_url: str | None,
) -> str:
    if endpoint_url is None:
        endpoint_url = _configured_endpoint_url(session, service_model)

    loader = session.get_component("data_loader")
    provider = EndpointProvider(
        ruleset_data=loader.load_service_model(service_model.service_name, "endpoint-rule-set-1"),
        partition_data=loader.load_data("partitions"),
    )
    parameters: dict[str, object] = {
        "Region": region,
        "UseFIPS": ensure_boolean(session.get_config_variable("use_fips_endpoint") or False),
        "UseDualStack": ensure_boolean(session.get_config_variable("use_dualstack_endpoint") or False),
    }
    if endpoint_url is not None:
        parameters["Endpoint"] = endpoint_url
    try:
        return provider.resolve_endpoint(**parameters).url
    except botocore.exceptions.EndpointProviderError as error:
        msg = f"no {service_model.service_name} endpoint for region {region!r}: {error}; pass endpoint_url=..."
        raise EcsConfigError(msg) from error


def _load_credentials(session: botocore.session.Session) -> Credentials:
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        msg = f"loading AWS credentials failed: {error}; {_CREDENTIALS_HELP}"
        raise EcsConfigError(msg) from error
    if credentials is None:
        msg = f"no AWS credentials found: {_CREDENTIALS_HELP}"
        raise EcsConfigError(msg)
    return credentials


def _load_ssl_context(session: botocore.session.Session) -> ssl.SSLContext | None:
    # AWS_CA_BUNDLE or ca_bundle in the profile replaces the default trust store.
    ca_bundle = session.get_config_variable("ca_bundle")
    if not ca_bundle:
        return None
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except OSError as error:
        msg = f"cannot read the CA bundle {ca_bundle!r}: {error}; fix AWS_CA_BUNDLE or ca_bundle in the profile"
        raise EcsConfigError(msg) from error


def check_static_credentials(credentials: Credentials) -> None:
    """Reject static credentials that lack a key id or secret.

    Refreshable credentials are not checked: reading their fields would fetch
    them, which may block.

    Raises:
        EcsConfigError: The access key id or the secret access key is empty.
    """
    if isinstance(credentials, RefreshableCredentials):
        return
    if not credentials.access_key or not credentials.secret_key:
        msg = f"the credentials need both an access key id and a secret access key: {_CREDENTIALS_HELP}"
        raise EcsConfigError(msg)


async def freeze_credentials(credentials: Credentials) -> ReadOnlyCredentials:
    """Return a consistent snapshot of ``credentials`` for signing one request.

    Refreshable credentials that are due for a refresh are refreshed in a
    worker thread, because botocore refreshes them with blocking I/O.
    """
    if isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed():
        return await trio.to_thread.run_sync(credentials.get_frozen_credentials)
    return credentials.get_frozen_credentials()
