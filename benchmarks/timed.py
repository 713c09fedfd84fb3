"""What every timed row of benchmarks/decode_speed.py is (``TimedMethod``), and the precision helpers
the mgm rows and the peers share: the guidance convention, autocast, stored versus autocast dtype,
and the speed options a registered mgm decoder takes itself."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mgm.decoding.registry import Method


class PeerMissing(RuntimeError):
    """A peer's package is not installed (or cannot run here): the benchmark skips its rows."""


@dataclass
class TimedMethod:
    """One row family of the table: a decoder on a model, at one guidance setting.

    ``run(batch)`` decodes ``batch`` samples and returns codes [B, N]; ``step(batch)`` runs the model
    work of one decoding step (for FLOP counting and the forward's achieved throughput)."""

    name: str
    family: str  # "mgm" or the peer's package
    guided: bool
    guidance: float  # aMUSEd's convention (1 = none)
    run: Callable[[int], torch.Tensor]  # batch -> codes [B, N]
    step: Callable[[int], object]  # batch -> one decoding step's model work
    nfe: Callable[[int], float]  # batch -> model calls per decode
    full_passes: Callable[[int], float]  # batch -> per-sample full-sequence forward rows / N per decode
    timed: str  # what the timed call covers
    settings: dict = field(default_factory=dict)
    reveals: Callable[[], list[int]] | None = None  # tokens revealed at each step of one batch-1 decode
    dtype: str = "float32"  # how the model runs: "float32", "bfloat16 autocast", "bfloat16 weights"
    fallback: Callable[[], TimedMethod] | None = None  # the same method in float32, where this one fails to run


def mgm_guidance(guidance: float) -> float:
    """aMUSEd's ``uncond + g * (cond - uncond)`` as mgm's ``cond + s * (cond - uncond)``: s = g - 1."""
    return guidance - 1.0


def speed_kwargs(method: Method, dtype: torch.dtype, compile: bool) -> tuple[dict, bool]:
    """The speed options (``dtype``, ``compile``) a registered decoder takes itself, and whether the
    caller must autocast instead (a decoder without a ``dtype`` run option)."""
    kwargs, outer_autocast = {}, False
    if dtype != torch.float32:
        if "dtype" in method.run_names:
            kwargs["dtype"] = dtype
        else:
            outer_autocast = True
    if compile and "compile" in method.run_names:
        kwargs["compile"] = True
    return kwargs, outer_autocast


def autocast(device: torch.device, dtype: torch.dtype, enabled: bool = True):
    """torch.autocast in ``dtype`` (a no-op for float32 or when not ``enabled``)."""
    if not enabled or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def precision(dtype: torch.dtype, cast: bool) -> tuple[torch.dtype, str]:
    """(the dtype the decode loop autocasts to, the report's name for it). With ``cast`` the weights
    are stored in ``dtype`` and nothing autocasts (diffusers' ``torch_dtype`` path)."""
    name = str(dtype).removeprefix("torch.")
    if dtype == torch.float32:
        return torch.float32, name
    return (torch.float32, f"{name} weights") if cast else (dtype, f"{name} autocast")
