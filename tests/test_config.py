"""FleetConfig validation and the ECS_MAX_WORKERS environment variable."""

import pytest

from fleetactor import FleetConfig, Job


def test_defaults(monkeypatch):
    monkeypatch.delenv("ECS_MAX_WORKERS", raising=False)
    assert FleetConfig().max_workers == 16


def test_max_workers_from_environment(monkeypatch):
    monkeypatch.setenv("ECS_MAX_WORKERS", " 40 ")
    assert FleetConfig().max_workers == 40
    assert FleetConfig(max_workers=3).max_workers == 3


def test_non_numeric_environment_rejected(monkeypatch):
    monkeypatch.setenv("ECS_MAX_WORKERS", "sixteen")
    with pytest.raises(ValueError, match=r"ECS_MAX_WORKERS='sixteen' is not an integer"):
        FleetConfig()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_workers", 0, r"max_workers=0 is out of range; it must be >= 1"),
        ("max_workers", -3, r"max_workers=-3 is out of range"),
        ("max_workers", 2.5, r"max_workers must be an int, got 2.5"),
        ("reconcile_interval", 0, r"reconcile_interval=0 is out of range; it must be finite and > 0 seconds"),
        ("visibility_timeout", -1, r"visibility_timeout=-1 is out of range"),
        ("retry_base_delay", float("nan"), r"retry_base_delay must be a number of seconds"),
        ("launch_concurrency", 0, r"launch_concurrency=0 is out of range"),
        ("launch_attempts", True, r"launch_attempts must be an int, got True"),
        ("shutdown_timeout", float("inf"), r"shutdown_timeout=inf is out of range"),
        ("fleet_id", "", r"fleet_id must be a non-empty string"),
    ],
)
def test_invalid_value_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        FleetConfig(**{"max_workers": 4, field: value})


def test_max_delay_below_base_rejected():
    with pytest.raises(ValueError, match=r"retry_max_delay=1 is below retry_base_delay=2"):
        FleetConfig(max_workers=1, retry_base_delay=2, retry_max_delay=1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"key": ""}, r"key must be a non-empty string, got ''"),
        ({"key": 7}, r"key must be a non-empty string, got 7"),
        ({"key": "a", "priority": "high"}, r"priority must be an int, got 'high'"),
        ({"key": "a", "overrides": ["x"]}, r"overrides must be a mapping, got list"),
    ],
)
def test_invalid_job_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        Job(**arguments)
