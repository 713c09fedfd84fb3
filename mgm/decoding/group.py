"""Group / codebook-level decoding for multi-codebook tokens (SoundStorm, MAGNeT, G-IPD).

The plan (``mgm.schedules.GroupPlan``) orders the K codebooks into groups. For each group in turn:
its tokens are decoded by the MaskGIT loop over the group's own steps, with the groups before it
known and the groups after it still masked (as in training). With ``plan.span`` > 1 spans of
frames are kept or re-masked whole, and with ``plan.guidance_low`` the guidance scale falls from
``guidance_scale`` to it as the group's mask ratio falls (MAGNeT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.decoding.cached import CacheOptions, passes_for
from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.maskgit import iterative_reveal
from mgm.decoding.recap import recap_reveal
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators
from mgm.models.conditioning import Condition
from mgm.schedules import mask_ratio
from mgm.schedules.groups import GroupPlan, check_plan_name, get_group_plan, plan_option_names
from mgm.schedules.reuse import ReusePattern
from mgm.tokens import TokenSpec

# The plan builders' options, each None = that builder's default.
PLAN_OPTIONS = ("steps", "schedule", "span", "guidance_low", "group_size")


@dataclass(frozen=True)
class GroupOptions(CacheOptions):
    """The group plan: a GroupPlan, or a plan name ("soundstorm", "magnet", "gipd", "joint") with
    its builder's options (``steps``: one count for every group or one per group; ``schedule``;
    magnet's ``span`` and ``guidance_low``; gipd's ``group_size``). ``full_first`` /
    ``cheap_per_full``: decode each group by ReCAP's full and cheap steps (None: MaskGIT's).
    ``cached`` / ``refresh``: cached decoding within each group (each group starts with a full pass)."""

    plan: str | GroupPlan = "soundstorm"
    steps: int | tuple[int, ...] | None = None
    schedule: str | None = None
    span: int | None = None
    guidance_low: float | None = None
    group_size: int | None = None
    full_first: int | None = None
    cheap_per_full: int | None = None

    # A new plan makes the saved options of another plan meaningless (pipelines drop them).
    RESETS: ClassVar[dict] = {"plan": PLAN_OPTIONS}
    HELP: ClassVar[dict] = {
        **CacheOptions.HELP,
        "plan": "codebook-group plan: soundstorm, magnet, gipd, joint",
        "steps": "decoding steps: one count for every group, or one per group",
        "span": "magnet: frames masked together",
        "guidance_low": "magnet: guidance falls to this as the mask ratio falls",
        "group_size": "gipd: codebooks per group",
        "full_first": "decode each group with feature reuse: full steps at the start",
        "cheap_per_full": "decode each group with feature reuse: cheap steps after each later full step",
    }

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.steps, list):
            object.__setattr__(self, "steps", tuple(self.steps))
        given = sorted(self.plan_options())
        if isinstance(self.plan, GroupPlan):
            if given:
                raise ValueError(f"plan options {given} only apply to a plan given by name, not to a GroupPlan")
        else:
            check_plan_name(self.plan)
            accepted = plan_option_names(self.plan)
            wrong = [name for name in given if name not in accepted]
            if wrong:
                raise ValueError(f"plan {self.plan!r} does not take {wrong}; it accepts {list(accepted)}")
        self.reuse  # noqa: B018 (builds the ReusePattern, which checks the reuse options)

    def plan_options(self) -> dict:
        return {name: getattr(self, name) for name in PLAN_OPTIONS if getattr(self, name) is not None}

    def group_plan(self, num_codebooks: int) -> GroupPlan:
        return get_group_plan(self.plan, num_codebooks, **self.plan_options())

    @property
    def reuse(self) -> ReusePattern | None:
        if self.full_first is None and self.cheap_per_full is None:
            return None
        defaults = ReusePattern()
        return ReusePattern(
            defaults.full_first if self.full_first is None else self.full_first,
            defaults.cheap_per_full if self.cheap_per_full is None else self.cheap_per_full,
        )


@torch.inference_mode()
def group_decode(
    model,
    spec: TokenSpec,
    *,
    batch_size: int | None = None,
    cond: Condition | None = None,
    generator: Generators = None,
    init_codes: torch.Tensor | None = None,
    editable: torch.Tensor | None = None,
    **options,
) -> DecodeResult:
    """Decode ``codes[B, K, N]`` group by group with any ``model(codes, cond) -> logits[B, K, N, V]``.

    Arguments as ``maskgit_decode``'s; ``options``: ``GroupOptions`` (the plan and its options,
    e.g. ``plan="magnet", steps=[20, 10, 10, 10]``), the sampling and the run options. ``nfe``
    is the sum of the groups' steps; ``compute`` counts full-pass equivalents (less than nfe
    with reuse or cached decoding).
    """
    run, own = prepare_masked(
        model, spec, GROUP, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    plan, reuse = own.group_plan(spec.num_codebooks), own.reuse
    passes = passes_for(run, own.cached, own.refresh, reuse=reuse is not None)
    codes = run.codes
    in_group = plan.group_masks(run.device)  # (G, K)
    trace = []
    # Every step's guidance scale up front: the loop below stays free of host-side tensor reads.
    group_scales = [_group_scales(run, plan, num_steps) for num_steps in plan.steps]
    with run.autocast():
        for g, (num_steps, scales) in enumerate(zip(plan.steps, group_scales)):
            candidates = spec.is_masked(codes) & in_group[g][None, :, None]
            common = dict(schedule=plan.schedule, scales=scales, span=plan.span, first_step=len(trace))
            if reuse is None:
                codes, records = iterative_reveal(run, passes, codes, candidates, num_steps, **common)
            else:
                kinds = reuse.kinds(num_steps)
                codes, records, _ = recap_reveal(run, passes, codes, candidates, num_steps, kinds=kinds, **common)
            trace.extend(records)
    return DecodeResult(codes=codes, nfe=plan.nfe, trace=trace, compute=passes.compute)


def _group_scales(run: MaskedRun, plan: GroupPlan, num_steps: int) -> list[float]:
    """Each step's guidance scale, up front (the loop stays free of host reads): the sampling
    options' annealing, or (MAGNeT, ``plan.guidance_low``) from the scale to guidance_low as the
    mask ratio before the step falls."""
    scale = run.sampling.guidance_scale
    if plan.guidance_low is None or scale == 0:
        return run.guidance_scales(num_steps)
    ratios = mask_ratio(torch.tensor([t / num_steps for t in range(num_steps)]), plan.schedule).tolist()
    return [plan.guidance_low + (scale - plan.guidance_low) * r for r in ratios]


GROUP = register(
    Method("group", group_decode, GroupOptions, MASKED, "codebook-group decoding (SoundStorm, MAGNeT, G-IPD)")
)
