"""Smoke tests of the benchmark scripts, so they keep running as the code changes.

Each script runs in a subprocess with ``--smoke --json``, as CI would run it.
The checks cover the shape of the report and the facts a benchmark must get
right whatever the machine: caps held, requests served, counts consistent.
No check reads a time or a rate.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_benchmark(name, *options):
    environment = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke", "--json", *options],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture
def benchmark_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import cap_utilization

    return cap_utilization


def check_common_fields(report, name):
    assert report["benchmark"] == name
    assert report["command"].startswith(f"python benchmarks/{name}.py")
    assert "--smoke" in report["command"]
    assert report["machine"]["cpus"] >= 1
    assert report["machine"]["python"]
    assert set(report["machine"]["packages"]) >= {"fleetactor", "trio", "httpx", "botocore", "structlog"}


def test_decision_cost_smoke():
    report = run_benchmark("decision_cost")

    check_common_fields(report, "decision_cost")
    parameters = report["parameters"]
    jobs = parameters["tasks"] * parameters["jobs_per_task"]
    assert set(report["variants"]) == {"actor", "lock", "lock-no-audit"}
    for summary in report["variants"].values():
        # Each job is submitted, granted, launched and released once.
        assert summary["decisions_per_round"] == 4 * jobs
        assert summary["decisions_per_s"] > 0
        assert summary["max_peak_active"] == parameters["cap"]
        assert summary["max_true_peak"] <= parameters["cap"]
        assert len(summary["rounds"]) == parameters["rounds"]
    assert report["ratio_actor_to_lock"] > 0
    assert report["target_ratio"] == 0.67


def test_journal_cost_smoke():
    report = run_benchmark("journal_cost")

    check_common_fields(report, "journal_cost")
    parameters = report["parameters"]
    assert set(report["results"]) == {"sequential", "concurrent"}
    for workload, pair in report["results"].items():
        assert set(pair) == {"none", "sqlite"}
        for result in pair.values():
            assert result["decisions_per_s"] > 0
            assert result["max_peak_active"] <= parameters["cap"]
            assert result["max_true_peak"] <= parameters["cap"]
        assert pair["none"]["decisions_per_round"] == pair["sqlite"]["decisions_per_round"]
    for journal in ("none", "sqlite"):
        latencies = report["results"]["sequential"][journal]
        assert latencies["submit_latency_s"]["p50"] is not None
        assert latencies["start_latency_s"]["p50"] >= latencies["submit_latency_s"]["p50"]
    assert report["comparison"]["concurrent"]["throughput_ratio"] > 0


def test_scale_smoke():
    report = run_benchmark("scale")

    check_common_fields(report, "scale")
    parameters = report["parameters"]
    cap = parameters["cap"]
    submissions = report["submissions"]
    assert submissions["decisions"] == parameters["submissions"]
    assert submissions["granted"] == cap
    assert submissions["queued"] == parameters["submissions"] - cap
    assert submissions["peak_active"] == cap
    assert submissions["true_peak"] == cap

    memory = report["memory"]
    assert memory["queued"] == parameters["submissions"] - cap
    assert memory["running"] == cap
    assert memory["bytes_per_queued_request"] > 0
    assert memory["peak_traced_bytes"] >= memory["traced_with_queue_bytes"]
    assert memory["by_line"]

    assert report["ledger_reconcile"]["listed"] == cap
    assert report["ledger_reconcile"]["queued"] == parameters["submissions"] - cap
    assert report["list_round_trip"]["listed"] == cap
    assert report["list_round_trip"]["pages"] == math.ceil(cap / 100)
    assert isinstance(report["target_met"], bool)


def test_cap_utilization_smoke():
    report = run_benchmark("cap_utilization")

    check_common_fields(report, "cap_utilization")
    cap = report["parameters"]["cap"]
    names = [scenario["name"] for scenario in report["scenarios"]]
    assert names == [
        "burst, lag 8 s",
        "burst, lag 30 s",
        "burst, blind list",
        "large burst at once",
        "large burst, spread",
        "sustained",
    ]
    assert report["parameters"]["actor_describe_interval_s"] > 0
    for scenario in report["scenarios"]:
        actor = scenario["policies"]["actor"]
        assert actor["polls"] is None
        assert actor["true_peak"] == cap
        assert actor["served"] == scenario["requests"]
        assert actor["duplicate_tasks"] == 0
        assert actor["tasks_started"] == scenario["requests"]
        assert scenario["ideal"]["true_peak"] <= cap
        assert scenario["ideal"]["utilization_while_waiting"] == pytest.approx(1.0)
        for result in scenario["policies"].values():
            assert result["served"] + result["failed"] == scenario["requests"]

    # The naive controller must show its fault, or the comparison means nothing.
    first_burst = report["scenarios"][0]
    assert first_burst["policies"]["list-only"]["true_peak"] > cap
    # The spread burst exists to show list-only polling while at the cap.
    spread_burst = report["scenarios"][4]
    assert spread_burst["policies"]["list-only"]["polls"] > 0

    model = report["sustained_queueing_model"]
    assert 0 < model["erlang_c_wait_probability"] < 1
    assert model["utilization"] == pytest.approx(0.9)
    assert {target["met"] for target in report["targets"]} <= {True, False}
    assert all(target["scenario"] for target in report["targets"])


def test_erlang_c_single_server(benchmark_modules):
    # With one server an arrival waits with probability rho = a.
    assert benchmark_modules.erlang_c(1, 0.5) == pytest.approx(0.5)
    assert benchmark_modules.erlang_c(1, 0.9) == pytest.approx(0.9)


def test_erlang_c_two_servers(benchmark_modules):
    # C(2, 1) = (1/2 * 2/1) / (1 + 1 + 1/2 * 2/1) = 1/3.
    assert benchmark_modules.erlang_c(2, 1.0) == pytest.approx(1 / 3)


def test_erlang_c_rejects_overload(benchmark_modules):
    with pytest.raises(ValueError, match="queue grows forever"):
        benchmark_modules.erlang_c(4, 4.0)


def test_erlang_c_wait_quantile(benchmark_modules):
    # M/M/1 with lambda 0.5 and mu 1: P(wait > t) = 0.5 * exp(-0.5 t).
    expected = math.log(0.5 / 0.05) / 0.5
    assert benchmark_modules.erlang_c_wait_quantile(1, 0.5, 1.0, 0.95) == pytest.approx(expected)
    # When fewer than 5% wait at all, the p95 wait is 0.
    assert benchmark_modules.erlang_c_wait_quantile(1, 0.01, 1.0, 0.95) == 0.0


def test_ideal_queue_burst(benchmark_modules):
    module = benchmark_modules
    settings = module.Settings(
        cap=2,
        boot_time=1.0,
        stop_time=1.0,
        window=10.0,
        poll_interval=1.0,
        visibility_timeout=30.0,
        describe_interval=1.0,
        arrival_phase=0.5,
        seed=0,
    )
    workload = module.burst("burst", requests=5, run_time=8.0, visibility_lag=8.0)

    result = module.ideal_queue(workload, settings)

    # Three waves of 10 s each on two slots.
    assert result["makespan_s"] == pytest.approx(30.0)
    assert result["wait_max_s"] == pytest.approx(20.0)
    assert result["true_peak"] == 2
    assert result["utilization_while_waiting"] == pytest.approx(1.0)


def test_utilization_counts_idle_waiting(benchmark_modules):
    requests = [
        benchmark_modules.RequestTimes(arrived=0.0, left_queue=10.0, served=True),
    ]
    # One of two slots busy for the first half of the wait, none for the rest.
    timeline = [(0.0, 1), (5.0, 0)]

    assert benchmark_modules.utilization(timeline, 10.0, requests, cap=2) == pytest.approx(0.25)


def test_burst_arrivals_at_once_and_spread(benchmark_modules):
    at_once = benchmark_modules.burst("at once", requests=4, run_time=10.0, visibility_lag=8.0)
    spread = benchmark_modules.burst("spread", requests=4, run_time=10.0, visibility_lag=8.0, spread=20.0)

    assert at_once.arrivals == (0.0, 0.0, 0.0, 0.0)
    assert spread.arrivals == (0.0, 5.0, 10.0, 15.0)
    assert spread.run_times == (10.0,) * 4
