"""Command-line options and entry point of the served ECS simulator."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import trio

from fleetactor.simulator._config import (
    NAME_PATTERN,
    STARTED_BY_PATTERN,
    AmbiguousResponse,
    RunTimeDistribution,
    SimulatorConfig,
)
from fleetactor.simulator._server import serve
from fleetactor.simulator._simulator import EcsSimulator

__all__ = ["add_simulator_arguments", "config_from_arguments", "run_simulate_ecs", "simulate_ecs_main"]

# The largest --foreign-tasks. The simulator creates every foreign task at the
# start, so a mistyped count fails at once instead of filling memory.
MAX_FOREIGN_TASKS = 100_000

# SimulatorConfig fields set directly from the option of the same name.
_DIRECT_FIELDS = (
    "seed",
    "region",
    "account_id",
    "cluster_name",
    "epoch",
    "latency",
    "visibility_lag",
    "visibility_lag_max",
    "describe_lag",
    "boot_time",
    "run_time",
    "run_time_distribution",
    "stop_time",
    "stopped_task_retention",
    "launch_failure_rate",
    "ambiguous_rate",
    "ambiguous_response",
    "rate_limits",
    "list_failure_rate",
    "foreign_tasks",
    "foreign_run_time",
    "foreign_started_by",
    "foreign_family",
    "idempotency",
)

# Options whose name is not the field name with hyphens.
_OPTION_NAMES = {"cluster_name": "--cluster", "rate_limits": "--no-rate-limits", "idempotency": "--no-idempotency"}

# Metavar and help text of the simulator options that ``fleetactor demo``
# also defines. Both commands add them with add_knob_argument, so each option
# is described once.
_KNOB_HELP = {
    "--visibility-lag": (
        "S",
        "seconds a new task stays out of ListTasks; 'never' keeps every task out (default: %(default)s)",
    ),
    "--visibility-lag-max": (
        "S",
        "draw each task's lag uniformly from --visibility-lag to S seconds (default: a fixed lag)",
    ),
    "--boot-time": ("S", "seconds from RunTask to RUNNING, half PROVISIONING and half PENDING (default: %(default)s)"),
    "--run-time": (
        "S",
        "seconds a task runs before its work ends, or their mean with --run-time-distribution "
        "exponential; 'forever' runs until StopTask (default: %(default)s)",
    ),
    "--stop-time": (
        "S",
        "seconds from the end of the work or StopTask to STOPPED, holding capacity meanwhile (default: %(default)s)",
    ),
    "--foreign-tasks": (
        "N",
        f"tasks started by someone else, RUNNING and listed from the start, at most {MAX_FOREIGN_TASKS} "
        "(default: %(default)s)",
    ),
    "--launch-failure-rate": (
        "P",
        "probability from 0 to 1 that a RunTask task comes back in 'failures' for lack of capacity "
        "(default: %(default)s)",
    ),
    "--ambiguous-rate": (
        "P",
        "probability from 0 to 1 that RunTask creates its tasks but the caller receives no response "
        "(default: %(default)s)",
    ),
    "--throttle-rate": (
        "P",
        "probability from 0 to 1 of ThrottlingException on RunTask, ListTasks and DescribeTasks "
        "(default: %(default)s)",
    ),
    "--list-failure-rate": ("P", "probability from 0 to 1 that ListTasks fails with HTTP 503 (default: %(default)s)"),
}


def add_knob_argument(
    group: argparse._ArgumentGroup,
    option: str,
    *,
    type: Callable[[str], Any],
    default: Any,
    help: str | None = None,
) -> None:
    """Add ``option``, one of the simulator options that ``fleetactor demo`` has too, to ``group``.

    ``type`` sets the accepted values and the error message, so each command
    keeps its own. ``help`` replaces the shared help where the option accepts
    other values or means more in that command.
    """
    metavar, shared_help = _KNOB_HELP[option]
    group.add_argument(option, type=type, default=default, metavar=metavar, help=shared_help if help is None else help)


def visibility_lag_max_error(lag: float, lag_max: float | None) -> str | None:
    """Return the error message for a --visibility-lag-max below --visibility-lag, or None when it is valid.

    The message starts with the value of ``lag_max``, so the caller puts the
    option name in front of it.
    """
    if lag_max is None or lag_max >= lag:
        return None
    shown_lag = "never" if math.isinf(lag) else f"{lag:g}"
    return f"{lag_max:g} is below --visibility-lag {shown_lag}; it must be at least that"


def add_simulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per SimulatorConfig knob, plus ``--host`` and ``--port``.

    Each option's type check raises an argparse error that names the option,
    the value and what is allowed. ``config_from_arguments`` turns the parsed
    namespace into a SimulatorConfig.
    """
    defaults = SimulatorConfig()
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host",
        type=_host,
        default="127.0.0.1",
        help="address to listen on (default: %(default)s)",
    )
    server.add_argument(
        "--port", type=_port, default=0, metavar="N", help="TCP port to listen on; 0 picks a free port (default: 0)"
    )

    plane = parser.add_argument_group("control plane")
    plane.add_argument(
        "--seed",
        type=_bounded_integer(0),
        default=defaults.seed,
        metavar="N",
        help="seed of the one random generator behind every lag, run time and fault (default: %(default)s)",
    )

    plane.add_argument("--region", default=defaults.region, help="AWS region in ARNs (default: %(default)s)")

    plane.add_argument(
        "--account-id",
        default=defaults.account_id,
        metavar="ID",
        help="12-digit account id in ARNs (default: %(default)s)",
    )

    plane.add_argument(
        "--cluster",
        dest="cluster_name",
        type=_name,
        default=defaults.cluster_name,
        metavar="NAME",
        help="cluster that exists from the start and contains the foreign tasks (default: %(default)s)",
    )

    plane.add_argument(
        "--task-definition",
        dest="task_definition_families",
        type=_name,
        action="append",
        default=[],
        metavar="FAMILY",
        help="register FAMILY at revision 1 at the start (awsvpc, cpu 256, memory 512, one container named "
        "FAMILY); repeat the option for more families",
    )

    plane.add_argument(
        "--epoch",
        type=_seconds(),
        default=None,
        metavar="S",
        help="Unix time in seconds of simulated time zero, for timestamps (default: the wall clock at start)",
    )

    plane.add_argument(
        "--latency",
        type=_seconds(),
        default=defaults.latency,
        metavar="S",
        help="seconds each ECS request waits before it is handled (default: %(default)s)",
    )

    _add_lifecycle_arguments(parser, defaults)
    _add_foreign_arguments(parser, defaults)
    _add_fault_arguments(parser, defaults)


def _add_lifecycle_arguments(parser: argparse.ArgumentParser, defaults: SimulatorConfig) -> None:
    lifecycle = parser.add_argument_group("task lifecycle")
    add_knob_argument(lifecycle, "--visibility-lag", type=_seconds("never"), default=defaults.visibility_lag)
    add_knob_argument(lifecycle, "--visibility-lag-max", type=_seconds(), default=None)

    lifecycle.add_argument(
        "--describe-lag",
        type=_seconds(),
        default=defaults.describe_lag,
        metavar="S",
        help="seconds a new task stays MISSING in DescribeTasks (default: %(default)s)",
    )

    add_knob_argument(lifecycle, "--boot-time", type=_seconds(), default=defaults.boot_time)
    add_knob_argument(lifecycle, "--run-time", type=_seconds("forever"), default=defaults.run_time)

    lifecycle.add_argument(
        "--run-time-distribution",
        choices=[member.value for member in RunTimeDistribution],
        default=defaults.run_time_distribution.value,
        help="how run times are drawn from --run-time (default: %(default)s)",
    )

    add_knob_argument(lifecycle, "--stop-time", type=_seconds(), default=defaults.stop_time)

    lifecycle.add_argument(
        "--stopped-task-retention",
        type=_seconds("forever"),
        default=defaults.stopped_task_retention,
        metavar="S",
        help="seconds a STOPPED task stays in DescribeTasks before it is reported MISSING (default: %(default)s)",
    )


def _add_foreign_arguments(parser: argparse.ArgumentParser, defaults: SimulatorConfig) -> None:
    foreign = parser.add_argument_group("foreign tasks")
    add_knob_argument(
        foreign, "--foreign-tasks", type=_bounded_integer(0, MAX_FOREIGN_TASKS), default=defaults.foreign_tasks
    )

    foreign.add_argument(
        "--foreign-run-time",
        type=_seconds("forever"),
        default=defaults.foreign_run_time,
        metavar="S",
        help="seconds the foreign tasks keep running from the start (default: forever)",
    )

    foreign.add_argument(
        "--foreign-started-by",
        type=_started_by,
        default=defaults.foreign_started_by,
        metavar="TEXT",
        help="startedBy of the foreign tasks (default: %(default)s)",
    )

    foreign.add_argument(
        "--foreign-family",
        type=_name,
        default=defaults.foreign_family,
        metavar="FAMILY",
        help="task definition family of the foreign tasks (default: %(default)s)",
    )


def _add_fault_arguments(parser: argparse.ArgumentParser, defaults: SimulatorConfig) -> None:
    faults = parser.add_argument_group("faults")
    add_knob_argument(faults, "--launch-failure-rate", type=_probability, default=defaults.launch_failure_rate)

    faults.add_argument(
        "--launch-outage",
        type=_seconds(),
        nargs=2,
        default=None,
        metavar=("START", "END"),
        help="every RunTask task fails for lack of capacity from START to END seconds (default: no outage)",
    )

    add_knob_argument(faults, "--ambiguous-rate", type=_probability, default=defaults.ambiguous_rate)

    faults.add_argument(
        "--ambiguous-response",
        choices=[member.value for member in AmbiguousResponse],
        default=defaults.ambiguous_response.value,
        help="what an ambiguous RunTask returns: HTTP 500, or a connection dropped before the body "
        "(default: %(default)s)",
    )

    add_knob_argument(faults, "--throttle-rate", type=_probability, default=0.0)

    for operation in ("run-task", "list-tasks", "describe-tasks"):
        faults.add_argument(
            f"--{operation}-throttle-rate",
            type=_probability,
            default=None,
            metavar="P",
            help=f"probability from 0 to 1 of ThrottlingException on {_operation_name(operation)} "
            f"(default: --throttle-rate)",
        )

    faults.add_argument(
        "--no-rate-limits",
        dest="rate_limits",
        action="store_false",
        help="turn off the ECS token buckets (RunTask 20 calls and 100 Fargate tasks burst, 20 per second)",
    )

    add_knob_argument(faults, "--list-failure-rate", type=_probability, default=defaults.list_failure_rate)

    faults.add_argument(
        "--no-idempotency",
        dest="idempotency",
        action="store_false",
        help="ignore RunTask clientToken, so a retried call starts its tasks again",
    )


def config_from_arguments(namespace: argparse.Namespace) -> SimulatorConfig:
    """Build the SimulatorConfig from options added by ``add_simulator_arguments``.

    Raises:
        ValueError: when two options conflict, such as --visibility-lag-max
            below --visibility-lag. The message names the options; pass it to
            ``parser.error``.
    """
    values: dict[str, Any] = {name: getattr(namespace, name) for name in _DIRECT_FIELDS}
    values["task_definition_families"] = tuple(namespace.task_definition_families)

    for operation in ("run_task", "list_tasks", "describe_tasks"):
        rates = (getattr(namespace, f"{operation}_throttle_rate"), namespace.throttle_rate, 0.0)
        values[f"{operation}_throttle_rate"] = next(rate for rate in rates if rate is not None)

    lag_max_error = visibility_lag_max_error(namespace.visibility_lag, namespace.visibility_lag_max)
    if lag_max_error is not None:
        msg = f"--visibility-lag-max {lag_max_error}"
        raise ValueError(msg)
    if namespace.launch_outage is not None:
        start, end = namespace.launch_outage
        if start >= end:
            msg = f"--launch-outage {start:g} {end:g}: START must be less than END"
            raise ValueError(msg)
        values["launch_outage"] = (start, end)

    try:
        return SimulatorConfig(**values)
    except ValueError as error:
        raise ValueError(_with_option_names(str(error))) from None


async def run_simulate_ecs(namespace: argparse.Namespace) -> None:
    """Serve a simulator built from ``namespace``, print its URL, and run until cancelled.

    Raises:
        ValueError: when the options conflict (see ``config_from_arguments``).
        OSError: when the address cannot be bound, inside an exception group.
    """
    simulator = EcsSimulator(config_from_arguments(namespace))
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve, simulator, namespace.host, namespace.port)
        print(f"fleetactor ECS simulator listening on {url}", flush=True)


def simulate_ecs_main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, serve the simulator until interrupted, and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m fleetactor.simulator",
        description="Serve an eventually consistent Amazon ECS control plane over HTTP until interrupted.",
    )
    add_simulator_arguments(parser)
    namespace = parser.parse_args(argv)
    try:
        config_from_arguments(namespace)
    except ValueError as error:
        parser.error(str(error))

    try:
        trio.run(run_simulate_ecs, namespace)
    except KeyboardInterrupt:
        return 0
    except Exception as error:
        bind_errors = [leaf for leaf in _leaf_exceptions(error) if isinstance(leaf, OSError)]
        if not bind_errors:
            raise
        print(f"error: cannot listen on {namespace.host}:{namespace.port}: {bind_errors[0]}", file=sys.stderr)
        return 1
    except BaseException as error:
        # trio may deliver Ctrl+C wrapped in an exception group.
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in _leaf_exceptions(error)):
            return 0
        raise
    return 0


def _leaf_exceptions(error: BaseException) -> list[BaseException]:
    nested = getattr(error, "exceptions", None)
    if nested is None:
        return [error]
    return [leaf for child in nested for leaf in _leaf_exceptions(child)]


def _with_option_names(message: str) -> str:
    # Longer names first, so visibility_lag_max is not read as visibility_lag.
    for field_name in sorted(_DIRECT_FIELDS, key=len, reverse=True):
        option = _OPTION_NAMES.get(field_name, "--" + field_name.replace("_", "-"))
        message = message.replace(f"SimulatorConfig.{field_name}", option)
    return message


def _operation_name(option_prefix: str) -> str:
    return "".join(word.capitalize() for word in option_prefix.split("-"))


def _seconds(infinite_word: str | None = None) -> Callable[[str], float]:
    allowed = "a number of seconds >= 0"
    if infinite_word is not None:
        allowed += f", or '{infinite_word}'"

    def parse(text: str) -> float:
        if infinite_word is not None and text.strip().lower() in (infinite_word, "inf"):
            return math.inf
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 <= value < math.inf:
            msg = f"invalid value {text!r}: expected {allowed}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        msg = f"invalid value {text!r}: expected a probability from 0 to 1"
        raise argparse.ArgumentTypeError(msg)
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        msg = f"invalid value {text!r}: expected an integer"
        raise argparse.ArgumentTypeError(msg) from None


def _bounded_integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            msg = f"invalid value {text!r}: expected {allowed}"
            raise argparse.ArgumentTypeError(msg) from None
        if value < minimum or (maximum is not None and value > maximum):
            msg = f"invalid value {text!r}: expected {allowed}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        msg = f"invalid value {text!r}: expected a TCP port from 0 to 65535"
        raise argparse.ArgumentTypeError(msg)
    return value


def _host(text: str) -> str:
    # An empty host would bind every interface, not the loopback default.
    if not text.strip():
        msg = f"invalid value {text!r}: expected a host name or IP address, such as 127.0.0.1"
        raise argparse.ArgumentTypeError(msg)
    return text


def _name(text: str) -> str:
    if not NAME_PATTERN.fullmatch(text):
        msg = f"invalid value {text!r}: expected 1 to 255 letters, numbers, hyphens or underscores"
        raise argparse.ArgumentTypeError(msg)
    return text


def _started_by(text: str) -> str:
    if not STARTED_BY_PATTERN.fullmatch(text):
        msg = f"invalid value {text!r}: expected 1 to 128 letters, numbers, hyphens, slashes or underscores"
        raise argparse.ArgumentTypeError(msg)
    return text
