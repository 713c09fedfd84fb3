"""Bidirectional masked-token transformer: ``model(codes, cond) -> logits``.

Legend: B batch, K codebooks, N positions, P condition prefix tokens (1 with class labels,
else 0), S context length, D width, V logit width = max codebook size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mgm.checks import check_int
from mgm.io import PretrainedMixin
from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition
from mgm.models.layers import Block, Rotary, check_transformer_size, grid_rotary_angles, init_weights
from mgm.models.windows import check_windows, window_layouts
from mgm.tokens import TokenSpec


class MaskedTransformer(PretrainedMixin, nn.Module):
    """Pre-norm transformer over a token grid with K codebooks per position.

    Inputs: one embedding table per codebook (``size + 1`` rows, the last is the mask token),
    summed per position, plus a learned embedding per grid axis (row + column for 2-D grids,
    time for 1-D). A class label enters as one prefix token (label ``num_classes`` is the learned
    null label); a context sequence enters every block through cross-attention, with a learned
    null context token for unconditional rows. Output: one linear head per codebook.

    Args:
        codebook_sizes: size of each of the K codebooks.
        shape: token grid, e.g. ``(16, 16)`` or ``(T,)``; N = prod(shape).
        dim, depth, num_heads, mlp_ratio, dropout: transformer size.
        num_classes: class labels for conditioning (0 = no class conditioning).
        context_dim: width of a context sequence for cross-attention (None = none).
        rotary: also turn self-attention queries/keys by axial rotary angles of the grid
            position (``mgm.models.layers.grid_rotary_angles``), so attention sees grid offsets
            directly; the per-axis embeddings stay. Off by default (and for checkpoints saved
            before the option existed).
        windows: grid-window self-attention (``mgm.models.windows``): a list of window shapes,
            one size per grid axis, each dividing its axis, cycled over the blocks; e.g. MaskViT's
            ``[[1, 8, 8], [16, 4, 4]]`` on a (16, 8, 8) grid alternates per-frame attention with
            spatiotemporal boxes. The prefix (class token) stays global. None: full attention.
            A windowed model takes the whole grid only (no shorter 1-D clips).

    ``gradient_checkpointing`` (an attribute, not saved; False by default): recompute each block's
    activations in the backward pass instead of keeping them (less memory, about a third more
    compute per training step). Decoding (no gradients) is unaffected.
    """

    gradient_checkpointing: bool = False

    def __init__(
        self,
        codebook_sizes: Sequence[int],
        shape: Sequence[int],
        dim: int = 256,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        num_classes: int = 0,
        context_dim: int | None = None,
        rotary: bool = False,
        windows: Sequence[Sequence[int]] | None = None,
    ):
        super().__init__()
        self.spec = TokenSpec(codebook_sizes, shape)
        windows = check_windows(windows, self.spec.shape)
        check_transformer_size(dim, depth, num_heads, mlp_ratio, dropout, num_classes)
        if context_dim is not None:
            check_int(context_dim, "context_dim")
        if not isinstance(rotary, bool):
            raise ValueError(f"rotary={rotary!r}: expected True or False")
        self.config = {
            "codebook_sizes": list(self.spec.codebook_sizes),
            "shape": list(self.spec.shape),
            "dim": dim,
            "depth": depth,
            "num_heads": num_heads,
            "mlp_ratio": mlp_ratio,
            "dropout": dropout,
            "num_classes": num_classes,
            "context_dim": context_dim,
            "rotary": rotary,
            "windows": windows,
        }
        self.num_classes = num_classes
        sizes = self.spec.codebook_sizes
        k, v = self.spec.num_codebooks, self.spec.vocab_size

        # One table holds all K codebooks' rows; codebook k's rows start at offsets[k].
        offsets = torch.cumsum(torch.tensor([0] + [size + 1 for size in sizes[:-1]]), 0)  # +1: the mask row
        self.register_buffer("code_offsets", offsets.view(1, k, 1), persistent=False)
        self.token_emb = nn.Embedding(sum(sizes) + k, dim)
        self.axis_emb = nn.ParameterList([nn.Parameter(torch.zeros(size, dim)) for size in self.spec.shape])
        self.label_emb = nn.Embedding(num_classes + 1, dim) if num_classes else None
        self.context_proj = nn.Linear(context_dim, dim) if context_dim else None
        self.null_context = nn.Parameter(torch.zeros(1, 1, dim)) if context_dim else None
        layouts = window_layouts(windows, self.spec.shape, depth, 1 if num_classes else 0)
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, dropout, cross_attention=bool(context_dim), window=layout)
            for layout in layouts
        )
        self.norm = nn.LayerNorm(dim)
        self.head_weight = nn.Parameter(torch.zeros(k, v, dim))
        self.head_bias = nn.Parameter(torch.zeros(k, v))
        # Codebooks smaller than V can never emit the extra entries.
        vocab_bias = torch.zeros(k, v)
        for i, size in enumerate(sizes):
            vocab_bias[i, size:] = float("-inf")
        self.register_buffer("vocab_bias", vocab_bias, persistent=False)
        angles = grid_rotary_angles(self.spec.shape, dim // num_heads, self.num_prefix) if rotary else None
        self.register_buffer("rotary_angles", angles, persistent=False)  # (P + N, E / 2) or None

        self.apply(init_weights)
        for param in [*self.axis_emb, self.head_weight] + ([self.null_context] if context_dim else []):
            nn.init.normal_(param, std=0.02)

    @property
    def num_prefix(self) -> int:
        return 1 if self.label_emb is not None else 0

    def positions(self) -> torch.Tensor:
        """FloatTensor[N, D]: the sum of the per-axis embeddings at each row-major grid position."""
        table = 0
        ndim = len(self.axis_emb)
        for axis, emb in enumerate(self.axis_emb):
            view = [1] * ndim + [emb.shape[-1]]
            view[axis] = emb.shape[0]
            table = table + emb.view(view)
        return table.reshape(self.spec.num_positions, -1)

    def accepts(self, num_codebooks: int, num_positions: int) -> bool:
        """Whether codes [B, num_codebooks, num_positions] fit: the model's K, and its N, or for a
        1-D grid (audio, motion) any length up to N (the first positions are used)."""
        if num_codebooks != self.spec.num_codebooks:
            return False
        if len(self.spec.shape) == 1 and self.config["windows"] is None:
            return 1 <= num_positions <= self.spec.num_positions
        return num_positions == self.spec.num_positions

    def forward(self, codes: torch.Tensor, cond: Condition | None = None) -> torch.Tensor:
        """codes: LongTensor[B, K, N] (masked positions hold the mask id) -> logits [B, K, N, V]."""
        return self.head(self.hidden(codes, cond))

    def hidden(self, codes: torch.Tensor, cond: Condition | None = None) -> torch.Tensor:
        """codes: LongTensor[B, K, N] -> the final-normalised hidden states [B, N, D] that the heads
        read (a token critic reads them too: ``mgm.models.critic``)."""
        x, (context, context_mask) = self._embed(codes, cond)
        rotary = self._rotary(torch.arange(x.shape[1], device=x.device))
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                # Activation checkpointing: keep only each block's input, recompute the rest in backward.
                x = checkpoint(block, x, context, context_mask, None, rotary, use_reentrant=False)
            else:
                x = block(x, context, context_mask, rotary=rotary)
        return self.norm(x[:, self.num_prefix :])

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Normalised hidden states [B, L, D] -> logits [B, K, L, V] (one linear head per codebook)."""
        logits = torch.einsum("bnd,kvd->bknv", hidden, self.head_weight)
        return logits + (self.head_bias + self.vocab_bias)[None, :, None, :]

    # -- feature reuse (ReCAP): a full pass that keeps every layer's keys/values, cheap passes on a few positions

    def forward_cached(self, codes: torch.Tensor, cond: Condition | None = None) -> tuple[torch.Tensor, KVCache]:
        """As ``forward``, also returning the keys/values of every layer at every position."""
        b, k, n = codes.shape
        x, (context, context_mask) = self._embed(codes, cond)
        rotary = self._rotary(torch.arange(x.shape[1], device=x.device))
        keys, values = [], []
        for block in self.blocks:
            x, (key, value) = block.forward_cached(x, context, context_mask, rotary)
            keys.append(key)
            values.append(value)
        return self._logits(x), KVCache(keys, values, self.num_prefix)

    def forward_partial(
        self, codes: torch.Tensor, positions: torch.Tensor, cond: Condition | None, cache: KVCache, update: bool = False
    ) -> torch.Tensor:
        """Logits at a few positions, reusing the cached keys/values of all the others.

        codes: LongTensor[B, K, Q], the current tokens at ``positions`` LongTensor[B, Q] (grid
        positions in [0, N)). Each query position computes fresh keys/values from its own token and
        attends to them plus the cache's entries for every other position (and the condition
        prefix). ``cond`` must be the condition the cache was made with. Returns [B, K, Q, V].
        ``update``: also write the fresh keys/values into the cache (cached masked decoding),
        so later passes see the queried positions as they are now; a position repeated in
        ``positions`` must carry the same token each time. Cost: the projections and MLPs scale
        with Q; attention with Q * (P + N).
        """
        b, k, q = codes.shape
        if tuple(positions.shape) != (b, q):
            raise ValueError(f"positions: shape {tuple(positions.shape)}; expected [{b}, {q}] to match codes")
        if cache.batch_size != b:
            raise ValueError(f"cache: batch {cache.batch_size} does not match codes' batch {b}")
        x = self.token_emb(codes + self.code_offsets).sum(1) + self.positions()[positions]  # (B, Q, D)
        _, context, context_mask = self.embed_condition(cond, b, codes.device)
        index = positions + cache.num_prefix
        rotary = self._rotary(index[:, None])  # (B, 1, Q, E / 2): one row of angles per query
        for layer, block in enumerate(self.blocks):
            cached = (cache.keys[layer], cache.values[layer])
            x, (key, value) = block.forward_partial(x, index, cached, context, context_mask, rotary)
            if update:
                cache.keys[layer], cache.values[layer] = key, value
        return self._logits(x, prefix=0)

    def _rotary(self, index: torch.Tensor) -> Rotary | None:
        """(cos, sin) of the rotary angles at sequence indices ``index`` (prefix first), or None."""
        if self.rotary_angles is None:
            return None
        angles = self.rotary_angles[index]
        return angles.cos(), angles.sin()

    def _embed(self, codes: torch.Tensor, cond: Condition | None):
        b, k, n = codes.shape
        if not self.accepts(k, n):
            longest = "<= " if len(self.spec.shape) == 1 and self.config["windows"] is None else ""
            raise ValueError(
                f"codes: shape {tuple(codes.shape)} does not fit the model: expected "
                f"[B, {self.spec.num_codebooks}, {longest}{self.spec.num_positions}]"
            )
        x = self.token_emb(codes + self.code_offsets).sum(1) + self.positions()[:n]  # (B, N, D)
        prefix, context, context_mask = self.embed_condition(cond, b, codes.device)
        if prefix is not None:
            x = torch.cat([prefix, x], dim=1)  # (B, P + N, D)
        return x, (context, context_mask)

    def _logits(self, x: torch.Tensor, prefix: int | None = None) -> torch.Tensor:
        """Hidden states [B, P + L, D] -> logits [B, K, L, V] (the first ``prefix`` rows dropped)."""
        return self.head(self.norm(x[:, self.num_prefix if prefix is None else prefix :]))

    def embed_condition(
        self, cond: Condition | None, batch_size: int, device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Returns (prefix [B, P, D] or None, context [B, 1 + S, D] or None, context mask [B, 1 + S]).

        ``cond=None`` means unconditional: the null label / null context for every row.
        """
        cond = cond if cond is not None else Condition()
        if cond.batch_size not in (None, batch_size):
            raise ValueError(f"cond: batch size {cond.batch_size} does not match codes' batch size {batch_size}")
        drop = cond.dropped(batch_size, device)
        prefix = context = context_mask = None
        if self.label_emb is not None:
            null = torch.full((batch_size,), self.num_classes, dtype=torch.long, device=device)
            labels = null if cond.labels is None else torch.where(drop, null, cond.labels.to(device))
            prefix = self.label_emb(labels)[:, None]
        elif cond.labels is not None:
            raise ValueError("cond.labels given, but the model has num_classes=0 (no class conditioning)")
        if self.context_proj is not None:
            null = self.null_context.expand(batch_size, 1, -1)
            if cond.context is None:
                context = null
            else:
                # The null token is always key 0; it is attended only by dropped rows and by rows
                # without a single real context token (e.g. a clip that has no caption).
                given = self.context_proj(cond.context.to(device=device, dtype=self.context_proj.weight.dtype))
                mask = cond.context_mask
                mask = torch.ones(given.shape[:2], dtype=torch.bool, device=device) if mask is None else mask
                mask = mask.to(device) & ~drop[:, None]
                context = torch.cat([null, given], dim=1)
                context_mask = torch.cat([~mask.any(1, keepdim=True), mask], dim=1)
        elif cond.context is not None:
            raise ValueError("cond.context given, but the model has context_dim=None (no cross-attention)")
        return prefix, context, context_mask
