"""structlog configuration for the command line: audit events to a file, or nowhere.

The library only emits events. The CLI routes them by logger name: events of
the ``fleetactor.audit`` logger become JSON lines in the audit log file (or
are dropped without one). Warnings of the other loggers go to a stream as
``key=value`` text when the command passes one, else they are dropped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, MutableMapping
from typing import Any, TextIO

import structlog

AUDIT_LOGGER_NAME = "fleetactor.audit"

_WARNING_LEVELS = frozenset({"warning", "error", "critical", "exception"})


class _AuditFileLogger(structlog.WriteLogger):
    """A file logger for audit events, rendered as JSON lines."""


class _DiagnosticsLogger(structlog.WriteLogger):
    """A stream logger for warnings of the library's other loggers, rendered as text."""


# Keys that lead every audit line, so that a reader sees the event first.
_LEADING_KEYS = ("event", "level", "timestamp", "fleet", "seq")


def _render(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
    if isinstance(logger, _AuditFileLogger):
        ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
        ordered.update(event_dict)
        return _JSON_RENDERER(logger, method_name, ordered)
    if isinstance(logger, _DiagnosticsLogger) and event_dict.get("level") in _WARNING_LEVELS:
        return _TEXT_RENDERER(logger, method_name, event_dict)
    raise structlog.DropEvent


_JSON_RENDERER = structlog.processors.JSONRenderer()
_TEXT_RENDERER = structlog.processors.KeyValueRenderer(key_order=["level", "event"], drop_missing=True)


@contextlib.contextmanager
def configure_logging(
    audit_log: str | os.PathLike[str] | None,
    *,
    diagnostics: TextIO | None = None,
    append: bool = False,
) -> Iterator[None]:
    """Route structlog events for the duration of the ``with`` block, then restore the old configuration.

    Args:
        audit_log: File that receives the audit events as JSON lines. It is
            created, or truncated unless ``append`` is true. None drops the
            audit events.
        diagnostics: Stream for warnings of the other loggers, such as a
            failed describe call; None drops them.
        append: Add to an existing audit log instead of replacing it.

    Raises:
        OSError: The audit log file cannot be opened for writing.
    """
    mode = "a" if append else "w"
    audit_file = None if audit_log is None else open(audit_log, mode, encoding="utf-8")  # noqa: SIM115 - closed below

    def make_logger(*args: Any) -> Any:
        name = args[0] if args else None
        if name == AUDIT_LOGGER_NAME:
            return structlog.ReturnLogger() if audit_file is None else _AuditFileLogger(audit_file)
        return structlog.ReturnLogger() if diagnostics is None else _DiagnosticsLogger(diagnostics)

    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.add_log_level, _render],
        logger_factory=make_logger,
        wrapper_class=structlog.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**previous)
        if audit_file is not None:
            audit_file.close()
