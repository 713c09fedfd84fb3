"""The options every decoder shares, each with one name, one default and one check.

A decoder call is ``X_decode(model, spec_or_length, *, <data inputs>, **options)``. The options
split into three frozen objects, each validated once when built:

- ``SamplingOptions``: how tokens are drawn (temperature, top-k, top-p, classifier-free guidance
  and its annealing, and for masked decoders the choice temperature and its annealing);
- ``RunOptions``: where and how the loop runs (device, autocast dtype, torch.compile, a per-step
  callback), none of which changes what is sampled on a given device;
- the method's own options (``MaskGITOptions``, ``GroupOptions``, ...), declared by the method
  beside its loop and registered with it (``mgm.decoding.registry``).

``parse_options`` sorts a flat keyword dict into those objects and refuses an unknown or
inapplicable name with a ValueError that lists the accepted ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from mgm.checks import check_device, check_int, check_number
from mgm.schedules.annealing import check_annealing

CHOICE_TEMPERATURE = 4.5  # MaskGIT's temperature of the Gumbel noise on confidences (annealed to 0)


@dataclass(frozen=True)
class SamplingOptions:
    """How every decoder draws tokens.

    Args:
        temperature: of the token draw; 0 = argmax (greedy).
        top_k: keep the k most likely tokens (None = all).
        top_p: keep the smallest nucleus of probability >= top_p (None = all).
        guidance_scale: classifier-free guidance, ``cond + s * (cond - uncond)``; 0 = none.
        guidance_annealing: "constant", or "linear" / "cosine" ramps from 0 to the scale (MUSE).
        choice_temperature: masked decoders: temperature of the Gumbel noise added to the
            confidences that choose which tokens to keep (MaskGIT: 4.5).
        choice_temperature_annealing: how it decays over the steps ("linear": to 0 at the end).
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    guidance_scale: float = 0.0
    guidance_annealing: str = "constant"
    choice_temperature: float = CHOICE_TEMPERATURE
    choice_temperature_annealing: str = "linear"

    def __post_init__(self):
        check_number(self.temperature, "temperature", minimum=0)
        if self.top_k is not None:
            check_int(self.top_k, "top_k")
        if self.top_p is not None:
            check_number(self.top_p, "top_p", above=0, maximum=1)
        check_number(self.guidance_scale, "guidance_scale", minimum=0)
        check_annealing(self.guidance_annealing, "guidance_annealing")
        check_number(self.choice_temperature, "choice_temperature", minimum=0)
        check_annealing(self.choice_temperature_annealing, "choice_temperature_annealing")

    def check_vocab(self, vocab_size: int | None) -> None:
        """top_k must not exceed the vocabulary it filters (known only with the model)."""
        if self.top_k is not None and vocab_size is not None and self.top_k > vocab_size:
            raise ValueError(f"top_k={self.top_k}: larger than the vocabulary of {vocab_size} tokens")


# The sampling options that mean nothing to an autoregressive decoder (no confidences to rank).
MASKED_ONLY_SAMPLING = ("choice_temperature", "choice_temperature_annealing")


@dataclass(frozen=True)
class RunOptions:
    """Where and how a decode loop runs.

    Args:
        device: the decoding device (default: the model's parameters', else init_codes', else CPU).
        dtype: masked decoders: autocast dtype of the loop ("bfloat16", "float16"; None = the model's).
        compile: masked decoders: run the model's forward through ``torch.compile``.
        callback: ``callback(step, codes)`` after every step (codes [B, K, N], mask ids where
            still masked; AR decoders: the tokens so far [B, 1, L]); None costs nothing.
    """

    device: torch.device | str | None = None
    dtype: str | torch.dtype | None = None
    compile: bool = False
    callback: Callable[[int, torch.Tensor], None] | None = None

    def __post_init__(self):
        from mgm.decoding.speed import resolve_dtype

        if self.device is not None:
            check_device(self.device)
        resolve_dtype(self.dtype)
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile={self.compile!r}: expected True or False")
        if self.callback is not None and not callable(self.callback):
            raise ValueError(f"callback={self.callback!r}: expected None or a callable(step, codes)")


# Run options an AR decoder takes (its loop has no autocast or compile path).
AR_RUN = ("device", "callback")
# Run options a flexible-order AR decoder takes (autocast, but no compile: a step's shapes vary).
FLEX_AR_RUN = ("device", "dtype", "callback")


@dataclass(frozen=True)
class NoOptions:
    """A method with no options of its own (plain AR sampling)."""


def option_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def parse_options(
    options: dict,
    own: type,
    method: str,
    *,
    sampling_names: tuple[str, ...] | None = None,
    run_names: tuple[str, ...] | None = None,
) -> tuple[SamplingOptions, RunOptions, object]:
    """Sort flat keyword options into (SamplingOptions, RunOptions, the method's own options).

    ``sampling_names`` / ``run_names``: the shared options this method takes (default: all). An
    option outside those and ``own``'s fields is a ValueError listing the accepted names.
    """
    sampling_names = option_names(SamplingOptions) if sampling_names is None else sampling_names
    run_names = option_names(RunOptions) if run_names is None else run_names
    own_names = option_names(own)
    unknown = sorted(set(options) - set(sampling_names) - set(run_names) - set(own_names))
    if unknown:
        raise ValueError(
            f"method {method!r} got unknown option(s) {unknown}; it accepts {sorted(own_names)} (its own), "
            f"{sorted(sampling_names)} (sampling) and {sorted(run_names)} (run)"
        )
    pick = lambda names: {k: v for k, v in options.items() if k in names}  # noqa: E731
    return SamplingOptions(**pick(sampling_names)), RunOptions(**pick(run_names)), own(**pick(own_names))
