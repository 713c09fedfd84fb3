"""Codebook-group plans for multi-codebook tokens (residual VQ audio codes, K > 1).

A plan splits the K codebooks into ordered groups and gives each group its decoding steps.
Training and decoding read the same plan: an example is trained on one group (the groups
before it given, the groups after it fully masked, its own tokens masked by the schedule), and
decoding reveals the groups in order, each by iterative parallel decoding over its own steps.

- SoundStorm (Borsos et al., 2023): one group per codebook level, many steps for the coarsest
  level and one (greedy) step for each finer level.
- MAGNeT (Ziv et al., 2024): one group per level with per-level steps, e.g. [20, 10, 10, 10],
  masking and re-masking spans of ``span`` frames rather than single frames, and guidance
  annealed from a high scale to ``guidance_low`` as the mask ratio falls.
- G-IPD (group-wise iterative parallel decoding): groups of several levels decoded jointly
  in a few steps each.
- "joint": one group holding every codebook (plain MaskGIT over all K * N tokens).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from mgm.schedules.mask import get_mask_schedule, mask_ratio, ranks


@dataclass(frozen=True)
class GroupPlan:
    """Ordered codebook groups and decoding steps per group.

    Args:
        groups: codebook indices of each group, in decoding order; together a partition of
            ``range(K)`` with every group's levels coarser (smaller) than the next group's.
        steps: decoding steps of each group (>= 1).
        schedule: mask schedule inside a group (training and decoding).
        span: frames masked and re-masked together (1 = single tokens; MAGNeT uses spans).
        guidance_low: when set, the guidance scale falls from the requested scale to this
            value as a group's mask ratio falls (MAGNeT); None keeps it constant.
    """

    groups: tuple[tuple[int, ...], ...]
    steps: tuple[int, ...]
    schedule: str = "cosine"
    span: int = 1
    guidance_low: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(tuple(int(k) for k in g) for g in self.groups))
        if any(isinstance(s, bool) or not isinstance(s, int) for s in self.steps):
            raise ValueError(f"steps={self.steps}: expected integer step counts, one per group")
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.groups or any(len(g) == 0 for g in self.groups):
            raise ValueError(f"groups={self.groups}: expected one or more non-empty groups of codebook indices")
        flat = [k for g in self.groups for k in g]
        if flat != list(range(len(flat))):
            raise ValueError(
                f"groups={self.groups}: expected the codebooks 0..{len(flat) - 1} each exactly once, in order"
            )
        if len(self.steps) != len(self.groups) or any(s < 1 for s in self.steps):
            raise ValueError(f"steps={self.steps}: expected {len(self.groups)} step counts >= 1, one per group")
        get_mask_schedule(self.schedule)
        if isinstance(self.span, bool) or not isinstance(self.span, int) or self.span < 1:
            raise ValueError(f"span={self.span!r}: expected an integer >= 1")
        if self.guidance_low is not None and (
            isinstance(self.guidance_low, bool)
            or not isinstance(self.guidance_low, (int, float))
            or not 0 <= self.guidance_low < float("inf")
        ):
            raise ValueError(f"guidance_low={self.guidance_low!r}: expected None or a finite number >= 0")

    @property
    def num_codebooks(self) -> int:
        return sum(len(g) for g in self.groups)

    @property
    def nfe(self) -> int:
        """Model forward passes to decode with this plan (one batched CFG forward counts once)."""
        return sum(self.steps)

    def check(self, num_codebooks: int) -> GroupPlan:
        if self.num_codebooks != num_codebooks:
            raise ValueError(f"plan covers {self.num_codebooks} codebooks; the tokens have K={num_codebooks}")
        return self

    def group_masks(self, device: torch.device | str | None = None) -> torch.Tensor:
        """BoolTensor[G, K]: which codebooks each group holds."""
        masks = torch.zeros(len(self.groups), self.num_codebooks, dtype=torch.bool, device=device)
        for g, levels in enumerate(self.groups):
            masks[g, list(levels)] = True
        return masks


def _per_group(steps: int | tuple[int, ...] | list[int], num_groups: int) -> tuple[int, ...]:
    """Steps per group: one int for every group, or a sequence (cut to the groups, or its last
    value repeated for the groups past its end)."""
    if isinstance(steps, int) and not isinstance(steps, bool):
        return (steps,) * num_groups
    if not isinstance(steps, (list, tuple)) or not steps:
        raise ValueError(f"steps={steps!r}: expected an integer or a non-empty list of integers, one per group")
    steps = tuple(steps)
    return steps[:num_groups] + (steps[-1],) * max(0, num_groups - len(steps))


def soundstorm_plan(num_codebooks: int, steps=(16, 1), schedule: str = "cosine") -> GroupPlan:
    """One group per level: ``steps[0]`` steps for the coarsest, ``steps[-1]`` for the rest (greedy 1)."""
    groups = tuple((k,) for k in range(num_codebooks))
    return GroupPlan(groups, _per_group(steps, len(groups)), schedule=schedule)


def magnet_plan(
    num_codebooks: int, steps=(20, 10, 10, 10), span: int = 3, guidance_low: float | None = 1.0,
    schedule: str = "cosine",
) -> GroupPlan:  # fmt: skip
    groups = tuple((k,) for k in range(num_codebooks))
    return GroupPlan(groups, _per_group(steps, len(groups)), schedule=schedule, span=span, guidance_low=guidance_low)


def gipd_plan(num_codebooks: int, steps=(8, 4), group_size: int = 2, schedule: str = "cosine") -> GroupPlan:
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size={group_size!r}: expected an integer >= 1")
    groups = tuple(tuple(range(s, min(s + group_size, num_codebooks))) for s in range(0, num_codebooks, group_size))
    return GroupPlan(groups, _per_group(steps, len(groups)), schedule=schedule)


def joint_plan(num_codebooks: int, steps: int = 12, schedule: str = "cosine") -> GroupPlan:
    return GroupPlan((tuple(range(num_codebooks)),), _per_group(steps, 1), schedule=schedule)


GROUP_PLANS = {"soundstorm": soundstorm_plan, "magnet": magnet_plan, "gipd": gipd_plan, "joint": joint_plan}


def plan_option_names(plan: str) -> tuple[str, ...]:
    """The options the builder of the named plan takes (every builder calls its step counts ``steps``)."""
    check_plan_name(plan)
    return tuple(inspect.signature(GROUP_PLANS[plan]).parameters)[1:]


def check_plan_name(plan: object) -> None:
    if not isinstance(plan, str) or plan not in GROUP_PLANS:
        raise ValueError(f"plan={plan!r} is not a known group plan; expected one of {sorted(GROUP_PLANS)}")


def get_group_plan(plan: str | GroupPlan, num_codebooks: int, **options) -> GroupPlan:
    """A GroupPlan by name (``options`` go to its builder) or as given, checked against K."""
    if isinstance(plan, GroupPlan):
        if options:
            raise ValueError(f"plan options {sorted(options)} only apply to a plan given by name")
        return plan.check(num_codebooks)
    accepted = plan_option_names(plan)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"plan {plan!r} got unknown option(s) {unknown}; it accepts {list(accepted)}")
    return GROUP_PLANS[plan](num_codebooks, **options).check(num_codebooks)


def span_scores(scores: torch.Tensor, active: torch.Tensor, span: int) -> torch.Tensor:
    """Average ``scores`` [B, K, N] over aligned spans of ``span`` frames, counting active tokens only.

    Inactive tokens get +inf. With span 1 this is ``scores`` where active. Ranking tokens by the
    result (ties broken by index) keeps or re-masks a span as a unit.
    """
    if span == 1:
        return scores.masked_fill(~active, float("inf"))
    b, k, n = scores.shape
    pad = -n % span
    padded = torch.nn.functional.pad(torch.where(active, scores, 0.0), (0, pad)).view(b, k, -1, span)
    counts = torch.nn.functional.pad(active.float(), (0, pad)).view(b, k, -1, span).sum(-1, keepdim=True)
    mean = (padded.sum(-1, keepdim=True) / counts.clamp_min(1)).expand(-1, -1, -1, span).reshape(b, k, -1)
    return mean[..., :n].masked_fill(~active, float("inf"))


def group_training_mask(
    shape: tuple[int, int, int],
    plan: GroupPlan,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training masks for one randomly chosen group per example.

    Returns ``(masked, target)``, BoolTensor[B, K, N] each: ``masked`` = the input positions
    holding the mask id (the chosen group's schedule-masked tokens and every token of the groups
    after it); ``target`` = the positions that carry the loss (the chosen group's masked tokens).
    Inside the chosen group a ratio gamma(r), r ~ U(0, 1), of each codebook's spans is masked
    (at least one span).
    """
    b, k, n = shape
    plan.check(k)
    group_of = torch.empty(k, dtype=torch.long, device=device)
    for g, levels in enumerate(plan.groups):
        group_of[list(levels)] = g
    chosen = torch.randint(len(plan.groups), (b,), generator=generator, device=device)  # (B,)
    current = group_of[None, :] == chosen[:, None]  # (B, K)
    later = group_of[None, :] > chosen[:, None]
    num_spans = -(-n // plan.span)
    ratio = mask_ratio(torch.rand(b, generator=generator, device=device), plan.schedule)
    count = torch.round(ratio * num_spans).long().clamp(1, num_spans)  # (B,)
    scores = torch.rand(b, k, num_spans, generator=generator, device=device)
    span_masked = ranks(scores) < count[:, None, None]  # (B, K, S)
    token_masked = span_masked.repeat_interleave(plan.span, dim=-1)[..., :n]
    target = token_masked & current[..., None]
    masked = target | later[..., None].expand(b, k, n)
    return masked, target
