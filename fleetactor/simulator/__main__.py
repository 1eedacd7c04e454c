"""Run the ECS simulator: ``python -m fleetactor.simulator --port 8700``."""

import sys

from fleetactor.simulator._cli import simulate_ecs_main

if __name__ == "__main__":
    sys.exit(simulate_ecs_main(sys.argv[1:]))
