"""Type checks of request members, raising InvalidParameterException as ECS does."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fleetactor.simulator._errors import invalid_parameter

__all__ = [
    "optional_enum",
    "optional_int",
    "optional_object",
    "optional_object_list",
    "optional_string",
    "optional_string_list",
    "required_string",
]


def optional_string(request: Mapping[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_parameter(f"{name} must be a string, got {_describe(value)}.")
    return value


def required_string(request: Mapping[str, Any], name: str) -> str:
    value = optional_string(request, name)
    if value is None or value == "":
        raise invalid_parameter(f"{name} is missing: it is required and must be a non-empty string.")
    return value


def optional_int(request: Mapping[str, Any], name: str) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_parameter(f"{name} must be an integer, got {_describe(value)}.")
    return value


def optional_enum(request: Mapping[str, Any], name: str, allowed: Collection[str]) -> str | None:
    value = optional_string(request, name)
    if value is not None and value not in allowed:
        choices = ", ".join(sorted(allowed))
        raise invalid_parameter(f"{name} must be one of {choices}, got {value!r}.")
    return value


def optional_string_list(request: Mapping[str, Any], name: str) -> list[str] | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_parameter(f"{name} must be a list of strings, got {_describe(value)}.")
    return value


def optional_object(request: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = request.get(name)
    if value is not None and not isinstance(value, dict):
        raise invalid_parameter(f"{name} must be an object, got {_describe(value)}.")
    return value


def optional_object_list(request: Mapping[str, Any], name: str) -> list[dict[str, Any]] | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid_parameter(f"{name} must be a list of objects, got {_describe(value)}.")
    return value


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
