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


def check_device(value: object, name: str = "device"):
    """A torch device, its name or a CUDA index that this machine has -> torch.device; else ValueError
    (a name torch does not know, CUDA or MPS where there is none, an index past the last GPU, meta)."""
    import torch

    if isinstance(value, bool) or not isinstance(value, (str, int, torch.device)):
        raise ValueError(f"{name}={value!r}: expected a torch device or its name, e.g. 'cpu', 'cuda', 'cuda:1'")
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: not a device name; expected e.g. 'cpu', 'cuda', 'cuda:1', 'mps'") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()  # no CUDA initialisation; 0 without a driver
        if count == 0:
            raise ValueError(f"{name}={value!r}: CUDA is not available on this machine; expected 'cpu'")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name}={value!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}={value!r}: MPS is not available on this machine; expected 'cpu'")
    elif device.type == "meta":
        raise ValueError(f"{name}={value!r}: the meta device holds no values; expected a real device")
    return device
