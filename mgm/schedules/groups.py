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
        object.__setattr__(self, "steps", tuple(int(s) for s in self.steps))
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
        if self.span < 1:
            raise ValueError(f"span={self.span}: expected an integer >= 1")

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


def soundstorm_plan(num_codebooks: int, first_steps: int = 16, other_steps: int = 1, **kw) -> GroupPlan:
    return GroupPlan(
        tuple((k,) for k in range(num_codebooks)), (first_steps,) + (other_steps,) * (num_codebooks - 1), **kw
    )


def magnet_plan(
    num_codebooks: int, steps=(20, 10, 10, 10), span: int = 3, guidance_low: float | None = 1.0, **kw
) -> GroupPlan:
    steps = tuple(steps)[:num_codebooks] + (tuple(steps)[-1],) * max(0, num_codebooks - len(tuple(steps)))
    return GroupPlan(tuple((k,) for k in range(num_codebooks)), steps, span=span, guidance_low=guidance_low, **kw)


def gipd_plan(num_codebooks: int, group_size: int = 2, steps=(8, 4), **kw) -> GroupPlan:
    groups = tuple(tuple(range(s, min(s + group_size, num_codebooks))) for s in range(0, num_codebooks, group_size))
    steps = tuple(steps)[: len(groups)] + (tuple(steps)[-1],) * max(0, len(groups) - len(tuple(steps)))
    return GroupPlan(groups, steps, **kw)


def joint_plan(num_codebooks: int, steps: int = 12, **kw) -> GroupPlan:
    return GroupPlan((tuple(range(num_codebooks)),), (steps,), **kw)


GROUP_PLANS = {"soundstorm": soundstorm_plan, "magnet": magnet_plan, "gipd": gipd_plan, "joint": joint_plan}


def get_group_plan(plan: str | GroupPlan, num_codebooks: int, **options) -> GroupPlan:
    """A GroupPlan by name (``options`` go to its builder) or as given, checked against K."""
    if isinstance(plan, GroupPlan):
        if options:
            raise ValueError(f"plan options {sorted(options)} only apply to a plan given by name")
        return plan.check(num_codebooks)
    if plan not in GROUP_PLANS:
        raise ValueError(f"plan={plan!r} is not a known group plan; expected one of {sorted(GROUP_PLANS)}")
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
