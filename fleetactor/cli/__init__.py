"""The ``fleetactor`` command line: demo, burst, simulate-ecs and audit."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fleetactor.cli import _audit
from fleetactor.cli._arguments import ArgumentParser, UsageError, print_error

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Keep a fleet of ephemeral ECS workers under a hard cap, and check that it
held. Run 'fleetactor COMMAND --help' for the options of each command."""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="fleetactor", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _audit.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit status.

    Bad input prints one line to stderr and returns 2.
    """
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        return exit_request.code if isinstance(exit_request.code, int) else 2
    try:
        return arguments.handler(arguments)
    except UsageError as error:
        print_error(f"fleetactor {arguments.command}", str(error))
        return 2
    except KeyboardInterrupt:
        print_error(f"fleetactor {arguments.command}", "interrupted")
        return 130
