"""Grid-window self-attention: each grid position attends only to the positions of its window.

A window shape (one size per grid axis, each dividing the axis) tiles the row-major token grid
into equal boxes; a position's queries see the keys of its own box and of the condition prefix,
and prefix queries see everything. MaskViT alternates a spatial window (1, H, W) with a
spatiotemporal one (T, h, w) on video tokens; here that is ``windows=[(1, H, W), (T, h, w)]`` on any
grid, with no notion of what the axes mean. A window equal to the whole grid is full attention.

Two equal ways to compute it: ``attend`` gathers each window's rows into a batch of short
sequences (cost N * window size rather than N^2), and ``mask`` gives the boolean mask for query
rows at arbitrary sequence indices (partial passes that reuse cached keys/values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Window = tuple[int, ...]


def check_windows(windows, shape: Sequence[int]) -> list[list[int]] | None:
    """``windows`` as saved in a config (a list of window shapes) after checking each one fits
    ``shape``: as many sizes as axes, each a positive divisor of its axis. None stays None."""
    if windows is None:
        return None
    shape = tuple(shape)
    if not isinstance(windows, (list, tuple)) or not windows:
        raise ValueError(f"windows={windows!r}: expected None or a non-empty list of window shapes")
    checked = []
    for window in windows:
        ok = isinstance(window, (list, tuple)) and len(window) == len(shape)
        ok = ok and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 and n % w == 0
                        for w, n in zip(window, shape))  # fmt: skip
        if not ok:
            raise ValueError(
                f"windows: {window!r} does not tile the grid {shape}; "
                f"expected {len(shape)} sizes, each dividing its axis"
            )
        checked.append(list(window))
    return checked


def window_ids(shape: Sequence[int], window: Sequence[int]) -> torch.Tensor:
    """LongTensor[N]: the index of the window holding each row-major grid position."""
    coords = torch.meshgrid(*[torch.arange(n) for n in shape], indexing="ij")
    ids = torch.zeros(shape, dtype=torch.long)
    for axis_coords, n, w in zip(coords, shape, window):
        ids = ids * (n // w) + axis_coords // w
    return ids.flatten()


class WindowLayout(nn.Module):
    """One window shape over a grid behind ``num_prefix`` global prefix rows (no parameters).

    Buffers (not saved): ``ids`` LongTensor[P + N], each sequence row's window (-1 for the prefix);
    ``order`` LongTensor[N], grid positions sorted by window (row-major within each), and
    ``inverse``, its inverse permutation."""

    def __init__(self, shape: Sequence[int], window: Sequence[int], num_prefix: int = 0):
        super().__init__()
        self.shape, self.window, self.num_prefix = tuple(shape), tuple(window), num_prefix
        self.window_size = math.prod(window)
        self.num_windows = math.prod(shape) // self.window_size
        grid_ids = window_ids(shape, window)
        order = grid_ids.argsort(stable=True)
        self.register_buffer("ids", torch.cat([torch.full((num_prefix,), -1), grid_ids]), persistent=False)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", order.argsort(), persistent=False)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, window={self.window}, num_prefix={self.num_prefix}"

    def mask(self, index: torch.Tensor) -> torch.Tensor:
        """Query rows at sequence indices ``index`` LongTensor[...] -> BoolTensor[..., P + N], True =
        may attend (same window, or either side a prefix row)."""
        query = self.ids[index][..., None]
        return (query == self.ids) | (query < 0) | (self.ids < 0)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
        """Windowed attention of all P + N rows: q, k, v [B, H, P + N, E] -> [B, H, P + N, E]."""
        b, h, length, e = q.shape
        p = self.num_prefix
        if length != p + len(self.order):
            raise ValueError(f"window attention over {length} rows; the layout has {p} + {len(self.order)}")

        def windows_of(x):  # (B, H, P + N, E) -> (B, H, windows, window size, E)
            return x[:, :, p:][:, :, self.order].view(b, h, self.num_windows, self.window_size, e)

        keys, values = windows_of(k), windows_of(v)
        if p:  # every window also sees the prefix rows
            keys = torch.cat([k[:, :, None, :p].expand(-1, -1, self.num_windows, -1, -1), keys], dim=3)
            values = torch.cat([v[:, :, None, :p].expand(-1, -1, self.num_windows, -1, -1), values], dim=3)
        out = F.scaled_dot_product_attention(windows_of(q), keys, values, dropout_p=dropout_p)
        out = out.reshape(b, h, -1, e)[:, :, self.inverse]  # back to row-major
        if p:
            prefix = F.scaled_dot_product_attention(q[:, :, :p], k, v, dropout_p=dropout_p)
            out = torch.cat([prefix, out], dim=2)
        return out


def window_layouts(windows, shape: Sequence[int], depth: int, num_prefix: int) -> list[WindowLayout | None]:
    """One layout per block, the window shapes cycled over the depth; a window covering the whole
    grid is None (full attention)."""
    if windows is None:
        return [None] * depth
    shape = tuple(shape)
    layouts = []
    for i in range(depth):
        window = tuple(windows[i % len(windows)])
        layouts.append(None if window == shape else WindowLayout(shape, window, num_prefix))
    return layouts
