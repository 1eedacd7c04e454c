"""The ``fleetactor burst`` subcommand: one burst through a fleet, in real time, against an ECS endpoint.

:func:`run_burst` contains the logic, so that other entry points and
further options (a journal, for example) can reuse it. Credentials come from botocore's usual
chain: environment variables, the shared files, or a profile.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

import structlog
import trio

from fleetactor import FleetClosedError, FleetConfig, Job, LaunchFailedError, open_fleet
from fleetactor.audit import percentile
from fleetactor.cli._arguments import MAX_REQUESTS, UsageError, integer, non_empty, seconds
from fleetactor.cli._logging import configure_logging
from fleetactor.cli._output import format_seconds, format_table, print_json
from fleetactor.ecs import AwsServiceError, EcsConfigError, EcsProvisioner
from fleetactor.journal import Journal, JournalError, JournalOwnerError, SqliteJournal

__all__ = ["BurstSettings", "run_burst"]

logger = structlog.get_logger(__name__)

LAUNCH_TYPES = ("FARGATE", "EC2", "EXTERNAL")

# --list-filter choices and the EcsProvisioner list_filter each one selects.
LIST_FILTERS = {"started-by": "started_by", "family": "family"}


@dataclass(frozen=True)
class BurstSettings:
    """Settings of one burst: the ECS target, the burst size and the fleet. Times are seconds.

    ``stop_after`` stops each worker with StopTask that many seconds after
    it started, for task definitions that never exit on their own (moto's
    tasks never do). ``timeout`` gives up on the burst after that many
    seconds; None waits for every worker to stop. ``list_filter`` selects
    the tasks that count against the cap, as ``EcsProvisioner`` does:
    ``"started_by"`` lists the tasks started by fleetactor, ``"family"``
    every task of the task definition's family.
    """

    endpoint_url: str
    region: str
    cluster: str
    task_definition: str
    launch_type: str = "FARGATE"
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    requests: int = 24
    max_workers: int = 16
    reconcile_interval: float = 5.0
    visibility_timeout: float = 30.0
    stop_after: float | None = None
    timeout: float | None = None
    list_filter: Literal["started_by", "family"] = "started_by"

    def provisioner(self) -> EcsProvisioner:
        return EcsProvisioner(
            self.cluster,
            self.task_definition,
            region=self.region,
            endpoint_url=self.endpoint_url,
            launch_type=self.launch_type,
            subnets=list(self.subnets),
            security_groups=list(self.security_groups),
            list_filter=self.list_filter,
        )


class BurstError(Exception):
    """The burst could not start: the endpoint, cluster or credentials are unusable."""


@dataclass
class _Outcomes:
    served: int = 0
    failed: int = 0
    stopped: int = 0
    # Seconds from submission until the worker's launch returned, per served request.
    waits_s: list[float] = field(default_factory=list)
    # "key: reason" of each failed request.
    failures: list[str] = field(default_factory=list)
    # Keys that an earlier run with the same journal had finished.
    skipped: int = 0

    def skip(self, key: str, end: str) -> None:
        self.skipped += 1
        if end == "stopped":
            self.served += 1
            self.stopped += 1
        else:
            self.failed += 1
            self.failures.append(f"{key}: {end} in an earlier run with this journal")


async def run_burst(
    settings: BurstSettings,
    *,
    journal: Journal | None = None,
    on_endpoint_checked: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Send ``settings.requests`` jobs (keys ``burst-0`` ...) through one fleet and wait for every worker to stop.

    Returns the figures of the run. ``journal`` is handed to ``open_fleet``.
    ``on_endpoint_checked`` is called once the first ListTasks call has
    succeeded, before anything is launched.

    Raises:
        BurstError: The ECS client cannot be configured, or the first
            ListTasks call fails, so nothing was launched.
    """
    try:
        provisioner = settings.provisioner()
        await provisioner.open()
    except (EcsConfigError, ValueError) as error:
        raise BurstError(str(error)) from None

    try:
        await _check_endpoint(provisioner, settings)
        if on_endpoint_checked is not None:
            on_endpoint_checked()
        return await _send_burst(settings, provisioner, journal)
    finally:
        await provisioner.aclose()


async def _check_endpoint(provisioner: EcsProvisioner, settings: BurstSettings) -> None:
    # One listing before the burst turns a wrong URL, cluster or credential
    # into one clear error instead of a fleet that waits for a first listing.
    try:
        await provisioner.list_running()
    except AwsServiceError as error:
        msg = f"ListTasks on cluster {settings.cluster!r} at {settings.endpoint_url} failed: {error.code}: {error.message}"
        raise BurstError(msg) from None
    except Exception as error:  # noqa: BLE001 - any failure here means the endpoint is unusable
        msg = f"ListTasks at {settings.endpoint_url} failed: {type(error).__name__}: {error}"
        raise BurstError(msg) from None


async def _send_burst(settings: BurstSettings, provisioner: EcsProvisioner, journal: Journal | None) -> dict[str, Any]:
    config = FleetConfig(
        max_workers=settings.max_workers,
        reconcile_interval=settings.reconcile_interval,
        visibility_timeout=settings.visibility_timeout,
        # A run that resumes a journal continues the same fleet, so its audit
        # events carry the same fleet id as the run that wrote the journal.
        fleet_id=None if journal is None else journal_fleet_id(settings),
    )
    outcomes = _Outcomes()
    started_at = trio.current_time()
    timed_out = False
    # Keys that an earlier run with the same journal finished are not sent again.
    finished = await journal.finished() if isinstance(journal, SqliteJournal) else {}

    async with open_fleet(provisioner, config, journal=journal) as fleet:

        async def handle(key: str) -> None:
            if key in finished:
                outcomes.skip(key, finished[key])
                return
            submitted_at = trio.current_time()
            try:
                ticket = await fleet.submit(Job(key=key))
                task_id = await ticket.wait_started()
            except (LaunchFailedError, FleetClosedError) as error:
                outcomes.failed += 1
                outcomes.failures.append(f"{key}: {error}")
                return
            outcomes.served += 1
            outcomes.waits_s.append(trio.current_time() - submitted_at)
            if settings.stop_after is not None:
                await trio.sleep(settings.stop_after)
                await _stop(provisioner, task_id, key)
            await ticket.wait_finished()
            outcomes.stopped += 1

        with trio.move_on_after(math.inf if settings.timeout is None else settings.timeout) as scope:
            async with trio.open_nursery() as nursery:
                for index in range(settings.requests):
                    nursery.start_soon(handle, f"burst-{index}")
        timed_out = scope.cancelled_caught
        statistics = fleet.statistics()

    calls = provisioner.statistics().requests
    waits = outcomes.waits_s
    return {
        "requests": settings.requests,
        "max_workers": settings.max_workers,
        "served": outcomes.served,
        "failed": outcomes.failed,
        "dropped": settings.requests - outcomes.served - outcomes.failed,
        "workers_stopped": outcomes.stopped,
        "run_task_calls": calls.get("RunTask", 0),
        "list_tasks_calls": calls.get("ListTasks", 0),
        "describe_tasks_calls": calls.get("DescribeTasks", 0),
        "peak_active": statistics.peak_active,
        "makespan_s": trio.current_time() - started_at,
        "max_wait_s": max(waits, default=None),
        "p95_wait_s": percentile(waits, 0.95),
        "timed_out": timed_out,
        "failures": outcomes.failures,
        "skipped": outcomes.skipped,
        "resumed": statistics.recovered,
    }


async def _stop(provisioner: EcsProvisioner, task_id: str, key: str) -> None:
    try:
        await provisioner.stop(task_id, "stopped by fleetactor burst --stop-after")
    except Exception as error:  # noqa: BLE001 - the worker keeps its slot until it stops by itself
        logger.warning("burst.stop_failed", key=key, task_id=task_id, error=f"{type(error).__name__}: {error}")


# The command line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "burst",
        help="send a burst of requests through one fleet against an ECS endpoint, in real time",
        description=(
            "Submit --requests distinct jobs (keys burst-0, burst-1, ...) to one fleet capped at --max-workers, "
            "launching ECS tasks at --endpoint-url, and exit when every worker has stopped. Credentials come from "
            "the AWS environment variables, shared files or profile. Exit status: 0 when every request was "
            "served and its worker stopped, 1 otherwise, 2 for bad input or an unusable endpoint."
        ),
    )
    target = parser.add_argument_group("ECS")
    target.add_argument("--endpoint-url", required=True, type=_endpoint_url, metavar="URL", help="ECS endpoint, for example http://127.0.0.1:5000 for moto or the served simulator")
    target.add_argument("--region", required=True, type=non_empty, metavar="REGION", help="AWS region to sign requests for")
    target.add_argument("--cluster", required=True, type=non_empty, metavar="NAME", help="cluster name or ARN")
    target.add_argument("--task-definition", required=True, type=non_empty, metavar="TD", help="task definition: family, family:revision or ARN")
    target.add_argument("--launch-type", choices=LAUNCH_TYPES, default="FARGATE", help="RunTask launch type (default: %(default)s)")
    target.add_argument(
        "--subnet", dest="subnets", action="append", default=[], type=non_empty, metavar="ID", help="subnet for the tasks' awsvpc network; repeat for more"
    )
    target.add_argument(
        "--security-group",
        dest="security_groups",
        action="append",
        default=[],
        type=non_empty,
        metavar="ID",
        help="security group for the tasks; repeat for more (needs --subnet)",
    )
    target.add_argument(
        "--list-filter",
        choices=tuple(LIST_FILTERS),
        default="started-by",
        help="which running tasks in the cluster count against the cap. started-by: tasks whose startedBy is "
        "fleetactor, which are this burst's, those an earlier run left and those of other fleetactor fleets that "
        "keep the default startedBy. family: every task of the --task-definition family, whoever started it "
        "(default: %(default)s)",
    )

    fleet = parser.add_argument_group("burst")
    fleet.add_argument(
        "--requests",
        type=integer(1, MAX_REQUESTS),
        default=24,
        metavar="N",
        help=f"distinct requests in the burst, at most {MAX_REQUESTS} (default: %(default)s)",
    )
    fleet.add_argument("--max-workers", type=integer(1), default=16, metavar="N", help="the cap on workers that run at once (default: %(default)s)")
    fleet.add_argument(
        "--reconcile-interval",
        type=seconds(allow_zero=False),
        default=5.0,
        metavar="S",
        help="seconds between two ListTasks calls of the fleet (default: %(default)s)",
    )
    fleet.add_argument(
        "--visibility-timeout",
        type=seconds(),
        default=30.0,
        metavar="S",
        help="seconds a launched task may stay out of ListTasks before the fleet checks it with DescribeTasks "
        "(default: %(default)s)",
    )
    fleet.add_argument(
        "--stop-after",
        type=seconds(),
        default=None,
        metavar="S",
        help="stop each worker with StopTask S seconds after it started, for tasks that never exit by themselves "
        "(default: wait for each task to stop on its own)",
    )
    fleet.add_argument(
        "--timeout",
        type=seconds(allow_zero=False),
        default=None,
        metavar="S",
        help="give up after S seconds and exit with status 1 (default: no limit)",
    )

    fleet.add_argument(
        "--journal",
        type=_journal_path,
        metavar="PATH",
        default=None,
        help=(
            "SQLite journal that makes the burst resumable: run the same command again after a crash and keys "
            "that finished are skipped, keys in flight are resumed with their launch ids, and the rest are sent "
            "(created when missing)"
        ),
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--audit-log",
        metavar="PATH",
        default=None,
        help="write the fleet's audit events to PATH as JSON lines, replacing the file; with --journal, "
        "add to the file instead, so one log covers every run that resumed the journal",
    )
    output.add_argument("--json", action="store_true", help="print the figures as one JSON object instead of a table")
    parser.set_defaults(handler=run, parser=parser)


def _endpoint_url(text: str) -> str:
    # Checked first, so that no message repeats a password: the URL appears in
    # errors, in the table header and in the journal's fleet name. Any "@" is
    # rejected, because without a scheme urlsplit does not find the user part.
    if "@" in text:
        msg = (
            "invalid value: the URL contains '@', the mark of a user name or password (user:password@host); "
            "give the URL without it and pass credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
        raise argparse.ArgumentTypeError(msg)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be an http:// or https:// URL with a host")
    return text


def _journal_path(text: str) -> str:
    # SQLite opens a private temporary database for "" and an in-memory one
    # for ":memory:". Neither survives the process, so a rerun could not resume.
    if not text.strip() or text == ":memory:":
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be the path of a database file")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give the path of a database file inside it")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"cannot create {text!r}: directory {parent} does not exist; create it first")
    return text


def settings_from_arguments(arguments: argparse.Namespace) -> BurstSettings:
    if arguments.security_groups and not arguments.subnets:
        arguments.parser.error("argument --security-group: needs at least one --subnet, because both go into the awsvpc network configuration")
    return BurstSettings(
        endpoint_url=arguments.endpoint_url,
        region=arguments.region,
        cluster=arguments.cluster,
        task_definition=arguments.task_definition,
        launch_type=arguments.launch_type,
        subnets=tuple(arguments.subnets),
        security_groups=tuple(arguments.security_groups),
        requests=arguments.requests,
        max_workers=arguments.max_workers,
        reconcile_interval=arguments.reconcile_interval,
        visibility_timeout=arguments.visibility_timeout,
        stop_after=arguments.stop_after,
        timeout=arguments.timeout,
        list_filter=LIST_FILTERS[arguments.list_filter],
    )


class _HeldStream:
    """A text stream that keeps what is written until :meth:`release`, then passes writes through.

    Retry warnings of a first ListTasks call that fails would precede its
    error message. Held until the endpoint works, they are dropped with the
    error instead.
    """

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._buffered: list[str] | None = []

    def write(self, text: str) -> int:
        if self._buffered is None:
            return self._target.write(text)
        self._buffered.append(text)
        return len(text)

    def flush(self) -> None:
        if self._buffered is None:
            self._target.flush()

    def release(self) -> None:
        buffered, self._buffered = self._buffered or [], None
        for text in buffered:
            self._target.write(text)
        self._target.flush()


def run(arguments: argparse.Namespace) -> int:
    settings = settings_from_arguments(arguments)
    diagnostics = _HeldStream(sys.stderr)
    burst = functools.partial(_run_with_journal, settings, arguments.journal, diagnostics.release)
    try:
        append = arguments.journal is not None
        with configure_logging(arguments.audit_log, diagnostics=diagnostics, append=append):  # type: ignore[arg-type]
            figures = trio.run(burst)
    except OSError as error:
        arguments.parser.error(f"argument --audit-log: cannot write {arguments.audit_log!r}: {error.strerror or error}")
    except JournalOwnerError as error:
        raise UsageError(_journal_owner_message(error)) from None
    except JournalError as error:
        raise UsageError(f"argument --journal: {error}") from None
    except BurstError as error:
        raise UsageError(str(error)) from None

    if arguments.json:
        print_json(figures)
    else:
        print(format_figures(settings, figures))
    complete = figures["served"] == settings.requests and figures["workers_stopped"] == settings.requests
    return 0 if complete and not figures["timed_out"] else 1


def _journal_owner_message(error: JournalOwnerError) -> str:
    owner = "an unnamed fleet" if error.owner is None else repr(error.owner)
    return (
        f"argument --journal: {error.path} was written for another target, {owner}, not {error.requested!r}; "
        "use the same --endpoint-url, --cluster and --task-definition as the run that wrote it, or another --journal path"
    )


def journal_fleet_name(settings: BurstSettings) -> str:
    """Name the fleet of a burst journal after its target, so one file serves one target."""
    return f"burst {settings.endpoint_url} {settings.cluster} {settings.task_definition}"


def journal_fleet_id(settings: BurstSettings) -> str:
    """Return the audit fleet id of every run that uses a journal for this target."""
    digest = hashlib.sha256(journal_fleet_name(settings).encode()).hexdigest()
    return f"burst-{digest[:12]}"


async def _run_with_journal(
    settings: BurstSettings, journal_path: str | None, on_endpoint_checked: Callable[[], None]
) -> dict[str, Any]:
    if journal_path is None:
        return await run_burst(settings, on_endpoint_checked=on_endpoint_checked)
    async with SqliteJournal(journal_path, fleet=journal_fleet_name(settings)) as journal:
        # Open and check the journal before the endpoint, so a journal of
        # another target is reported even when the endpoint is down.
        await journal.load()
        return await run_burst(settings, journal=journal, on_endpoint_checked=on_endpoint_checked)


def format_figures(settings: BurstSettings, figures: dict[str, Any]) -> str:
    header = f"fleetactor burst: {settings.requests} requests, cap {settings.max_workers}, cluster {settings.cluster} at {settings.endpoint_url}"
    rows: list[tuple[str, object]] = [
        ("requests", figures["requests"]),
        ("cap (max workers)", figures["max_workers"]),
        ("peak active (fleet's count)", figures["peak_active"]),
        ("served", figures["served"]),
        ("failed", figures["failed"]),
        ("dropped", figures["dropped"]),
        ("workers stopped", figures["workers_stopped"]),
        ("skipped (finished in an earlier run)", figures["skipped"]),
        ("resumed from the journal", figures["resumed"]),
        ("RunTask requests", figures["run_task_calls"]),
        ("ListTasks requests", figures["list_tasks_calls"]),
        ("DescribeTasks requests", figures["describe_tasks_calls"]),
        ("makespan", format_seconds(figures["makespan_s"])),
        ("longest wait", format_seconds(figures["max_wait_s"])),
    ]
    lines = [header, "", format_table(rows, indent="  ")]
    if figures["timed_out"]:
        lines.append(f"\ngave up after --timeout {settings.timeout:g} s")
    for failure in figures["failures"][:10]:
        lines.append(f"  failed: {failure}")
    return "\n".join(lines)
