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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training mask: per example draw r ~ U(0, 1), mask round(gamma(r) * K * N) positions.

    Returns ``(mask, ratio)``: BoolTensor[B, K, N] (True = masked) and FloatTensor[B]. At least
    ``min_masked`` positions are masked per example so every example carries a loss.
    """
    batch, k, n = shape
    total = k * n
    r = torch.rand(batch, generator=generator, device=device)
    ratio = mask_ratio(r, schedule)
    num_masked = torch.round(ratio * total).long().clamp(min_masked, total)
    scores = torch.rand(batch, total, generator=generator, device=device)
    mask = ranks(scores) < num_masked[:, None]
    return mask.view(batch, k, n), ratio


def ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ascending rank of each entry along the last dim (0 = smallest), ties broken by index."""
    order = scores.argsort(dim=-1, stable=True)
    arange = torch.arange(scores.shape[-1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, arange)
