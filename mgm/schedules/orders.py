"""Content-independent position orders for masked decoding (``maskgit_decode(order=...)``).

An order is a permutation of the N positions of a token grid: position ``order[0]`` is revealed
first. Decoders turn it into a priority per (codebook, position) with ``order_priority`` and reveal
the highest-priority masked tokens each step, in the counts the mask schedule gives.

- "halton": Halton-MaskGIT's quasi-random order. On a 2-D grid (H, W) the Halton sequence of
  bases (2, 3) scaled to the grid, each cell taken the first time the sequence lands in it; on a
  1-D axis (time) the van der Corput sequence in base 2. Early steps spread over the whole grid.
- "locality": LPD's locality-aware order: the positions of even coordinate sum, then the odd
  ones (no two of one class are neighbours), each class by farthest-point fill. A step that
  reveals k tokens takes k consecutive entries, which lie far apart, and only the one step that
  crosses from one class to the other can hold neighbours.
- "random": a fresh uniform permutation per sample (from the decoder's generator).
- a LongTensor[N] permutation given by the caller.
- "confidence" (not an order): MaskGIT's own rule, the model's confidence chooses.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

ORDERS = ("confidence", "halton", "locality", "random")


def check_order(order, num_positions: int | None = None):
    """``order``: one of ORDERS or a permutation LongTensor[N]; ValueError naming it otherwise."""
    if isinstance(order, torch.Tensor):
        if order.dtype != torch.long or order.dim() != 1:
            raise ValueError(
                f"order: expected a permutation LongTensor[N], got {order.dtype} of shape {tuple(order.shape)}"
            )
        n = order.numel()
        if num_positions is not None and n != num_positions:
            raise ValueError(f"order: a permutation of {n} positions; the token grid has {num_positions}")
        if not torch.equal(order.sort().values.cpu(), torch.arange(n)):
            raise ValueError("order: expected a permutation of 0..N-1 (every position once)")
        return order
    if order not in ORDERS:
        raise ValueError(f"order={order!r}: expected one of {list(ORDERS)} or a permutation LongTensor[N]")
    return order


def _radical_inverse(index: int, base: int) -> float:
    value, scale = 0.0, 1.0 / base
    while index:
        index, digit = divmod(index, base)
        value += digit * scale
        scale /= base
    return value


_HALTON_BASES = (2, 3, 5, 7, 11, 13)


@lru_cache(maxsize=32)
def halton_order(shape: tuple[int, ...]) -> torch.Tensor:
    """LongTensor[N]: the Halton order of a grid ``shape`` (van der Corput for (T,); bases 2, 3,
    5, ... per axis for (H, W), (T, H, W), ...): point i of the Halton sequence picks its cell,
    cells already taken are skipped."""
    if not 1 <= len(shape) <= len(_HALTON_BASES):
        raise ValueError(f"halton order: a grid of 1 to {len(_HALTON_BASES)} axes, got shape {shape}")
    bases, sizes = _HALTON_BASES[: len(shape)], tuple(shape)
    total = math.prod(sizes)
    seen, order, index = set(), [], 1
    while len(order) < total:
        flat = 0
        for base, size in zip(bases, sizes):
            flat = flat * size + min(size - 1, int(_radical_inverse(index, base) * size))
        if flat not in seen:
            seen.add(flat)
            order.append(flat)
        index += 1
    return torch.tensor(order)


@lru_cache(maxsize=32)
def locality_order(shape: tuple[int, ...]) -> torch.Tensor:
    """LongTensor[N]: LPD-style locality-aware order of the grid ``shape`` (any number of axes).

    Positions whose coordinates sum to an even number come first, the odd ones after: no two of
    one parity are neighbours (they differ by one along one axis), so a step whose tokens lie in
    one parity class has no two adjacent. Within a class, farthest-point fill spreads each step
    over the grid (``_farthest_point_fill``).
    """
    axes = torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape], indexing="ij")
    points = torch.stack([a.flatten() for a in axes], -1)  # (N, D)
    parity = points.sum(-1).long() % 2
    order = []
    for cls in (0, 1):
        members = (parity == cls).nonzero()[:, 0]
        order += members[_farthest_point_fill(points[members])].tolist()
    return torch.tensor(order)


def _farthest_point_fill(points: torch.Tensor) -> torch.Tensor:
    """LongTensor[M]: an order of ``points`` [M, D] from the first, each next point the farthest
    from all before it; ties go to the one farthest from the point just taken, then the lowest index."""
    n = len(points)
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    span = float((points.max(0).values - points.min(0).values).pow(2).sum()) + 1  # > any squared distance
    nearest = torch.full((n,), math.inf, dtype=torch.float64)
    order, current = [], 0
    for _ in range(n):
        order.append(current)
        from_current = (points - points[current]).pow(2).sum(-1)
        nearest = torch.minimum(nearest, from_current)
        nearest[current] = -1.0  # taken
        current = int((nearest * span + from_current).argmax())
    return torch.tensor(order)


def order_permutations(order, shape: tuple[int, ...], batch_size: int, device, noise: torch.Tensor | None = None):
    """LongTensor[B, N]: each sample's order of the positions of the grid ``shape``. "random"
    sorts ``noise`` FloatTensor[B, N] (uniform draws the decoder makes from its generator)."""
    n = math.prod(shape)
    if isinstance(order, torch.Tensor):
        return order.to(device)[None].expand(batch_size, n)
    if order == "halton":
        return halton_order(tuple(shape)).to(device)[None].expand(batch_size, n)
    if order == "locality":
        return locality_order(tuple(shape)).to(device)[None].expand(batch_size, n)
    if order == "random":
        if noise is None or noise.shape != (batch_size, n):
            raise ValueError(f"order='random': expected noise of shape {(batch_size, n)}")
        return noise.argsort(-1)
    raise ValueError(f"order={order!r}: not a position order")


def order_priority(perm: torch.Tensor, num_codebooks: int) -> torch.Tensor:
    """perm LongTensor[B, N] -> FloatTensor[B, K, N] priorities, higher = revealed sooner: a
    position's place in the order; its K codebooks in codebook order within that place."""
    b, n = perm.shape
    place = torch.empty_like(perm).scatter_(-1, perm, torch.arange(n, device=perm.device).expand(b, n))
    codebook = torch.arange(num_codebooks, device=perm.device)[None, :, None]
    return -(place[:, None, :] * num_codebooks + codebook).double()
