"""Decoder-only autoregressive transformer over flattened tokens: ``model(tokens, cond, cache=None)``.

Contract (DESIGN.md): ``tokens`` LongTensor[B, L] -> logits [B, L + 1, V], where ``logits[:, i]``
is the distribution of token i given ``tokens[:, :i]`` and the condition (``logits[:, 0]`` is
the first token's), L >= 0. The condition is one prefix token: a class label, the learned null
label for classifier-free guidance, or a learned start token for an unconditional model.

With a cache (``mgm.models.cache.KVCache``, empty at first), a call feeds the tokens that
follow the cached ones and returns logits [B, M + 1, V] where ``logits[:, j]`` is the
distribution of token ``cache.length + j``; the new tokens' keys/values are appended, and
``cache.truncate(n)`` rolls back to n tokens (speculative decoding rejects drafts that way).
Multi-codebook tokens are flattened before (frame-major: all K codebooks of frame 0, then 1...).

Per-row lengths (a model declaring ``row_cache = True``): after ``cache.per_row(capacity)`` the
cache holds static buffers and ``cache.lengths`` LongTensor[B], the tokens cached per row. A call
then feeds M tokens per row at positions ``lengths[r] ...``, returns logits [B, M + 1, V] with
``logits[r, j]`` the distribution of token ``lengths[r] + j``, and advances ``lengths`` by M;
setting ``cache.lengths`` rolls rows back independently. Shapes never depend on the lengths, so
batched speculative decoding runs without host reads. Logits at positions past ``max_length``
are unspecified (the buffers have room for them; they are never attended to by earlier ones).

Legend: B batch, L tokens, P = 1 prefix token, D width, H heads, E head width, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from mgm.checks import check_int
from mgm.io import PretrainedMixin
from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition
from mgm.models.layers import Block, check_transformer_size, init_weights


class ARTransformer(PretrainedMixin, nn.Module):
    """Pre-norm causal transformer, learned positions, SDPA.

    Args:
        vocab_size: V.
        max_length: the longest token sequence (learned positions).
        dim, depth, num_heads, mlp_ratio, dropout: transformer size.
        num_classes: class labels for conditioning (0 = unconditional, a learned start token).
    """

    row_cache = True  # it implements the per-row-lengths cache protocol (module doc)

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        dim: int = 256,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        num_classes: int = 0,
    ):
        super().__init__()
        check_int(vocab_size, "vocab_size")
        check_int(max_length, "max_length")
        check_transformer_size(dim, depth, num_heads, mlp_ratio, dropout, num_classes)
        self.config = dict(
            vocab_size=vocab_size, max_length=max_length, dim=dim, depth=depth, num_heads=num_heads,
            mlp_ratio=mlp_ratio, dropout=dropout, num_classes=num_classes,
        )  # fmt: skip
        self.vocab_size, self.max_length, self.num_classes = vocab_size, max_length, num_classes
        self.token_emb = nn.Embedding(vocab_size, dim)
        self.pos_emb = nn.Parameter(torch.zeros(max_length, dim))
        # Row num_classes is the null label (CFG); an unconditional model has only that row.
        self.label_emb = nn.Embedding(num_classes + 1, dim)
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)
        self.apply(init_weights)
        nn.init.normal_(self.pos_emb, std=0.02)

    def prefix(self, cond: Condition | None, batch_size: int, device: torch.device) -> torch.Tensor:
        """The condition prefix [B, 1, D]: label embeddings, null where dropped or absent."""
        return class_prefix(self, cond, batch_size, device)

    def forward(self, tokens: torch.Tensor, cond: Condition | None = None, cache: KVCache | None = None):
        """tokens [B, L] -> logits [B, L + 1, V] (see the module doc for the cached form)."""
        if cache is not None and cache.lengths is not None:
            return self._forward_rows(tokens, cache)
        b, new = tokens.shape
        start = 0 if cache is None else cache.length
        if start + new > self.max_length:
            raise ValueError(f"tokens: {start} cached + {new} new exceed max_length={self.max_length}")
        if new == 0 and cache is not None and cache.hidden is not None:
            return self.head(cache.hidden[:, -1:])  # nothing new: the next token's distribution
        x = self.token_emb(tokens) + self.pos_emb[start : start + new]
        if cache is None or cache.hidden is None:
            x = torch.cat([self.prefix(cond, b, tokens.device), x], dim=1)  # (B, 1 + L, D)
            past = None
        else:
            past = (cache.keys, cache.values)
        total = x.shape[1] + (0 if past is None else past[0][0].shape[2])
        # Query i (sequence index total - len(x) + i) sees keys up to its own index.
        rows = torch.arange(total - x.shape[1], total, device=x.device)
        causal = rows[:, None] >= torch.arange(total, device=x.device)[None, :]  # (Lq, S)
        keys, values = [], []
        for layer, block in enumerate(self.blocks):
            h = block.norm1(x)
            k, v = block.attn.keys_values(h)
            if past is not None:
                k, v = torch.cat([past[0][layer], k], 2), torch.cat([past[1][layer], v], 2)
            keys.append(k)
            values.append(v)
            x = x + block.dropout(block.attn(h, keys_values=(k, v), attn_mask=causal))
            x = x + block.mlp(block.norm2(x))
        hidden = self.norm(x)
        if cache is not None:
            cache.keys, cache.values, cache.num_prefix = keys, values, 1
            cache.hidden = hidden if cache.hidden is None else torch.cat([cache.hidden, hidden], 1)
            hidden = cache.hidden[:, -(new + 1) :]  # the last cached position predicts the first new token
        return self.head(hidden)

    def _forward_rows(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """The per-row-lengths call (module doc): tokens [B, M] at positions lengths[r] + j."""
        b, new = tokens.shape
        p, start = cache.num_prefix, cache.lengths
        positions = start[:, None] + torch.arange(new, device=tokens.device)  # (B, M)
        x = self.token_emb(tokens) + self.pos_emb[positions.clamp_max(self.max_length - 1)]
        index = positions + p  # (B, M): indices in the buffers, the prefix first
        keys_index = torch.arange(cache.hidden.shape[1], device=tokens.device)
        causal = (keys_index[None, None, :] <= index[:, :, None])[:, None]  # (B, 1, M, S)
        for layer, block in enumerate(self.blocks):
            h = block.norm1(x)
            k, v = block.attn.keys_values(h)  # (B, H, M, E)
            where = index[:, None, :, None].expand_as(k)
            cache.keys[layer] = cache.keys[layer].scatter(2, where, k)
            cache.values[layer] = cache.values[layer].scatter(2, where, v)
            x = x + block.dropout(block.attn(h, keys_values=(cache.keys[layer], cache.values[layer]), attn_mask=causal))
            x = x + block.mlp(block.norm2(x))
        hidden = self.norm(x)
        last = cache.hidden.gather(1, (start + p - 1)[:, None, None].expand(b, 1, hidden.shape[-1]))
        cache.hidden = cache.hidden.scatter(1, index[..., None].expand_as(hidden), hidden)
        cache.lengths = start + new
        return self.head(torch.cat([last, hidden], 1))


def class_prefix(model: nn.Module, cond: Condition | None, batch_size: int, device: torch.device) -> torch.Tensor:
    """The one-token condition prefix [B, 1, D] of a model with ``num_classes`` and ``label_emb``
    (row ``num_classes``: the null label, also an unconditional model's start token): label
    embeddings, null where the condition is dropped or absent."""
    null = torch.full((batch_size,), model.num_classes, dtype=torch.long, device=device)
    labels = null
    if cond is not None and cond.labels is not None:
        if not model.num_classes:
            raise ValueError("cond.labels given, but the model has num_classes=0 (no class conditioning)")
        labels = torch.where(cond.dropped(batch_size, device), null, cond.labels.to(device))
    if cond is not None and cond.context is not None:
        raise ValueError(f"cond.context given, but {type(model).__name__} conditions on class labels only")
    return model.label_emb(labels)[:, None]
