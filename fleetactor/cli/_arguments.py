"""Argument parsing: a parser that reports errors on one line, and checked value types."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

# The largest --requests of demo and burst. Each request uses a trio task
# and a ticket until it ends, so a mistyped count fails at once instead of
# filling memory.
MAX_REQUESTS = 1_000_000


class UsageError(Exception):
    """Bad input found after parsing; the CLI prints the message and exits with status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` that reports a usage error as one line on stderr, exit status 2.

    Plain argparse prints the usage text before the error. One line is easier
    to read in a log and to match in a script, and ``--help`` still shows the
    usage.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _number(text: str) -> float:
    value = float(text)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(text)
    return value


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """Return an argparse type for whole numbers in [minimum, maximum]."""
    allowed = f"a whole number >= {minimum}" if maximum is None else f"a whole number from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {allowed}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {allowed}")
        return value

    parse.__name__ = "integer"
    return parse


def seconds(*, allow_zero: bool = True) -> Callable[[str], float]:
    """Return an argparse type for a finite number of seconds, >= 0 or > 0."""
    allowed = "a number of seconds >= 0" if allow_zero else "a number of seconds > 0"

    def parse(text: str) -> float:
        try:
            value = _number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {allowed}") from None
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {allowed}")
        return value

    parse.__name__ = "seconds"
    return parse


def probability(text: str) -> float:
    """Parse a probability from 0 to 1."""
    try:
        value = _number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a probability from 0 to 1") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a probability from 0 to 1")
    return value


def non_empty(text: str) -> str:
    """Parse a string that is not empty or blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must not be empty")
    return text


def print_error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
