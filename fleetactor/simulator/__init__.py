"""An eventually consistent Amazon ECS control plane for tests and demonstrations.

The simulator speaks the ECS JSON 1.1 protocol, so botocore, boto3 and the AWS
CLI accept its responses. Unlike other test doubles it lists a new task only
after a visibility lag, as ECS does, and it keeps its own ground truth of how
many tasks really ran at once.
"""

from fleetactor.simulator._cli import (
    add_simulator_arguments,
    config_from_arguments,
    run_simulate_ecs,
    simulate_ecs_main,
)
from fleetactor.simulator._config import AmbiguousResponse, RunTimeDistribution, SimulatorConfig
from fleetactor.simulator._ground_truth import GroundTruth, TimelinePoint
from fleetactor.simulator._operations import CAPACITY_UNAVAILABLE_REASON
from fleetactor.simulator._protocol import GROUND_TRUTH_PATH
from fleetactor.simulator._server import asgi_app, serve
from fleetactor.simulator._simulator import EcsSimulator
from fleetactor.simulator._transport import SimulatorTransport

__all__ = [
    "CAPACITY_UNAVAILABLE_REASON",
    "GROUND_TRUTH_PATH",
    "AmbiguousResponse",
    "EcsSimulator",
    "GroundTruth",
    "RunTimeDistribution",
    "SimulatorConfig",
    "SimulatorTransport",
    "TimelinePoint",
    "add_simulator_arguments",
    "asgi_app",
    "config_from_arguments",
    "run_simulate_ecs",
    "serve",
    "simulate_ecs_main",
]
