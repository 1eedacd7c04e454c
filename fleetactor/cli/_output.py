"""Plain text output helpers for the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def format_table(rows: Sequence[tuple[str, object]], *, indent: str = "") -> str:
    """Format label/value rows as two aligned columns, values right-aligned."""
    labels = [label for label, _ in rows]
    values = [str(value) for _, value in rows]
    label_width = max(map(len, labels), default=0)
    value_width = max(map(len, values), default=0)
    return "\n".join(f"{indent}{label:<{label_width}}  {value:>{value_width}}" for label, value in zip(labels, values))


def print_json(data: dict[str, Any]) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
