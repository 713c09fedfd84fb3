"""The one key/value cache of mgm's transformers (masked and autoregressive).

A cache holds, per block, the self-attention keys and values of a sequence of slots behind
``num_prefix`` condition-prefix slots, and for an AR model the final hidden states too. It is an
explicit object passed in and out: models keep no decoding state. Two ways of filling it:

- a masked model (``MaskedTransformer.forward_cached``) fills one slot per grid position, all N
  at once; ``forward_partial(..., update=True)`` overwrites the slots of the positions it
  recomputes (cached masked decoding), ``update=False`` leaves the cache as it was (ReCAP).
- an AR model (``ARTransformer``) appends the slots of the tokens it is fed; ``truncate(n)``
  rolls back to n tokens, and ``per_row(capacity)`` turns the cache into static buffers with
  one filled length per row (``lengths``), for batched speculative decoding.
- a flexible-order AR model (``FlexARTransformer.forward_group``) appends one group of tokens per
  decoding step; rows that feed fewer tokens than the group's width mark their padded slots in
  ``slot_mask``.

Legend: B batch, H heads, P prefix slots, S slots, E head width, D model width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    """keys[l], values[l]: [B, H, P + S, E] for block l (prefix slots first); ``hidden``: the final
    hidden states [B, P + S, D] where the model keeps them (AR), else None; ``lengths``:
    LongTensor[B], the filled slots per row once ``per_row`` made them static buffers, else None
    (every slot filled). ``KVCache()`` is the empty cache a model fills on its first call, setting
    ``num_prefix`` too; ``prefix_mask``: BoolTensor[B, P] (True = a real prefix slot) where the
    prefix is padded to one length (prompts of different lengths), else None; ``slot_mask``:
    BoolTensor[B, P + S] (True = a slot to attend to) where rows filled different numbers of slots
    in one call (the flexible-order AR model's padded groups), else None. A model may keep only
    some of these (a test table keeps only ``hidden``)."""

    keys: list[torch.Tensor] | None = None
    values: list[torch.Tensor] | None = None
    num_prefix: int = 0
    hidden: torch.Tensor | None = None
    lengths: torch.Tensor | None = None
    prefix_mask: torch.Tensor | None = None
    slot_mask: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Filled slots (the prefix not counted): the tokens an AR cache holds, N for a masked
        model's; 0 for an empty cache. For caches with one length for every row."""
        if self.lengths is not None:
            raise ValueError("a per-row cache has one length per row: read cache.lengths")
        slots = self._slots()
        return 0 if slots is None else slots.shape[-2 if slots is self.hidden else 2] - self.num_prefix

    @property
    def batch_size(self) -> int | None:
        slots = self._slots()
        return None if slots is None else slots.shape[0]

    def _slots(self) -> torch.Tensor | None:
        """A tensor with one entry per slot (the hidden states, else the first keys), None if empty."""
        if self.hidden is not None:
            return self.hidden
        return self.keys[0] if self.keys else None

    def per_row(self, capacity: int) -> None:
        """Turn a filled cache into static buffers with room for ``capacity`` slots per row (the
        prefix not counted) and per-row ``lengths`` (all the current length)."""
        if self._slots() is None:
            raise ValueError("per_row: the cache is empty; fill it with a first call")
        length = self.length
        if capacity < length:
            raise ValueError(f"capacity={capacity}: expected at least the {length} tokens already cached")
        pad = capacity - length
        grow = lambda x, dim: torch.cat([x, x.new_zeros(*x.shape[:dim], pad, *x.shape[dim + 1 :])], dim)  # noqa: E731
        self.keys = [grow(k, 2) for k in self.keys]
        self.values = [grow(v, 2) for v in self.values]
        self.hidden = None if self.hidden is None else grow(self.hidden, 1)
        slots = self._slots()
        self.lengths = torch.full((slots.shape[0],), length, dtype=torch.long, device=slots.device)

    def truncate(self, length: int) -> None:
        """Keep the first ``length`` slots (plus the prefix). For caches with one length for every row."""
        if not 0 <= length <= self.length:
            raise ValueError(f"length={length}: expected 0 <= length <= {self.length} cached tokens")
        keep = self.num_prefix + length
        self.keys = [k[:, :, :keep] for k in self.keys]
        self.values = [v[:, :, :keep] for v in self.values]
        self.hidden = None if self.hidden is None else self.hidden[:, :keep]
