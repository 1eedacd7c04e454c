"""SimulatorConfig validation and the simulator's command-line options."""

from __future__ import annotations

import argparse
import math
import re
import socket

import pytest

from fleetactor.simulator import (
    AmbiguousResponse,
    RunTimeDistribution,
    SimulatorConfig,
    add_simulator_arguments,
    config_from_arguments,
    simulate_ecs_main,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="simulate-ecs")
    add_simulator_arguments(parser)
    return parser.parse_args(argv)


# SimulatorConfig.


@pytest.mark.parametrize(
    ("knobs", "fragment"),
    [
        (
            {"visibility_lag": -1},
            "SimulatorConfig.visibility_lag must be a number of seconds >= 0 or math.inf, got -1",
        ),
        ({"visibility_lag": "5"}, "SimulatorConfig.visibility_lag must be"),
        ({"boot_time": math.inf}, "SimulatorConfig.boot_time must be a finite number of seconds >= 0, got inf"),
        ({"stop_time": math.nan}, "SimulatorConfig.stop_time must be"),
        (
            {"visibility_lag": 8.0, "visibility_lag_max": 4.0},
            "SimulatorConfig.visibility_lag_max must be at least visibility_lag (8.0), got 4.0",
        ),
        ({"visibility_lag_max": math.inf}, "SimulatorConfig.visibility_lag_max must be a finite number"),
        (
            {"launch_failure_rate": 1.5},
            "SimulatorConfig.launch_failure_rate must be a probability from 0 to 1, got 1.5",
        ),
        ({"list_failure_rate": True}, "SimulatorConfig.list_failure_rate must be a probability"),
        ({"launch_outage": (20.0, 10.0)}, "SimulatorConfig.launch_outage must be None or a tuple (start, end)"),
        ({"launch_outage": (10.0,)}, "SimulatorConfig.launch_outage must be"),
        ({"foreign_tasks": -1}, "SimulatorConfig.foreign_tasks must be an int >= 0, got -1"),
        ({"seed": 1.5}, "SimulatorConfig.seed must be an int, got 1.5"),
        ({"rate_limits": 1}, "SimulatorConfig.rate_limits must be True or False, got 1"),
        ({"region": "mars"}, "SimulatorConfig.region must be an AWS region name"),
        ({"account_id": "12345"}, "SimulatorConfig.account_id must be a string of 12 digits"),
        ({"cluster_name": "bad name"}, "SimulatorConfig.cluster_name must contain 1 to 255 letters"),
        ({"task_definition_families": ["worker"]}, "SimulatorConfig.task_definition_families must be a tuple"),
        ({"foreign_started_by": "a b"}, "SimulatorConfig.foreign_started_by must contain"),
        (
            {"run_time_distribution": "normal"},
            "SimulatorConfig.run_time_distribution must be one of 'fixed', 'exponential'",
        ),
        ({"ambiguous_response": "timeout"}, "SimulatorConfig.ambiguous_response must be one of"),
        ({"run_time_sampler": 3}, "SimulatorConfig.run_time_sampler must be callable or None"),
    ],
)
def test_config_rejects_invalid(knobs, fragment):
    with pytest.raises(ValueError, match=f"^{re.escape(fragment)}"):
        SimulatorConfig(**knobs)


def test_config_normalizes_values():
    config = SimulatorConfig(
        visibility_lag=3,
        launch_outage=(1, 2),
        run_time_distribution="exponential",
        ambiguous_response="disconnect",
    )

    assert config.visibility_lag == 3.0
    assert isinstance(config.visibility_lag, float)
    assert config.launch_outage == (1.0, 2.0)
    assert config.run_time_distribution is RunTimeDistribution.EXPONENTIAL
    assert config.ambiguous_response is AmbiguousResponse.DISCONNECT


def test_config_accepts_blind_list():
    assert SimulatorConfig(visibility_lag=math.inf).visibility_lag == math.inf


# Command-line options.


def test_arguments_default_config():
    assert config_from_arguments(parse()) == SimulatorConfig()


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        (["--seed", "7"], "seed", 7),
        (["--region", "eu-west-1"], "region", "eu-west-1"),
        (["--account-id", "111122223333"], "account_id", "111122223333"),
        (["--cluster", "fleet"], "cluster_name", "fleet"),
        (["--task-definition", "a", "--task-definition", "b"], "task_definition_families", ("a", "b")),
        (["--epoch", "1700000000"], "epoch", 1_700_000_000.0),
        (["--latency", "0.2"], "latency", 0.2),
        (["--visibility-lag", "8"], "visibility_lag", 8.0),
        (["--visibility-lag", "never"], "visibility_lag", math.inf),
        (["--visibility-lag", "2", "--visibility-lag-max", "9"], "visibility_lag_max", 9.0),
        (["--describe-lag", "1.5"], "describe_lag", 1.5),
        (["--boot-time", "90"], "boot_time", 90.0),
        (["--run-time", "forever"], "run_time", math.inf),
        (["--run-time-distribution", "exponential"], "run_time_distribution", RunTimeDistribution.EXPONENTIAL),
        (["--stop-time", "60"], "stop_time", 60.0),
        (["--stopped-task-retention", "10"], "stopped_task_retention", 10.0),
        (["--foreign-tasks", "3"], "foreign_tasks", 3),
        (["--foreign-tasks", "100000"], "foreign_tasks", 100_000),
        (["--foreign-run-time", "120"], "foreign_run_time", 120.0),
        (["--foreign-started-by", "old-fleet"], "foreign_started_by", "old-fleet"),
        (["--foreign-family", "legacy"], "foreign_family", "legacy"),
        (["--launch-failure-rate", "0.3"], "launch_failure_rate", 0.3),
        (["--launch-outage", "60", "660"], "launch_outage", (60.0, 660.0)),
        (["--ambiguous-rate", "0.2"], "ambiguous_rate", 0.2),
        (["--ambiguous-response", "disconnect"], "ambiguous_response", AmbiguousResponse.DISCONNECT),
        (["--no-rate-limits"], "rate_limits", False),
        (["--list-failure-rate", "0.25"], "list_failure_rate", 0.25),
        (["--no-idempotency"], "idempotency", False),
    ],
)
def test_arguments_set_field(argv, field, expected):
    config = config_from_arguments(parse(*argv))

    assert getattr(config, field) == expected


def test_arguments_throttle_rates():
    config = config_from_arguments(parse("--throttle-rate", "0.1", "--list-tasks-throttle-rate", "0.5"))

    assert config.run_task_throttle_rate == 0.1
    assert config.list_tasks_throttle_rate == 0.5
    assert config.describe_tasks_throttle_rate == 0.1


def test_arguments_server_options():
    namespace = parse("--host", "127.0.0.2", "--port", "8700")

    assert (namespace.host, namespace.port) == ("127.0.0.2", 8700)
    assert (parse().host, parse().port) == ("127.0.0.1", 0)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["--visibility-lag", "soon"],
            "argument --visibility-lag: invalid value 'soon': expected a number of seconds >= 0, or 'never'",
        ),
        (["--boot-time", "-1"], "argument --boot-time: invalid value '-1': expected a number of seconds >= 0"),
        (["--boot-time", "never"], "argument --boot-time: invalid value 'never'"),
        (["--run-time", "nan"], "argument --run-time: invalid value 'nan'"),
        (
            ["--launch-failure-rate", "2"],
            "argument --launch-failure-rate: invalid value '2': expected a probability from 0 to 1",
        ),
        (["--throttle-rate", "high"], "argument --throttle-rate: invalid value 'high'"),
        (["--foreign-tasks", "-3"], "argument --foreign-tasks: invalid value '-3': expected an integer from 0 to 100000"),
        (
            ["--foreign-tasks", "100001"],
            "argument --foreign-tasks: invalid value '100001': expected an integer from 0 to 100000",
        ),
        (["--seed", "x"], "argument --seed: invalid value 'x': expected an integer"),
        (["--seed", "-1"], "argument --seed: invalid value '-1': expected an integer >= 0"),
        (["--host", ""], "argument --host: invalid value '': expected a host name or IP address"),
        (["--host", " "], "argument --host: invalid value ' ': expected a host name or IP address"),
        (["--port", "70000"], "argument --port: invalid value '70000': expected a TCP port from 0 to 65535"),
        (["--cluster", "a b"], "argument --cluster: invalid value 'a b'"),
        (["--foreign-started-by", "a b"], "argument --foreign-started-by: invalid value 'a b'"),
        (["--run-time-distribution", "normal"], "argument --run-time-distribution: invalid choice: 'normal'"),
    ],
)
def test_arguments_reject_invalid(capsys, argv, fragment):
    with pytest.raises(SystemExit) as raised:
        parse(*argv)

    assert raised.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--visibility-lag", "8", "--visibility-lag-max", "4"], "--visibility-lag-max 4 is below --visibility-lag 8"),
        (["--visibility-lag", "never", "--visibility-lag-max", "10"], "--visibility-lag-max 10 is below --visibility-lag never;"),
        (["--launch-outage", "30", "10"], "--launch-outage 30 10: START must be less than END"),
        (["--region", "mars"], "--region must be an AWS region name"),
    ],
)
def test_arguments_reject_conflicts(argv, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        config_from_arguments(parse(*argv))


def test_main_reports_conflict(capsys):
    with pytest.raises(SystemExit) as raised:
        simulate_ecs_main(["--visibility-lag", "8", "--visibility-lag-max", "4"])

    assert raised.value.code == 2
    assert "--visibility-lag-max 4 is below --visibility-lag 8" in capsys.readouterr().err


def test_main_reports_busy_port(capsys):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        status = simulate_ecs_main(["--port", str(port)])

    assert status == 1
    assert f"error: cannot listen on 127.0.0.1:{port}:" in capsys.readouterr().err
