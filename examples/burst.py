"""Send a burst of concurrent requests for uncached files to the example data service.

Each request is for a distinct file, so each needs its own worker. The
script prints the peak of running workers (the simulator's own count when
the service runs on a simulator, else the fleet's count), how many requests
had to wait for a free slot, and how long the slowest one took::

    python examples/data_service.py --port 8080 --run-time 5 &
    python examples/burst.py --url http://127.0.0.1:8080 --requests 24
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

import httpx
import trio


async def fetch(client: httpx.AsyncClient, path: str, results: list[dict[str, Any]]) -> None:
    started = trio.current_time()
    try:
        response = await client.get(path)
    except httpx.HTTPError as error:
        results.append({"path": path, "status": None, "error": f"{type(error).__name__}: {error}", "seconds": trio.current_time() - started})
        return
    body = response.json()
    results.append(
        {
            "path": path,
            "status": response.status_code,
            "decision": body.get("decision"),
            "error": body.get("error"),
            "seconds": trio.current_time() - started,
        }
    )


async def run_burst(url: str, requests: int, dcc: str, timeout: float) -> dict[str, Any]:
    """Fire ``requests`` GETs at once for distinct new files and return the figures."""
    # A fresh prefix per run, so no file is cached already.
    prefix = uuid.uuid4().hex[:8]
    results: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for index in range(requests):
                nursery.start_soon(fetch, client, f"/data/{dcc}/{prefix}-{index}", results)
        makespan_s = trio.current_time() - started
        stats = (await client.get("/stats")).json()

    truth = stats.get("ground_truth")
    return {
        "requests": requests,
        "answered_200": sum(1 for result in results if result["status"] == 200),
        "errors": [result for result in results if result["status"] != 200],
        "waited": sum(1 for result in results if result.get("decision") == "queued"),
        "slowest_s": max(result["seconds"] for result in results),
        # From the first request sent to the last response received.
        "makespan_s": makespan_s,
        "max_workers": stats["fleet"]["max_workers"],
        # The simulator's count of tasks not yet STOPPED is the true peak;
        # other backends only have the fleet's own count.
        "peak_workers": truth["peak_fleet_active"] if truth else stats["fleet"]["peak_active"],
        "peak_source": "simulator ground truth" if truth else "fleet statistics",
        "fleet_peak_active": stats["fleet"]["peak_active"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fire concurrent requests for uncached files at the example data service.")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="base URL of the data service (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=24, help="concurrent requests, one per distinct file (default: %(default)s)")
    parser.add_argument("--dcc", default="dcc-burst", help="data centre code in the request paths (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds each request may take (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    arguments = parser.parse_args(argv)
    if arguments.requests < 1:
        parser.error(f"argument --requests: invalid value {arguments.requests}: must be at least 1")
    if not arguments.timeout > 0:
        parser.error(f"argument --timeout: invalid value {arguments.timeout}: must be > 0 seconds")

    figures = trio.run(run_burst, arguments.url, arguments.requests, arguments.dcc, arguments.timeout)
    if arguments.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"requests answered 200: {figures['answered_200']} of {figures['requests']}")
        print(f"peak running workers:  {figures['peak_workers']} (cap {figures['max_workers']}, {figures['peak_source']})")
        print(f"requests that waited:  {figures['waited']}")
        print(f"slowest request:       {figures['slowest_s']:.1f} s")
        for error in figures["errors"][:10]:
            print(f"failed: {error['path']}: {error['status']} {error['error']}")
    return 0 if figures["answered_200"] == figures["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
