"""The ``fleetactor simulate-ecs`` subcommand: serve the ECS simulator over HTTP."""

from __future__ import annotations

import argparse
import sys

import trio

from fleetactor.cli._logging import configure_logging
from fleetactor.simulator import add_simulator_arguments, config_from_arguments, run_simulate_ecs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate-ecs",
        help="serve an eventually consistent ECS control plane over HTTP, for moto-like tests",
        description=(
            "Serve the built-in ECS simulator over HTTP until interrupted (Ctrl+C). It speaks the ECS JSON "
            "protocol, so boto3, the AWS CLI and 'fleetactor burst' can use it as --endpoint-url. It prints the URL "
            "it listens on; the simulator's own counts are at GET /_simulator/ground-truth. Times are seconds of "
            "real time."
        ),
    )
    add_simulator_arguments(parser)
    parser.set_defaults(handler=run, parser=parser)


def run(arguments: argparse.Namespace) -> int:
    try:
        config_from_arguments(arguments)
    except ValueError as error:
        arguments.parser.error(str(error))

    try:
        with configure_logging(None, diagnostics=sys.stderr):
            trio.run(run_simulate_ecs, arguments)
    except KeyboardInterrupt:
        return 0
    except BaseExceptionGroup as group:
        interrupts, others = group.split(KeyboardInterrupt)
        if others is None:
            return 0
        bind_errors, rest = others.split(OSError)
        if bind_errors is None or rest is not None:
            raise
        error = bind_errors.exceptions[0]
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        arguments.parser.error(f"argument --port: cannot listen on {arguments.host}:{arguments.port}: {error}")
    return 0
