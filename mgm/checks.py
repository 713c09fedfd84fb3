"""Checks of user-given numbers, shared by every layer: a ValueError naming the argument, the value
and what was expected (a bool is not an integer, a string is not a number, NaN and inf are refused)."""

from __future__ import annotations

import math


def check_number(value: object, name: str, *, minimum: float | None = None, above: float | None = None,
                 maximum: float | None = None) -> float:  # fmt: skip
    """A finite real number (not a bool, not a string) within the bounds -> float; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: expected a finite number")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r}: expected a number >= {minimum:g}")
    if above is not None and value <= above:
        raise ValueError(f"{name}={value!r}: expected a number > {above:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value!r}: expected a number <= {maximum:g}")
    return float(value)


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """A real int (not a bool or a float) >= ``minimum``; else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: expected an integer >= {minimum}")
    return value
