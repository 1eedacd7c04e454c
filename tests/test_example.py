"""The example data service and burst script, in real time on 127.0.0.1.

The service runs its fleet against the ECS simulator, in the same process
or served by ``fleetactor simulate-ecs``. Workers run 2 s, so a burst of 24
under a cap of 16 takes about five seconds.
"""

import json
import pathlib
import subprocess
import sys

import httpx
import pytest
import trio
from process_support import default_sigint, interrupt

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "AWS_ACCESS_KEY_ID": "AKIAFLEETACTORTEST01",
    "AWS_SECRET_ACCESS_KEY": "fleetactor-test-secret-key-0000000000000",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/fleetactor-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/fleetactor-tests/credentials",
}

FAST_FLEET = ["--reconcile-interval", "0.5", "--visibility-timeout", "5"]
FAST_TASKS = ["--run-time", "2", "--visibility-lag", "1", "--boot-time", "0", "--stop-time", "0"]


class Server:
    """A subprocess that prints ``... listening on URL`` once it serves."""

    def __init__(self, command):
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENVIRONMENT, preexec_fn=default_sigint
        )
        first_line = self.process.stdout.readline()
        if "listening on http://127.0.0.1:" not in first_line:
            self.stop()
            raise AssertionError(f"server did not start: {first_line!r} {self.process.stderr.read()}")
        self.url = first_line.rsplit(" ", 1)[-1].strip()

    def stop(self):
        try:
            status = interrupt(self.process)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()
        return status


@pytest.fixture
def service():
    server = Server([sys.executable, str(EXAMPLES / "data_service.py"), "--port", "0", *FAST_FLEET, *FAST_TASKS])
    yield server.url
    assert server.stop() == 0


def run_burst_script(url, requests):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "burst.py"), "--url", url, "--requests", str(requests), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENVIRONMENT,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(completed.stdout)


def test_burst_keeps_cap(service):
    figures = run_burst_script(service, 24)

    assert figures["answered_200"] == 24
    assert figures["errors"] == []
    assert figures["max_workers"] == 16
    assert figures["peak_source"] == "simulator ground truth"
    # The simulator counts 16 workers at once only if all 16 requests arrive
    # within one worker's 2 s run. The fleet's count shows the 16 grants.
    assert figures["peak_workers"] <= 16
    assert figures["fleet_peak_active"] == 16
    assert figures["waited"] == 8
    # The queued 8 wait for one of the first 16 workers to stop, then run 2 s
    # themselves. The makespan starts at the first request sent, so unlike the
    # slowest single request it does not shrink when the requests go out late.
    assert figures["makespan_s"] >= 4


def test_burst_text_output(service):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "burst.py"), "--url", service, "--requests", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENVIRONMENT,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[:3] == [
        "requests answered 200: 2 of 2",
        "peak running workers:  2 (cap 16, simulator ground truth)",
        "requests that waited:  0",
    ]


async def fetch_all(url, paths):
    responses = [None] * len(paths)

    async def fetch(index, client):
        responses[index] = await client.get(paths[index])

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with trio.open_nursery() as nursery:
            for index in range(len(paths)):
                nursery.start_soon(fetch, index, client)
    return responses


async def test_same_file_shares_worker(service):
    responses = await fetch_all(service, ["/data/dcc-a/shared.csv"] * 3)
    async with httpx.AsyncClient(base_url=service) as client:
        cached = await client.get("/data/dcc-a/shared.csv")
        stats = (await client.get("/stats")).json()

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert len({response.json()["task_id"] for response in responses}) == 1
    assert [response.json()["cached"] for response in responses] == [False, False, False]
    assert stats["ground_truth"]["tasks_started"] == 1
    assert stats["fleet"]["submitted"] == 1
    assert cached.status_code == 200
    assert cached.json()["cached"] is True
    assert cached.json()["task_id"] == responses[0].json()["task_id"]
    assert stats["cached_files"] == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/data/DCC/file-1", 400, "invalid dcc 'DCC'"),
        ("GET", "/data/dcc-a/.hidden", 400, "invalid id '.hidden'"),
        ("GET", "/data/dcc-a/" + "x" * 129, 400, "invalid id"),
        ("GET", "/data/dcc-a", 404, "no resource at '/data/dcc-a'"),
        ("GET", "/data/dcc-a/file-1/extra", 404, "no resource at"),
        ("GET", "/", 404, "no resource at '/'"),
        ("POST", "/data/dcc-a/file-1", 405, "method POST is not allowed"),
    ],
)
async def test_bad_requests_rejected(service, method, path, status, message):
    async with httpx.AsyncClient(base_url=service) as client:
        response = await client.request(method, path)
        stats = (await client.get("/stats")).json()

    assert response.status_code == status
    assert message in response.json()["error"]
    assert stats["fleet"]["submitted"] == 0


def test_service_on_served_simulator():
    simulator = Server([sys.executable, "-m", "fleetactor", "simulate-ecs", "--port", "0", "--task-definition", "worker", *FAST_TASKS])
    try:
        service = Server(
            [
                sys.executable,
                str(EXAMPLES / "data_service.py"),
                "--port", "0",
                "--endpoint-url", simulator.url,
                "--region", "us-east-1",
                "--cluster", "default",
                "--task-definition", "worker",
                "--subnet", "subnet-1",
                "--max-workers", "2",
                *FAST_FLEET,
            ]
        )
        try:
            figures = run_burst_script(service.url, 4)
        finally:
            service_status = service.stop()
    finally:
        simulator_status = simulator.stop()

    assert figures["answered_200"] == 4
    assert figures["peak_source"] == "simulator ground truth"
    assert figures["peak_workers"] <= 2
    assert figures["fleet_peak_active"] == 2
    assert figures["waited"] == 2
    assert service_status == 0
    assert simulator_status == 0
