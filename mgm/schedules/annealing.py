"""Annealing of per-step scalars: choice temperature and classifier-free guidance scale.

Progress of step t (0-based) out of T is ``(t + 1) / T``, the same convention as the mask
schedule, so the last step has progress 1.
"""

from __future__ import annotations

import math

# Factor f(progress) in [0, 1] that multiplies the base value.
_RISING = {
    "constant": lambda p: 1.0,
    "linear": lambda p: p,
    "cosine": lambda p: (1 - math.cos(math.pi * p)) / 2,
}
_FALLING = {
    "constant": lambda p: 1.0,
    "linear": lambda p: 1 - p,
    "cosine": lambda p: (1 + math.cos(math.pi * p)) / 2,
}
ANNEALINGS = tuple(_RISING)


def _factor(table: dict, name: str, argument: str, step: int, num_steps: int) -> float:
    check_annealing(name, argument)
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps}: expected an integer >= 1")
    return table[name]((step + 1) / num_steps)


def choice_temperature_at(base: float, step: int, num_steps: int, annealing: str = "linear") -> float:
    """Temperature of the Gumbel noise that ranks candidates; MaskGIT decays it linearly to 0."""
    return base * _factor(_FALLING, annealing, "choice_temperature_annealing", step, num_steps)


def guidance_scale_at(scale: float, step: int, num_steps: int, annealing: str = "constant") -> float:
    """Guidance scale at a step; 'linear' / 'cosine' ramp it up from 0 to ``scale`` (MUSE)."""
    return scale * _factor(_RISING, annealing, "guidance_annealing", step, num_steps)


def check_annealing(name: str, argument: str) -> None:
    if name not in ANNEALINGS:
        raise ValueError(f"{argument}={name!r} is not a known annealing; expected one of {sorted(ANNEALINGS)}")
