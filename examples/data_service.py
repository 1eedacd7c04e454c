"""An HTTP service that starts one ECS worker per uncached file, under a hard cap.

``GET /data/{dcc}/{id}`` returns a cached file at once. For an uncached file
it submits a job to the fleet, waits until the worker has stopped, caches
the result and returns it. Requests for the same file while its worker runs
share that worker, because they submit the same job key. ``GET /stats``
returns the fleet's statistics and, on a simulator, its ground truth.

By default the fleet launches tasks on an ECS simulator inside this process,
in real time. With ``--endpoint-url`` it launches them on that ECS endpoint
instead: the served simulator (``fleetactor simulate-ecs``), moto or AWS::

    python examples/data_service.py --port 8080 --run-time 5
    curl http://127.0.0.1:8080/data/dcc-a/file-17

The workers here compute nothing: the result is a small JSON document about
the task. A real service would read the worker's output from storage where
this example builds it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import re
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import structlog
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from fleetactor import FleetClosedError, FleetConfig, Job, LaunchFailedError, open_fleet
from fleetactor.ecs import EcsProvisioner
from fleetactor.simulator import GROUND_TRUTH_PATH, EcsSimulator, SimulatorConfig, SimulatorTransport

logger = structlog.get_logger("data_service")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
GroundTruthSource = Callable[[], Awaitable[dict[str, Any] | None]]

# A data centre code such as "dcc-a", and a file id such as "file-17.csv".
DCC_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

# The simulated cluster, used when no --endpoint-url is given.
SIMULATED_CLUSTER = "default"
SIMULATED_FAMILY = "worker"
SIMULATED_CREDENTIALS = ("AKIAFLEETACTORDEMO01", "fleetactor-example-secret-key-000000000")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_file_path(path: str) -> tuple[str, str]:
    """Return ``(dcc, id)`` of a ``/data/{dcc}/{id}`` path.

    Raises:
        HttpError: 404 for any other path, 400 when dcc or id is invalid.
    """
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "" or parts[1] != "data":
        raise HttpError(404, f"no resource at {path!r}; files are at /data/{{dcc}}/{{id}}")
    dcc, file_id = parts[2], parts[3]
    if not DCC_PATTERN.fullmatch(dcc):
        raise HttpError(400, f"invalid dcc {dcc!r}: use 1 to 32 lower-case letters, digits or '-', starting with a letter or digit")
    if not ID_PATTERN.fullmatch(file_id):
        raise HttpError(400, f"invalid id {file_id!r}: use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'")
    return dcc, file_id


class DataService:
    """The ASGI application: a file cache in front of a fleet of workers."""

    def __init__(self, fleet: Any, ground_truth: GroundTruthSource, container: str) -> None:
        self.fleet = fleet
        self.ground_truth = ground_truth
        self.container = container
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _run_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return

        try:
            if scope["method"] not in ("GET", "HEAD"):
                raise HttpError(405, f"method {scope['method']} is not allowed; use GET")
            if scope["path"] == "/stats":
                status, body = 200, await self.stats()
            else:
                status, body = 200, await self.get_file(*parse_file_path(scope["path"]))
        except HttpError as error:
            status, body = error.status, {"error": error.message}
        await _send_json(send, status, body, head=scope["method"] == "HEAD")

    async def get_file(self, dcc: str, file_id: str) -> dict[str, Any]:
        cached = self.cache.get((dcc, file_id))
        if cached is not None:
            return {**cached, "cached": True}

        started = trio.current_time()
        job = Job(key=f"{dcc}/{file_id}", overrides={"command": ["fetch-file", dcc, file_id], "container": self.container})
        try:
            ticket = await self.fleet.submit(job)
            task_id = await ticket.wait_started()
            await ticket.wait_finished()
        except LaunchFailedError as error:
            logger.warning("file.launch_failed", dcc=dcc, id=file_id, reason=error.reason)
            raise HttpError(502, f"the worker for {dcc}/{file_id} could not start: {error.reason}") from None
        except FleetClosedError:
            raise HttpError(503, "the service is shutting down; retry later") from None

        result = {"dcc": dcc, "id": file_id, "task_id": task_id}
        self.cache[(dcc, file_id)] = result
        return {**result, "cached": False, "decision": ticket.decision, "waited_s": trio.current_time() - started}

    async def stats(self) -> dict[str, Any]:
        return {
            "fleet": dataclasses.asdict(self.fleet.statistics()),
            "ground_truth": await self.ground_truth(),
            "cached_files": len(self.cache),
        }


async def _run_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send_json(send: Send, status: int, body: dict[str, Any], *, head: bool) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


# The backend: an in-process simulator or an ECS endpoint


def _summarize_truth(truth: dict[str, Any]) -> dict[str, Any]:
    keys = ("time", "fleet_active", "peak_fleet_active", "peak_active", "tasks_started", "duplicate_tasks")
    return {key: truth[key] for key in keys}


def simulated_backend(arguments: argparse.Namespace) -> tuple[EcsProvisioner, GroundTruthSource, str]:
    from botocore.credentials import Credentials

    simulator = EcsSimulator(
        SimulatorConfig(
            task_definition_families=(SIMULATED_FAMILY,),
            visibility_lag=arguments.visibility_lag,
            boot_time=arguments.boot_time,
            run_time=arguments.run_time,
            stop_time=arguments.stop_time,
            seed=arguments.seed,
        )
    )
    provisioner = EcsProvisioner(
        SIMULATED_CLUSTER,
        SIMULATED_FAMILY,
        region="us-east-1",
        # Never contacted: the transport hands requests to the simulator.
        endpoint_url="http://127.0.0.1:4566",
        credentials=Credentials(*SIMULATED_CREDENTIALS),
        subnets=["subnet-example"],
        transport=SimulatorTransport(simulator),
    )

    async def ground_truth() -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return _summarize_truth(simulator.ground_truth().as_dict())

    return provisioner, ground_truth, SIMULATED_FAMILY


def endpoint_backend(arguments: argparse.Namespace) -> tuple[EcsProvisioner, GroundTruthSource, str]:
    provisioner = EcsProvisioner(
        arguments.cluster,
        arguments.task_definition,
        region=arguments.region,
        endpoint_url=arguments.endpoint_url,
        subnets=arguments.subnets,
        security_groups=arguments.security_groups,
    )
    url = arguments.endpoint_url.rstrip("/") + GROUND_TRUTH_PATH

    async def ground_truth() -> dict[str, Any] | None:
        # Only the served simulator has a ground truth; other endpoints return None.
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(url)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return _summarize_truth(response.json())

    family = arguments.task_definition.rsplit("/", 1)[-1].split(":", 1)[0]
    return provisioner, ground_truth, arguments.container or family


async def run_service(arguments: argparse.Namespace) -> None:
    if arguments.endpoint_url is None:
        provisioner, ground_truth, container = simulated_backend(arguments)
    else:
        provisioner, ground_truth, container = endpoint_backend(arguments)
    config = FleetConfig(
        max_workers=arguments.max_workers,
        reconcile_interval=arguments.reconcile_interval,
        visibility_timeout=arguments.visibility_timeout,
    )
    server_config = HypercornConfig()
    server_config.bind = [f"{arguments.host}:{arguments.port}"]
    server_config.accesslog = None
    # The service prints its own URL; hypercorn's start-up line would repeat it.
    server_config.loglevel = "WARNING"

    async with provisioner, open_fleet(provisioner, config) as fleet:
        service = DataService(fleet, ground_truth, container)
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(functools.partial(hypercorn_serve, service, server_config))
            print(f"data service listening on {binds[0]}", flush=True)


# The command line


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a number of seconds >= 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a whole number >= 0")
    return value


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a TCP port from 0 to 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve files that ECS workers produce, under a hard cap on workers.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=8080, help="TCP port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--max-workers", type=_count, default=16, help="the cap on workers that run at once (default: %(default)s)")
    parser.add_argument("--reconcile-interval", type=_seconds, default=5.0, help="seconds between two ListTasks calls (default: %(default)s)")
    parser.add_argument(
        "--visibility-timeout",
        type=_seconds,
        default=30.0,
        help="seconds a launched task may stay unlisted before it is described (default: %(default)s)",
    )
    parser.add_argument("--audit-log", metavar="PATH", help="write the fleet's audit events to PATH as JSON lines")

    simulator = parser.add_argument_group("in-process simulator (the default backend)")
    simulator.add_argument("--simulator", action="store_true", help="launch on an ECS simulator in this process (the default)")
    simulator.add_argument("--visibility-lag", type=_seconds, default=8.0, help="seconds a new task stays out of ListTasks (default: %(default)s)")
    simulator.add_argument("--boot-time", type=_seconds, default=0.0, help="seconds from RunTask to RUNNING (default: %(default)s)")
    simulator.add_argument("--run-time", type=_seconds, default=60.0, help="seconds each worker runs (default: %(default)s)")
    simulator.add_argument("--stop-time", type=_seconds, default=0.0, help="seconds from the end of the work to STOPPED (default: %(default)s)")
    simulator.add_argument("--seed", type=_count, default=0, help="seed of the simulator's random draws (default: %(default)s)")

    ecs = parser.add_argument_group("ECS endpoint (instead of the simulator)")
    ecs.add_argument("--endpoint-url", help="ECS endpoint: the served simulator, moto or AWS")
    ecs.add_argument("--region", help="AWS region")
    ecs.add_argument("--cluster", help="cluster name or ARN")
    ecs.add_argument("--task-definition", help="task definition of the worker")
    ecs.add_argument("--container", help="container that receives the file's command (default: the task definition family)")
    ecs.add_argument("--subnet", dest="subnets", action="append", default=[], help="subnet for the tasks; repeat for more")
    ecs.add_argument("--security-group", dest="security_groups", action="append", default=[], help="security group; repeat for more")
    return parser


class AuditFileLogger(structlog.WriteLogger):
    """A file logger for the fleet's audit events."""


def configure_logging(audit_log: str | None) -> None:
    """Send audit events to ``audit_log`` as JSON lines (or drop them) and other warnings to stderr."""
    audit_file = open(audit_log, "a", encoding="utf-8") if audit_log else None  # noqa: SIM115 - open until exit

    def make_logger(*args: Any) -> Any:
        if args and args[0] == "fleetactor.audit":
            return structlog.ReturnLogger() if audit_file is None else AuditFileLogger(audit_file)
        return structlog.PrintLogger(sys.stderr)

    def drop_quiet_events(logger: Any, method_name: str, event_dict: Any) -> Any:
        if isinstance(logger, structlog.ReturnLogger):
            raise structlog.DropEvent
        if not isinstance(logger, AuditFileLogger) and event_dict.get("level") not in ("warning", "error", "critical"):
            raise structlog.DropEvent
        return event_dict

    structlog.configure(
        processors=[structlog.processors.add_log_level, drop_quiet_events, structlog.processors.JSONRenderer()],
        logger_factory=make_logger,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    endpoint_options = (arguments.region, arguments.cluster, arguments.task_definition)
    if arguments.endpoint_url is not None and None in endpoint_options:
        parser.error("--endpoint-url needs --region, --cluster and --task-definition")
    if arguments.endpoint_url is not None and arguments.simulator:
        parser.error("--simulator and --endpoint-url exclude each other")
    if arguments.max_workers < 1:
        parser.error(f"argument --max-workers: invalid value {arguments.max_workers}: must be at least 1")
    if arguments.reconcile_interval == 0:
        parser.error("argument --reconcile-interval: invalid value 0: must be > 0 seconds")

    configure_logging(arguments.audit_log)
    try:
        trio.run(run_service, arguments)
    except KeyboardInterrupt:
        return 0
    except BaseExceptionGroup as group:
        # Ctrl+C may arrive wrapped by the server's nursery.
        _, others = group.split(KeyboardInterrupt)
        if others is None:
            return 0
        bind_errors, rest = others.split(OSError)
        if bind_errors is None or rest is not None:
            raise
        print(f"data_service.py: error: cannot listen on {arguments.host}:{arguments.port}: {_first_leaf(bind_errors)}", file=sys.stderr)
        return 2
    return 0


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


if __name__ == "__main__":
    sys.exit(main())
