"""The ``fleetactor`` command line: demo, burst, simulate-ecs and audit."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Sequence

import fleetactor

from fleetactor.cli import _audit, _burst, _demo, _simulate
from fleetactor.cli._arguments import ArgumentParser, UsageError, print_error
from fleetactor.cli._burst import BurstSettings, run_burst
from fleetactor.cli._demo import Scenario, run_scenario, run_scenario_async

__all__ = ["BurstSettings", "Scenario", "build_parser", "main", "run_burst", "run_scenario", "run_scenario_async"]

DESCRIPTION = """\
Keep a fleet of ephemeral ECS workers under a hard cap, and check that it
held. Run 'fleetactor COMMAND --help' for the options of each command."""


def _package_version() -> str:
    """Return ``fleetactor.__version__`` when the package defines it, else the installed distribution's version."""
    version = getattr(fleetactor, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version("fleetactor")
    except importlib.metadata.PackageNotFoundError:
        # Run from a source tree that was never installed.
        return "unknown (not installed)"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="fleetactor", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _demo.add_parser(subparsers)
    _burst.add_parser(subparsers)
    _simulate.add_parser(subparsers)
    _audit.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit status.

    Bad input prints one line to stderr and returns 2.
    """
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
        return arguments.handler(arguments)
    except SystemExit as exit_request:
        # argparse exits for --help (0) and for bad input (2).
        return exit_request.code if isinstance(exit_request.code, int) else 2
    except UsageError as error:
        print_error(f"fleetactor {arguments.command}", str(error))
        return 2
    except KeyboardInterrupt:
        print_error("fleetactor", "interrupted")
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``fleetactor demo --json | head``).
        # Point stdout at /dev/null so the interpreter's final flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
