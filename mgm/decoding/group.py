"""Group / codebook-level decoding for multi-codebook tokens (SoundStorm, MAGNeT, G-IPD).

The plan (``mgm.schedules.GroupPlan``) orders the K codebooks into groups. For each group in turn:
its tokens are decoded by the MaskGIT loop over the group's own steps, with the groups before it
known and the groups after it still masked (as in training). With ``plan.span`` > 1 spans of
frames are kept or re-masked whole, and with ``plan.guidance_low`` the guidance scale falls from
``guidance_scale`` to it as the group's mask ratio falls (MAGNeT).
"""

from __future__ import annotations

import torch

from mgm.decoding.canvas import check_condition, check_model_spec, check_reveal_args, prepare_canvas, resolve_device
from mgm.decoding.guidance import GuidedModel, MaskedModel
from mgm.decoding.maskgit import iterative_reveal
from mgm.decoding.recap import CachedGuidedModel, recap_reveal
from mgm.decoding.result import DecodeResult
from mgm.decoding.speed import autocast, check_speed_args, compiled
from mgm.models.conditioning import Condition
from mgm.schedules import mask_ratio
from mgm.schedules.groups import GroupPlan, get_group_plan
from mgm.schedules.reuse import ReusePlan
from mgm.tokens import TokenSpec


@torch.inference_mode()
def group_decode(
    model: MaskedModel,
    spec: TokenSpec,
    batch_size: int | None = 4,
    plan: str | GroupPlan = "soundstorm",
    cond: Condition | None = None,
    guidance_scale: float = 0.0,
    temperature: float = 1.0,
    init_codes: torch.Tensor | None = None,
    editable: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
    choice_temperature: float = 4.5,
    choice_temperature_annealing: str = "linear",
    device: torch.device | str | None = None,
    reuse: ReusePlan | None = None,
    dtype: str | torch.dtype | None = None,
    compile: bool = False,
    **plan_options,
) -> DecodeResult:
    """Decode ``codes[B, K, N]`` group by group with any ``model(codes, cond) -> logits[B, K, N, V]``.

    Args are those of ``maskgit_decode`` except ``plan``: a GroupPlan or a plan name
    ("soundstorm", "magnet", "gipd", "joint") whose builder takes ``plan_options`` (e.g.
    ``steps=[20, 10, 10, 10]``). ``nfe`` is the sum of the groups' steps. With ``reuse`` (a
    ReusePlan) each group is decoded by ReCAP's full and cheap steps (``recap_decode``), and
    ``compute`` counts full-pass equivalents. ``dtype`` / ``compile``: as in ``maskgit_decode``
    (compile only without ``reuse``).
    """
    device = resolve_device(model, init_codes, device)
    check_model_spec(model, spec)
    dtype = check_speed_args(dtype, compile, model)
    if compile and reuse is not None:
        raise ValueError("compile=True is not supported with reuse (ReCAP's cheap passes vary in shape)")
    plan = get_group_plan(plan, spec.num_codebooks, **plan_options)
    check_reveal_args(temperature, top_k, top_p, guidance_scale, cond, choice_temperature, choice_temperature_annealing)
    codes = prepare_canvas(spec, batch_size, init_codes, editable, device)
    check_condition(cond, codes.shape[0], model)
    cond = None if cond is None else cond.to(device)
    if reuse is not None and not isinstance(reuse, ReusePlan):
        raise ValueError(f"reuse: expected a mgm.schedules.reuse.ReusePlan or None, got {type(reuse).__name__}")

    if reuse is None:
        guided = GuidedModel(compiled(model) if compile else model, cond)
    else:
        guided = CachedGuidedModel(model, cond, guidance_scale > 0)
    in_group = plan.group_masks(device)  # (G, K)
    trace, compute = [], 0.0
    # Every step's guidance scale up front: the loop below stays free of host-side tensor reads.
    group_scales = [[_scale_at(guidance_scale, plan, t, n) for t in range(n)] for n in plan.steps]
    for g, (num_steps, scales) in enumerate(zip(plan.steps, group_scales)):
        candidates = spec.is_masked(codes) & in_group[g][None, :, None]
        args = (spec, codes, candidates, num_steps, plan.schedule, scales)
        sampling = (temperature, top_k, top_p, choice_temperature, choice_temperature_annealing, generator)
        with autocast(device, dtype):
            if reuse is None:
                codes, records = iterative_reveal(guided, *args, *sampling, span=plan.span, first_step=len(trace))
                compute += num_steps
            else:
                codes, records, cost = recap_reveal(
                    guided, *args, reuse.kinds(num_steps), *sampling, span=plan.span, first_step=len(trace)
                )
                compute += cost
        trace.extend(records)
    return DecodeResult(codes=codes, nfe=plan.nfe, trace=trace, compute=compute)


def _scale_at(scale: float, plan: GroupPlan, step: int, num_steps: int) -> float:
    """Constant, or (MAGNeT) from ``scale`` to ``plan.guidance_low`` as the mask ratio before the step falls."""
    if plan.guidance_low is None or scale == 0:
        return scale
    ratio = float(mask_ratio(torch.tensor(step / num_steps), plan.schedule))
    return plan.guidance_low + (scale - plan.guidance_low) * ratio
