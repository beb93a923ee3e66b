"""Type and range rules for values read from files (sweep specs, cluster configs, threshold
files, records), in one place so that every new input kind inherits them.

TOML and JSON accept what a setting must not: ``true`` where a number belongs (Python's bool
is an int), ``nan`` and ``inf`` (which compare false with every bound, so a ``v <= 0`` check
lets ``nan`` through). Each rule returns the problem as text, or None, and the caller puts it
into its own error with the file's name.
"""

from __future__ import annotations

import math
from typing import Any


def is_int(v: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def int_problem(name: str, v: Any, low: int) -> str | None:
    """Why ``v`` is not an integer >= ``low``, or None."""
    if not is_int(v) or v < low:
        return f"{name} must be an integer >= {low}, got {v!r}"
    return None


def number_problem(name: str, v: Any, low: float | None = None, above: bool = False) -> str | None:
    """Why ``v`` is not a finite number (>= ``low``, or > ``low`` with ``above``), or None."""
    if not is_number(v):
        return f"{name} must be a finite number, got {v!r}"
    if low is not None and (v <= low if above else v < low):
        return f"{name} must be {'>' if above else '>='} {low:g}, got {v!r}"
    return None


def shape_problem(record: Any, fields: tuple[tuple[str, type], ...]) -> str | None:
    """Why ``record`` is not a JSON object with each ``(key, type)`` of ``fields`` (bools are
    not ints, strings not empty), or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    for key, kind in fields:
        value = record.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{key!r} missing or not a {kind.__name__}"
        if value == "":
            return f"{key!r} is empty"
    return None
