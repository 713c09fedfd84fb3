"""Flexible-order autoregressive transformer: tokens in any order, targets named by their positions.

The model behind ARPG's randomized parallel decoding and LPD's locality-aware parallel decoding.
A sequence runs in a *generation order* (a permutation of the N grid positions) split into
*groups*; the tokens of a group are predicted together, each from every token of the groups
before it. Two kinds of rows go through the same blocks:

- a **token row** carries a known token and its grid position (token embedding + position
  embedding, or rotary angles of its position). Token rows are causal in the generation order,
  and their keys/values are what the KV cache holds;
- a **query row** carries no content, only the position it is to predict (a learned query
  vector + the target's position embedding, or its angles): ARPG's target-aware queries, LPD's
  position queries. A query attends to the condition prefix and the token rows of earlier groups;
  with ``group_attention`` (LPD) also to the other queries of its group, so the group knows which
  positions are decoded together. Queries are never cached.

Two calls:

- ``model(tokens, positions, groups, cond) -> logits [B, L, V]``: teacher forcing over a whole
  ordered sequence (training): ``tokens[:, i]`` sits at grid position ``positions[:, i]`` in group
  ``groups[..., i]``, and ``logits[:, i]`` is the distribution of the token at ``positions[:, i]``
  given the tokens of earlier groups.
- ``model.forward_group(tokens, positions, targets, cond, cache) -> logits [B, Q, V]``: one
  decoding step: the last group's tokens ([B, M] at [B, M]) enter the cache (the first call also
  writes the condition prefix), and the queries of the next group's positions (targets [B, Q])
  are answered. The cache grows by one group per step. ``token_mask`` / ``target_mask`` [B, M] /
  [B, Q] mark padding where rows feed different numbers (editing: each row has its own given
  tokens); padded token slots are marked in ``cache.slot_mask`` and never attended to.

Legend: B batch, N grid positions, L ordered tokens (<= N), M tokens fed, Q queries, D width,
H heads, E head width, S cached slots (1 condition prefix slot + the tokens fed), V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mgm.io import PretrainedMixin
from mgm.models.ar_transformer import class_prefix
from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition
from mgm.models.layers import Block, check_transformer_size, grid_rotary_angles, init_weights
from mgm.tokens import TokenSpec

POSITIONS = ("learned", "rotary")


class FlexARTransformer(PretrainedMixin, nn.Module):
    """Pre-norm transformer over ordered (token, position) rows and target-position queries.

    Args:
        codebook_sizes: one codebook, ``[V]`` (the grid's tokens; ``spec`` has K = 1).
        shape: the token grid, e.g. ``(8, 8)``; N = prod(shape).
        dim, depth, num_heads, mlp_ratio, dropout: transformer size.
        num_classes: class labels (0 = unconditional: a learned start token).
        positions: "learned" (an embedding per position for token rows and another for query
            rows) or "rotary" (axial rotary angles of the grid position turn queries and keys;
            no absolute embedding).
        group_attention: the queries of one group see each other (LPD); False: each query sees
            only the cached tokens (ARPG).
    """

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
        positions: str = "learned",
        group_attention: bool = True,
    ):
        super().__init__()
        self.spec = TokenSpec(codebook_sizes, shape)
        if self.spec.num_codebooks != 1:
            raise ValueError(f"codebook_sizes={list(codebook_sizes)}: a flexible-order AR model takes one codebook")
        check_transformer_size(dim, depth, num_heads, mlp_ratio, dropout, num_classes)
        if positions not in POSITIONS:
            raise ValueError(f"positions={positions!r}: expected one of {list(POSITIONS)}")
        if not isinstance(group_attention, bool):
            raise ValueError(f"group_attention={group_attention!r}: expected True or False")
        self.config = dict(
            codebook_sizes=list(self.spec.codebook_sizes), shape=list(self.spec.shape), dim=dim, depth=depth,
            num_heads=num_heads, mlp_ratio=mlp_ratio, dropout=dropout, num_classes=num_classes, positions=positions,
            group_attention=group_attention,
        )  # fmt: skip
        n, v = self.spec.num_positions, self.spec.codebook_sizes[0]
        self.vocab_size, self.num_classes, self.group_attention = v, num_classes, group_attention
        self.token_emb = nn.Embedding(v, dim)
        self.query_emb = nn.Parameter(torch.zeros(dim))
        self.label_emb = nn.Embedding(num_classes + 1, dim)  # row num_classes: the null label / start token
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, v)
        self.apply(init_weights)
        if positions == "learned":
            self.pos_emb = nn.Parameter(torch.randn(n, dim) * 0.02)  # token rows
            self.target_emb = nn.Parameter(torch.randn(n, dim) * 0.02)  # query rows
            self.register_buffer("angles", None, persistent=False)
        else:
            self.pos_emb = self.target_emb = None
            # Row 0: the condition prefix (not turned); row 1 + p: grid position p.
            angles = grid_rotary_angles(tuple(self.spec.shape), dim // num_heads, num_prefix=1)
            self.register_buffer("angles", angles, persistent=False)

    # -- embeddings ------------------------------------------------------------------------------

    def _token_rows(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.token_emb(tokens)
        return x if self.pos_emb is None else x + self.pos_emb[positions]

    def _query_rows(self, targets: torch.Tensor) -> torch.Tensor:
        x = self.query_emb.expand(*targets.shape, -1)
        return x if self.target_emb is None else x + self.target_emb[targets]

    def _rotary(self, slots: torch.Tensor):
        """slots LongTensor[B, R] (0 = prefix, 1 + p = position p) -> (cos, sin) [B, 1, R, E / 2], or None."""
        if self.angles is None:
            return None
        angles = self.angles[slots][:, None]
        return angles.cos(), angles.sin()

    def _check(self, name: str, index: torch.Tensor, size: int, what: str) -> None:
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= size):
            low, high = int(index.min()), int(index.max())
            raise ValueError(f"{name}: values in [{low}, {high}]; expected {what} in [0, {size})")

    # -- the blocks --------------------------------------------------------------------------------

    def _run(self, x, rotary, attn_mask, past, num_cached):
        """x [B, R, D] rows; attn_mask [B, 1, R, S_past + R]; past: per-block (keys, values) or None.
        Returns (hidden [B, R, D], the new per-block cache: past + the first ``num_cached`` rows)."""
        new_cache = []
        for layer, block in enumerate(self.blocks):
            h = block.norm1(x)
            k, v = block.attn.keys_values(h, rotary)
            if past is not None:
                k, v = torch.cat([past[0][layer], k], 2), torch.cat([past[1][layer], v], 2)
            cut = k.shape[2] - x.shape[1] + num_cached  # the query rows' keys are not kept
            new_cache.append((k[:, :, :cut], v[:, :, :cut]))
            x = x + block.dropout(block.attn(h, keys_values=(k, v), attn_mask=attn_mask, rotary=rotary))
            x = x + block.mlp(block.norm2(x))
        return self.norm(x), new_cache

    def forward(
        self, tokens: torch.Tensor, positions: torch.Tensor, groups: torch.Tensor, cond: Condition | None = None
    ) -> torch.Tensor:
        """Teacher forcing (module doc): tokens, positions LongTensor[B, L]; groups LongTensor[L] or
        [B, L], the group of each ordered slot -> logits [B, L, V] (slot i: the token at positions[:, i])."""
        b, length = tokens.shape
        if positions.shape != tokens.shape:
            raise ValueError(f"positions: shape {tuple(positions.shape)}; expected the tokens' {tuple(tokens.shape)}")
        if groups.shape not in (tokens.shape, tokens.shape[1:]):
            raise ValueError(f"groups: shape {tuple(groups.shape)}; expected [{length}] or {list(tokens.shape)}")
        groups = groups.expand(b, length)
        self._check("tokens", tokens, self.vocab_size, "token ids")
        self._check("positions", positions, self.spec.num_positions, "grid positions")
        device = tokens.device
        x = torch.cat(
            [class_prefix(self, cond, b, device), self._token_rows(tokens, positions), self._query_rows(positions)], 1
        )  # fmt: skip  (B, 1 + 2L, D)
        slots = torch.cat([positions.new_zeros(b, 1), positions + 1, positions + 1], 1)
        # Rows: [prefix, token 0..L-1, query 0..L-1]; columns the same.
        rows = torch.arange(length, device=device)
        causal = rows[:, None] >= rows[None, :]  # token i sees tokens j <= i
        earlier = groups[:, None, :] < groups[:, :, None]  # (B, L query, L token): the token's group is earlier
        if self.group_attention:
            same = groups[:, None, :] == groups[:, :, None]  # the queries of one group see each other
        else:
            same = torch.eye(length, device=device, dtype=torch.bool)[None]
        mask = torch.zeros(b, 1 + 2 * length, 1 + 2 * length, dtype=torch.bool, device=device)
        mask[:, :, 0] = True  # everyone sees the condition
        mask[:, 1 : 1 + length, 1 : 1 + length] = causal
        mask[:, 1 + length :, 1 : 1 + length] = earlier
        mask[:, 1 + length :, 1 + length :] = same
        hidden, _ = self._run(x, self._rotary(slots), mask[:, None], None, 0)
        return self.head(hidden[:, 1 + length :])

    def forward_group(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        targets: torch.Tensor,
        cond: Condition | None = None,
        cache: KVCache | None = None,
        token_mask: torch.Tensor | None = None,
        target_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One decoding step (module doc): tokens, positions [B, M] (M may be 0) enter ``cache``;
        targets [B, Q] -> logits [B, Q, V]. ``cache=None`` runs the same step on no earlier tokens
        and keeps nothing; an empty ``KVCache()`` is filled (the prefix too) on its first call."""
        b, m = tokens.shape
        q = targets.shape[1]
        device = tokens.device
        if positions.shape != tokens.shape or targets.shape[0] != b:
            raise ValueError(
                f"positions {tuple(positions.shape)} and targets {tuple(targets.shape)}: expected [B, M] like "
                f"tokens {tuple(tokens.shape)} and [B, Q]"
            )
        self._check("tokens", tokens, self.vocab_size, "token ids")
        self._check("positions", positions, self.spec.num_positions, "grid positions")
        self._check("targets", targets, self.spec.num_positions, "grid positions")
        everyone = lambda size: torch.ones(b, size, dtype=torch.bool, device=device)  # noqa: E731
        token_mask = everyone(m) if token_mask is None else token_mask.to(device)
        target_mask = everyone(q) if target_mask is None else target_mask.to(device)
        first = cache is None or cache.keys is None
        parts, slots, valid = [], [], []
        if first:
            parts.append(class_prefix(self, cond, b, device))
            slots.append(positions.new_zeros(b, 1))
            valid.append(torch.ones(b, 1, dtype=torch.bool, device=device))
        parts += [self._token_rows(tokens, positions), self._query_rows(targets)]
        slots += [positions + 1, targets + 1]
        x, slots = torch.cat(parts, 1), torch.cat(slots, 1)
        fed = x.shape[1] - q  # rows that enter the cache (the prefix on the first call, then the tokens)
        valid_fed = torch.cat([*valid, token_mask], 1)
        past_mask = None if first else cache.slot_mask
        past_len = 0 if first else cache.keys[0].shape[2]
        if past_mask is None:
            past_mask = torch.ones(b, past_len, dtype=torch.bool, device=device)
        keys_valid = torch.cat([past_mask, valid_fed], 1)  # (B, S_past + fed)
        # Token rows: causal among the fed rows, every valid earlier slot; query rows: every valid
        # cached or fed slot, plus the group's other queries (group attention) or only themselves.
        fed_rows = torch.arange(fed, device=device)
        causal = torch.cat(
            [torch.ones(fed, past_len, dtype=torch.bool, device=device), fed_rows[:, None] >= fed_rows[None, :]], 1
        )  # fmt: skip  (fed, S_past + fed)
        token_part = causal[None] & keys_valid[:, None, :]
        token_part = torch.cat([token_part, token_part.new_zeros(b, fed, q)], 2)
        if self.group_attention:
            among = target_mask[:, None, :] | torch.eye(q, dtype=torch.bool, device=device)[None]
        else:
            among = torch.eye(q, dtype=torch.bool, device=device)[None].expand(b, q, q)
        query_part = torch.cat([keys_valid[:, None, :].expand(b, q, -1), among], 2)
        mask = torch.cat([token_part, query_part], 1)
        mask[:, :, 0] = True  # the condition prefix: every row has one key to attend to
        past = None if first else (cache.keys, cache.values)
        hidden, new_cache = self._run(x, self._rotary(slots), mask[:, None], past, fed)
        if cache is not None:
            cache.keys = [k for k, _ in new_cache]
            cache.values = [v for _, v in new_cache]
            cache.num_prefix = 1
            all_valid = bool(keys_valid.all())
            cache.slot_mask = None if all_valid else keys_valid
        return self.head(hidden[:, fed:])

    @property
    def num_positions(self) -> int:
        return self.spec.num_positions


def warm_start_from_ar(model: FlexARTransformer, ar) -> None:
    """Copy a trained ARTransformer's weights into a FlexARTransformer of the same width, depth,
    heads, vocabulary and classes: blocks, final norm, label, token and head rows; the AR model's
    raster position embeddings become both position tables (token rows and query rows). The
    query vector starts at zero. ValueError listing every size that differs."""
    c, a = model.config, ar.config
    problems = [f"{k}: flexible {c[k]} vs AR {a[k]}" for k in ("dim", "depth", "num_heads", "mlp_ratio", "num_classes")
                if c[k] != a[k]]  # fmt: skip
    if model.vocab_size != ar.vocab_size:
        problems.append(f"vocabulary: flexible {model.vocab_size} vs AR {ar.vocab_size}")
    if ar.max_length < model.num_positions:
        problems.append(f"positions: flexible grid of {model.num_positions} vs AR max_length {ar.max_length}")
    if problems:
        raise ValueError("warm start from an AR model: the two do not fit: " + "; ".join(problems))
    with torch.no_grad():
        for block, source in zip(model.blocks, ar.blocks):
            block.load_state_dict(source.state_dict())
        for name in ("norm", "head", "token_emb", "label_emb"):
            getattr(model, name).load_state_dict(getattr(ar, name).state_dict())
        if model.pos_emb is not None:
            n = model.num_positions
            model.pos_emb.copy_(ar.pos_emb[:n])
            model.target_emb.copy_(ar.pos_emb[:n])
        model.query_emb.zero_()
