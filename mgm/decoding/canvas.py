"""Input checks and the starting canvas shared by the masked decoders.

Everything here runs before the first model call, so bad input fails fast with a ValueError
naming the argument, the value and what was expected.
"""

from __future__ import annotations

import torch
from torch import nn

from mgm.models.conditioning import Condition
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
    model_spec = getattr(model, "spec", None)
    accepts = getattr(model, "accepts", None)
    if callable(accepts) and model_spec is not None and model_spec.codebook_sizes == spec.codebook_sizes:
        if len(spec.shape) == len(model_spec.shape) and accepts(spec.num_codebooks, spec.num_positions):
            return  # e.g. a shorter clip than the longest a 1-D model takes
    if isinstance(model_spec, TokenSpec) and model_spec != spec:
        raise ValueError(
            f"spec={spec} does not match the model's spec {model_spec} "
            f"(K={model_spec.num_codebooks} codebooks of sizes {model_spec.codebook_sizes}, "
            f"N={model_spec.num_positions} positions)"
        )


def check_positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected an integer >= 1")


def check_condition(cond: Condition | None, batch_size: int, model: object) -> None:
    if cond is None:
        return
    if not isinstance(cond, Condition):
        raise ValueError(f"cond: expected None or a mgm.models.Condition, got {type(cond).__name__}")
    if cond.batch_size not in (None, batch_size):
        raise ValueError(f"cond: batch size {cond.batch_size} does not match batch_size={batch_size}")
    num_classes = getattr(model, "num_classes", None)
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
        check_positive_int(batch_size, "batch_size")
        return spec.full_mask(batch_size, device)
    spec.check_codes(init_codes, "init_codes", allow_mask=True)
    b = init_codes.shape[0]
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


def check_reveal_args(temperature, top_k, top_p, guidance_scale, cond, choice_temperature, choice_annealing) -> None:
    """The checks every MaskGIT-style decoder shares: token sampling, guidance, confidence noise."""
    from mgm.decoding.guidance import check_guidance_args
    from mgm.decoding.sampling import check_sampling_args
    from mgm.schedules.annealing import check_annealing

    check_sampling_args(temperature, top_k, top_p)
    check_guidance_args(guidance_scale, cond)
    check_annealing(choice_annealing, "choice_temperature_annealing")
    if not choice_temperature >= 0:
        raise ValueError(f"choice_temperature={choice_temperature}: expected a number >= 0")
