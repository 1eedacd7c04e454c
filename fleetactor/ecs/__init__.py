"""The ECS backend: an async AWS JSON client and a provisioner for ECS tasks."""

from fleetactor.ecs._client import AwsJsonClient, ClientStatistics
from fleetactor.ecs._errors import AwsServiceError, EcsConfigError, InvalidJobOverridesError
from fleetactor.ecs._provisioner import DEFAULT_RATE_LIMIT, RUN_TASK_RATE_LIMIT, EcsProvisioner
from fleetactor.ecs._ratelimit import RateLimit, TokenBucket
from fleetactor.ecs._retry import RetryPolicy

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "RUN_TASK_RATE_LIMIT",
    "AwsJsonClient",
    "AwsServiceError",
    "ClientStatistics",
    "EcsConfigError",
    "EcsProvisioner",
    "InvalidJobOverridesError",
    "RateLimit",
    "RetryPolicy",
    "TokenBucket",
]
