"""Mask-ratio schedules gamma(r) and the rules that turn them into token counts.

gamma maps progress r in [0, 1] to the share of tokens still masked: gamma(0) = 1 (all
masked), gamma(1) = 0 (none), non-increasing in between. The same gamma serves training
(a ratio drawn per example) and decoding (how many tokens stay masked after each step).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

MaskSchedule = Callable[[torch.Tensor], torch.Tensor]
_FLOOR_EPS = 1e-9


def _cosine(r: torch.Tensor) -> torch.Tensor:
    return torch.cos(r * math.pi / 2)


def _linear(r: torch.Tensor) -> torch.Tensor:
    return 1 - r


def _square(r: torch.Tensor) -> torch.Tensor:
    return 1 - r**2


def _cubic(r: torch.Tensor) -> torch.Tensor:
    return 1 - r**3


def _sqrt(r: torch.Tensor) -> torch.Tensor:
    return 1 - r.sqrt()


def _log(r: torch.Tensor) -> torch.Tensor:
    # Concave like cosine: reveals few tokens early, many late.
    return torch.log2(2 - r)


def _exp(r: torch.Tensor) -> torch.Tensor:
    # Convex like sqrt: reveals many tokens early, few late.
    return torch.exp2(1 - r) - 1


MASK_SCHEDULES: dict[str, MaskSchedule] = {
    "cosine": _cosine,
    "linear": _linear,
    "square": _square,
    "cubic": _cubic,
    "sqrt": _sqrt,
    "log": _log,
    "exp": _exp,
}


def get_mask_schedule(schedule: str | MaskSchedule) -> MaskSchedule:
    """Return gamma for a known name, or the callable itself (it must map tensors to tensors)."""
    if callable(schedule):
        return schedule
    if isinstance(schedule, str) and schedule in MASK_SCHEDULES:
        return MASK_SCHEDULES[schedule]
    raise ValueError(
        f"schedule={schedule!r} is not a known mask schedule; expected one of "
        f"{sorted(MASK_SCHEDULES)} or a callable gamma(r) -> ratio"
    )


def mask_ratio(r: torch.Tensor | float, schedule: str | MaskSchedule = "cosine") -> torch.Tensor:
    """gamma(r) clamped to [0, 1]; ``r`` is progress in [0, 1]."""
    r = torch.as_tensor(r, dtype=torch.float64 if not isinstance(r, torch.Tensor) else None)
    return get_mask_schedule(schedule)(r.clamp(0, 1)).clamp(0, 1)


def masked_counts(num_unknown: torch.Tensor, num_steps: int, schedule: str | MaskSchedule = "cosine") -> torch.Tensor:
    """How many tokens are still masked after each decoding step: the one mask-count rule.

    Args:
        num_unknown: LongTensor[B], editable tokens unknown at the start, per sample.
        num_steps: decoding steps T >= 1.
        schedule: mask schedule name or callable.

    Returns:
        LongTensor[B, T]. Entry t is ``floor(U * gamma((t + 1) / T))``, clamped so every step
        reveals at least one token while any remain (so it is strictly decreasing until it
        reaches 0) and the last entry is 0. Counts come from the tokens unknown at the start,
        as in MaskGIT, so they do not drift with rounding from step to step.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps}: expected an integer >= 1")
    gamma = get_mask_schedule(schedule)
    unknown = num_unknown.to(torch.long)
    progress = torch.arange(1, num_steps + 1, dtype=torch.float64, device=unknown.device) / num_steps
    ratios = gamma(progress).clamp(0, 1)
    # The epsilon keeps exact products (12 * (1 - 5/12) = 7) from flooring to one less.
    counts = torch.floor(unknown[:, None].double() * ratios[None, :] + _FLOOR_EPS).long()
    # At least one token revealed per step: count_t <= count_{t-1} - 1 with count_{-1} = U,
    # i.e. count_t + t <= min(U - 1, count_s + s for s <= t): one running minimum does it.
    steps = torch.arange(num_steps, device=unknown.device)[None, :]
    shifted = torch.minimum(counts + steps, unknown[:, None] - 1)
    counts = torch.cummin(shifted, dim=1).values - steps
    counts = counts.clamp(min=0)
    counts[:, -1] = 0
    return counts


def random_mask(
    shape: tuple[int, int, int],
    schedule: str | MaskSchedule = "cosine",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    min_masked: int = 1,
    ratio_range: tuple[float, float] = (0.0, 1.0),
    given: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training mask: per example draw r ~ U(0, 1), mask round(ratio * F) of its F free positions,
    ratio = lo + (hi - lo) * gamma(r) for ``ratio_range`` (lo, hi).

    ``ratio_range`` narrows the ratios to [lo, hi]: MaskViT's variable mask ratio is
    ``schedule="linear", ratio_range=(0.5, 1.0)`` (ratios uniform in [0.5, 1]). ``given``:
    BoolTensor[B, K, N], positions never masked (context the decoder will be given); None = all
    free. Returns ``(mask, ratio)``: BoolTensor[B, K, N] (True = masked) and FloatTensor[B]. At
    least ``min_masked`` positions are masked per example (fewer only where fewer are free), so
    every example carries a loss.
    """
    low, high = check_ratio_range(ratio_range)
    batch, k, n = shape
    total = k * n
    r = torch.rand(batch, generator=generator, device=device)
    ratio = low + (high - low) * mask_ratio(r, schedule)
    scores = torch.rand(batch, total, generator=generator, device=device)
    if given is None:
        free = torch.full((batch,), total, device=scores.device)
    else:
        given = given.reshape(batch, total).to(scores.device)
        scores = scores.masked_fill(given, 2.0)  # ranked after every free position
        free = (~given).sum(1)
    num_masked = torch.minimum(torch.round(ratio * free).long().clamp_min(min_masked), free)
    mask = ranks(scores) < num_masked[:, None]
    return mask.view(batch, k, n), ratio


def check_ratio_range(ratio_range) -> tuple[float, float]:
    """A training mask-ratio range (lo, hi) with 0 <= lo <= hi <= 1."""
    ok = isinstance(ratio_range, (tuple, list)) and len(ratio_range) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ratio_range)
    if not ok or not 0 <= ratio_range[0] <= ratio_range[1] <= 1:
        raise ValueError(f"ratio_range={ratio_range!r}: expected (lo, hi) with 0 <= lo <= hi <= 1")
    return float(ratio_range[0]), float(ratio_range[1])


def given_slices(
    batch: int,
    spec,
    share: float,
    slices: tuple[int, int],
    both_ends_share: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """BoolTensor[B, K, N]: for a ``share`` of the examples, the leading s ~ U{lo..hi} slices of
    the grid's first axis (all codebooks) are given; of those examples, a ``both_ends_share`` are
    also given s' ~ U{lo..hi} trailing slices (s + s' kept below the axis length). The rest: none.

    This is what prediction (the first frames known) and interpolation (both ends known) look like
    to the model, so training on it keeps those edits in distribution."""
    length, per_slice = spec.shape[0], spec.num_positions // spec.shape[0]
    low, high = slices
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high < length):
        raise ValueError(f"slices={slices!r}: expected (lo, hi) with 1 <= lo <= hi < {length} (the first axis)")
    for name, value in (("share", share), ("both_ends_share", both_ends_share)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name}={value}: expected a probability in [0, 1]")
    u = torch.rand(batch, 4, generator=generator, device=device)
    lead = low + (u[:, 0] * (high - low + 1)).long().clamp_max(high - low)
    trail = low + (u[:, 1] * (high - low + 1)).long().clamp_max(high - low)
    trail = torch.where(u[:, 2] < both_ends_share, torch.minimum(trail, length - 1 - lead), torch.zeros_like(trail))
    lead = torch.where(u[:, 3] < share, lead, torch.zeros_like(lead))
    trail = torch.where(lead > 0, trail, torch.zeros_like(trail))
    index = torch.arange(length, device=lead.device)
    per_frame = (index < lead[:, None]) | (index >= length - trail[:, None])  # (B, length)
    given = per_frame.repeat_interleave(per_slice, dim=1)  # (B, N)
    return given[:, None].expand(batch, spec.num_codebooks, -1)


def ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ascending rank of each entry along the last dim (0 = smallest), ties broken by index."""
    order = scores.argsort(dim=-1, stable=True)
    arange = torch.arange(scores.shape[-1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, arange)
