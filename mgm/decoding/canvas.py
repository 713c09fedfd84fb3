"""Input checks and the starting canvas shared by the masked decoders: ``prepare_masked`` is the
one preamble every masked decoder runs (options, model, canvas, condition, generators).

Everything here runs before the first model call, so bad input fails fast with a ValueError
naming the argument, the value and what was expected.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from mgm.checks import check_int
from mgm.decoding.guidance import check_guidance
from mgm.decoding.options import RunOptions, SamplingOptions
from mgm.decoding.sampling import Generators, check_generator
from mgm.decoding.speed import autocast, compiled, resolve_dtype
from mgm.models.conditioning import Condition
from mgm.models.protocols import ModelWrapper, model_traits
from mgm.schedules.annealing import choice_temperature_at, guidance_scale_at
from mgm.tokens import TokenSpec


def resolve_device(model: object, init_codes: torch.Tensor | None, device: torch.device | str | None) -> torch.device:
    """The explicit ``device``, else the model's parameters' device, else init_codes', else CPU."""
    if device is not None:
        return torch.device(device)
    if isinstance(model, nn.Module):
        param = next(iter(model.parameters()), None)
        if param is not None:
            return param.device
    if init_codes is not None:
        return init_codes.device
    return torch.device("cpu")


def check_model_spec(model: object, spec: TokenSpec) -> None:
    """A model that declares its TokenSpec must agree with the one decoding asks for."""
    if not isinstance(spec, TokenSpec):
        raise ValueError(f"spec: expected a mgm.tokens.TokenSpec, got {type(spec).__name__}")
    traits = model_traits(model)
    model_spec, accepts = traits.spec, traits.accepts
    if callable(accepts) and model_spec is not None and model_spec.codebook_sizes == spec.codebook_sizes:
        if len(spec.shape) == len(model_spec.shape) and accepts(spec.num_codebooks, spec.num_positions):
            return  # e.g. a shorter clip than the longest a 1-D model takes
    if isinstance(model_spec, TokenSpec) and model_spec != spec:
        raise ValueError(
            f"spec={spec} does not match the model's spec {model_spec} "
            f"(K={model_spec.num_codebooks} codebooks of sizes {model_spec.codebook_sizes}, "
            f"N={model_spec.num_positions} positions)"
        )


def check_model_needs(model: object, method) -> None:
    """The model must declare every trait the method ``needs`` (e.g. a token critic)."""
    traits = model_traits(model)
    for name in method.needs:
        if getattr(traits, name) is None:
            raise ValueError(
                f"model: method {method.name!r} needs a model with {name}; {type(model).__name__} has none "
                f"(see mgm.models.protocols)"
            )


def check_condition(cond: Condition | None, batch_size: int, model: object) -> None:
    if cond is None:
        return
    if not isinstance(cond, Condition):
        raise ValueError(f"cond: expected None or a mgm.models.Condition, got {type(cond).__name__}")
    if cond.batch_size not in (None, batch_size):
        raise ValueError(f"cond: batch size {cond.batch_size} does not match batch_size={batch_size}")
    num_classes = model_traits(model).num_classes
    if cond.labels is not None and (cond.labels.dtype != torch.long or cond.labels.device.type == "meta"):
        raise ValueError(f"cond.labels: expected a LongTensor of class ids, got {cond.labels.dtype}")
    if cond.labels is not None and num_classes:
        bad = (cond.labels < 0) | (cond.labels >= num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"cond.labels holds {cond.labels[bad][0].item()}: expected class labels in [0, {num_classes - 1}]"
            )


def prepare_canvas(
    spec: TokenSpec,
    batch_size: int | None,
    init_codes: torch.Tensor | None,
    editable: torch.Tensor | None,
    device: torch.device,
) -> torch.Tensor:
    """The starting codes LongTensor[B, K, N]: editable positions masked, the rest from init_codes.

    ``editable`` (BoolTensor [B, K, N], [K, N] or [N], True = may change) needs ``init_codes``.
    With init_codes alone, the positions holding a mask id are the editable ones.
    """
    if init_codes is None:
        if editable is not None:
            raise ValueError("editable given without init_codes: the tokens outside it must come from init_codes")
        check_int(1 if batch_size is None else batch_size, "batch_size")
        return spec.full_mask(1 if batch_size is None else batch_size, device)
    spec.check_codes(init_codes, "init_codes", allow_mask=True)
    b = init_codes.shape[0]
    if b == 0:
        raise ValueError(f"init_codes: shape {tuple(init_codes.shape)}, an empty batch; expected at least one sample")
    if batch_size is not None:
        check_int(batch_size, "batch_size")
    if batch_size is not None and batch_size != b:
        raise ValueError(f"batch_size={batch_size} does not match init_codes' batch size {b}")
    init_codes = init_codes.to(device=device, dtype=torch.long)
    if editable is None:
        return init_codes.clone()
    full = (b, spec.num_codebooks, spec.num_positions)
    if not isinstance(editable, torch.Tensor) or editable.dtype != torch.bool:
        raise ValueError(f"editable: expected a BoolTensor, got {getattr(editable, 'dtype', type(editable).__name__)}")
    if tuple(editable.shape) not in (full, full[1:], full[2:]):
        raise ValueError(
            f"editable: shape {tuple(editable.shape)} does not fit init_codes; expected {list(full)}, "
            f"{list(full[1:])} or {list(full[2:])}"
        )
    editable = editable.to(device).expand(full)
    if bool((spec.is_masked(init_codes) & ~editable).any()):
        raise ValueError("init_codes holds mask ids outside editable: every fixed token needs a value")
    return torch.where(editable, spec.mask_tensor(device), init_codes)


def batch_of(batch_size: int | None, cond: Condition | None, generator=None) -> int | None:
    """``batch_size``, else the condition's batch size, else the length of a per-sample generator
    list, else None (then init_codes / the prefix decide, or 1)."""
    if batch_size is None and isinstance(cond, Condition) and cond.batch_size is not None:
        return cond.batch_size
    if batch_size is None and isinstance(generator, (list, tuple)):
        return len(generator)
    return batch_size


@dataclass
class MaskedRun:
    """Everything a masked decode loop needs, checked before its first model call.

    ``codes`` [B, K, N] is the starting canvas (mask ids where to decode), ``model`` the callable
    to run (compiled when asked), ``cond`` on the decoding device.
    """

    model: object
    spec: TokenSpec
    codes: torch.Tensor
    cond: Condition | None
    generator: Generators
    sampling: SamplingOptions
    run: RunOptions
    device: torch.device
    dtype: torch.dtype | None

    @property
    def batch_size(self) -> int:
        return self.codes.shape[0]

    def guidance_scales(self, num_steps: int) -> list[float]:
        """The guidance scale of each of ``num_steps`` steps (annealed), computed up front."""
        s = self.sampling
        return [guidance_scale_at(s.guidance_scale, t, num_steps, s.guidance_annealing) for t in range(num_steps)]

    def choice_temperature(self, step: int, num_steps: int) -> float:
        s = self.sampling
        return choice_temperature_at(s.choice_temperature, step, num_steps, s.choice_temperature_annealing)

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.dtype)

    def step_done(self, step: int, codes: torch.Tensor) -> None:
        if self.run.callback is not None:
            self.run.callback(step, codes)


def prepare_masked(
    model,
    spec: TokenSpec,
    method,
    options: dict,
    *,
    batch_size: int | None,
    cond: Condition | None,
    generator: Generators,
    init_codes: torch.Tensor | None,
    editable: torch.Tensor | None,
) -> tuple[MaskedRun, object]:
    """The preamble of every masked decoder -> (MaskedRun, the method's own options).

    ``method``: its registry entry (``mgm.decoding.registry.Method``), which parses ``options``.
    """
    sampling, run, own = method.parse(options)
    if not callable(model):
        raise ValueError(f"model: expected a callable model(codes, cond) -> logits, got {type(model).__name__}")
    check_model_spec(model, spec)
    check_model_needs(model, method)
    sampling.check_vocab(max(spec.codebook_sizes))
    dtype = resolve_dtype(run.dtype)
    inner = model.unwrapped() if isinstance(model, ModelWrapper) else model
    if run.compile and not isinstance(inner, nn.Module):
        raise ValueError(f"compile=True needs an nn.Module model; got {type(inner).__name__}")
    if init_codes is not None and not isinstance(init_codes, torch.Tensor):
        raise ValueError(f"init_codes: expected a LongTensor [B, K, N], got {type(init_codes).__name__}")
    if init_codes is not None and init_codes.device.type == "meta":
        raise ValueError("init_codes: on the meta device (no values); expected a real tensor")
    device = resolve_device(model, init_codes, run.device)
    given = batch_size if init_codes is not None else batch_of(batch_size, cond, generator)
    codes = prepare_canvas(spec, given, init_codes, editable, device)
    check_condition(cond, codes.shape[0], model)
    check_guidance(sampling.guidance_scale, cond)
    generator = check_generator(generator, codes.shape[0], device)
    cond = None if cond is None else cond.to(device)
    runner = model
    if run.compile:  # a wrapper (a progress counter) stays outside the compiled module
        runner = model.rewrapped(compiled(inner)) if isinstance(model, ModelWrapper) else compiled(model)
    return MaskedRun(runner, spec, codes, cond, generator, sampling, run, device, dtype), own
