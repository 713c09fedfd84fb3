"""Transformer building blocks on scaled_dot_product_attention.

Legend: B batch, L query length, S key length, D model width, H heads, E = D / H head width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from mgm.checks import check_int, check_number
from mgm.models.windows import WindowLayout

Rotary = tuple[torch.Tensor, torch.Tensor]
"""(cos, sin), each broadcastable to [B, H, L, E / 2]: rotation angles of the rows they go with."""


def grid_rotary_angles(shape: tuple[int, ...], head_dim: int, num_prefix: int = 0, base: float = 100.0) -> torch.Tensor:
    """Axial rotary angles [P + N, E / 2] for a row-major token grid behind P prefix tokens.

    Each grid axis gets an equal share of the head's rotation pairs, turning with that axis'
    coordinate at geometric frequencies ``base ** (-j / pairs)``; prefix tokens are not turned
    (angle 0). Attention scores then depend on the offset between grid positions, so a token can
    find its neighbours without learning it from absolute embeddings. ``base`` is small because
    grids are short (tens of positions per axis), so the slowest pair still turns noticeably.
    """
    ndim = len(shape)
    if head_dim % (2 * ndim):
        raise ValueError(f"head_dim={head_dim}: expected a multiple of {2 * ndim} for a {ndim}-D grid's rotary pairs")
    pairs = head_dim // (2 * ndim)
    freqs = base ** (-torch.arange(pairs, dtype=torch.float64) / pairs)
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij"), -1)
    angles = (coords.reshape(-1, ndim, 1) * freqs).reshape(-1, ndim * pairs)  # (N, E / 2)
    return torch.cat([angles.new_zeros(num_prefix, ndim * pairs), angles]).float()


def rotate(x: torch.Tensor, rotary: Rotary) -> torch.Tensor:
    """x [B, H, L, E], each (i, i + E / 2) pair turned by its row's angle."""
    cos, sin = rotary
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1).to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, cross-attention otherwise
    (to a context already projected to ``dim``)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def keys_values(self, source: torch.Tensor, rotary: Rotary | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """source [B, S, D] -> (keys, values), each [B, H, S, E]; keys turned by ``rotary`` if given."""
        k, v = rearrange(self.to_kv(source), "b s (two h e) -> two b h s e", two=2, h=self.num_heads)
        return (k if rotary is None else rotate(k, rotary)), v

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
        attn_mask: torch.Tensor | None = None,
        rotary: Rotary | None = None,
        window: WindowLayout | None = None,
    ) -> torch.Tensor:
        """x: [B, L, D]; context: [B, S, D] or None (= x); key_mask: BoolTensor[B, S], True = attend.

        ``keys_values``: precomputed (keys, values) [B, H, S, E] to attend to instead of projecting
        ``context`` / ``x`` (the feature-reuse and KV-cache paths; their keys already turned).
        ``attn_mask``: BoolTensor broadcastable to [B, H, L, S], True = attend. ``rotary``: the
        angles of x's rows (self-attention only): queries, and keys projected here, are turned.
        ``window``: grid-window self-attention over all of x's rows (``mgm.models.windows``).
        """
        q = rearrange(self.to_q(x), "b l (h e) -> b h l e", h=self.num_heads)
        if rotary is not None:
            if context is not None:
                raise ValueError("rotary angles apply to self-attention only, not to a context")
            q = rotate(q, rotary)
        k, v = keys_values if keys_values is not None else self.keys_values(x if context is None else context, rotary)
        dropout_p = self.dropout if self.training else 0.0
        if window is not None and key_mask is None and attn_mask is None:
            out = window.attend(q, k, v, dropout_p)
        else:
            if window is not None:  # padded keys too: the window's mask over every row
                attn_mask = window.mask(torch.arange(x.shape[1], device=x.device))
            if key_mask is not None:
                attn_mask = key_mask[:, None, None, :] if attn_mask is None else attn_mask & key_mask[:, None, None, :]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        return self.proj(rearrange(out, "b h l e -> b l (h e)"))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


def check_transformer_size(dim, depth, num_heads, mlp_ratio, dropout, num_classes) -> None:
    """The size arguments every mgm transformer takes: ValueError naming the first bad one."""
    for name, value, minimum in (("dim", dim, 1), ("depth", depth, 1), ("num_heads", num_heads, 1),
                                 ("num_classes", num_classes, 0)):  # fmt: skip
        check_int(value, name, minimum)
    if dim % num_heads:
        raise ValueError(f"dim={dim}, num_heads={num_heads}: expected dim divisible by num_heads")
    check_number(mlp_ratio, "mlp_ratio", above=0)
    check_number(dropout, "dropout", minimum=0, maximum=1)


class Block(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention to a context, MLP.

    ``window``: a ``WindowLayout`` makes the self-attention grid-window attention over the block's
    rows (the prefix + grid sequence of a masked model); None is full attention."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cross_attention: bool = False,
        window: WindowLayout | None = None,
    ):
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, dropout=dropout)
        self.norm_cross = nn.LayerNorm(dim) if cross_attention else None
        self.cross = Attention(dim, num_heads, dropout=dropout) if cross_attention else None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        rotary: Rotary | None = None,
    ) -> torch.Tensor:
        """x: [B, L, D]; context: [B, S, D] (already projected to D) with context_mask [B, S];
        key_mask: BoolTensor[B, L], True = a real position (padding is not attended to);
        rotary: the rotary angles of x's rows, or None."""
        x = x + self.dropout(self.attn(self.norm1(x), key_mask=key_mask, rotary=rotary, window=self.window))
        return self._cross_and_mlp(x, context, context_mask)

    def _cross_and_mlp(self, x, context, context_mask) -> torch.Tensor:
        if self.cross is not None:
            x = x + self.dropout(self.cross(self.norm_cross(x), context, key_mask=context_mask))
        return x + self.mlp(self.norm2(x))

    def forward_cached(
        self, x: torch.Tensor, context=None, context_mask=None, rotary: Rotary | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """As forward, also returning this block's self-attention (keys, values) [B, H, L, E]."""
        h = self.norm1(x)
        kv = self.attn.keys_values(h, rotary)
        x = x + self.dropout(self.attn(h, keys_values=kv, rotary=rotary, window=self.window))
        return self._cross_and_mlp(x, context, context_mask), kv

    def forward_partial(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        cached: tuple[torch.Tensor, torch.Tensor],
        context=None,
        context_mask=None,
        rotary: Rotary | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x: [B, Q, D] at sequence indices ``index`` [B, Q]; they attend to the cached (keys, values)
        [B, H, L, E] of every index, with their own entries replaced by fresh ones. ``rotary``: the
        angles of the query rows (cos, sin each [B, 1, Q, E / 2]). Returns ([B, Q, D], the
        (keys, values) attended to: the cached ones with the queries' entries fresh)."""
        h = self.norm1(x)
        fresh_k, fresh_v = self.attn.keys_values(h, rotary)  # (B, H, Q, E)
        where = index[:, None, :, None].expand_as(fresh_k)
        k = cached[0].scatter(2, where, fresh_k)
        v = cached[1].scatter(2, where, fresh_v)
        mask = None if self.window is None else self.window.mask(index)[:, None]  # (B, 1, Q, P + N)
        x = x + self.dropout(self.attn(h, keys_values=(k, v), attn_mask=mask, rotary=rotary))
        return self._cross_and_mlp(x, context, context_mask), (k, v)


def init_weights(module: nn.Module) -> None:
    """GPT-style init: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
