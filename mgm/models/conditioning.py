"""What a model is conditioned on, as one object that batches and nulls cleanly.

Classifier-free guidance and condition dropout both need "the same batch, but some rows
unconditional": that is ``drop``, a BoolTensor[B]. The model swaps dropped rows for its learned
null label / null context, so the null condition is ``cond.null()`` and needs no model knowledge.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class Condition:
    """Any of: class labels [B], a context sequence [B, S, D] with its padding mask [B, S]
    (True = real token), and ``drop`` [B] (True = use the null condition for that row)."""

    labels: torch.Tensor | None = None
    context: torch.Tensor | None = None
    context_mask: torch.Tensor | None = None
    drop: torch.Tensor | None = None

    def __post_init__(self) -> None:
        sizes = {f.name: getattr(self, f.name).shape[0] for f in fields(self) if getattr(self, f.name) is not None}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"Condition: fields disagree on the batch size: {sizes}")
        if self.labels is not None and self.labels.dim() != 1:
            raise ValueError(f"labels: expected shape [B], got {tuple(self.labels.shape)}")
        if self.context is not None and self.context.dim() != 3:
            raise ValueError(f"context: expected shape [B, S, D], got {tuple(self.context.shape)}")
        if self.context_mask is not None:
            if self.context is None:
                raise ValueError("context_mask given without context")
            if self.context_mask.shape != self.context.shape[:2]:
                raise ValueError(
                    f"context_mask: expected shape {tuple(self.context.shape[:2])} (context's [B, S]), "
                    f"got {tuple(self.context_mask.shape)}"
                )

    @property
    def batch_size(self) -> int | None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                return value.shape[0]
        return None

    @property
    def device(self) -> torch.device | None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                return value.device
        return None

    def dropped(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """BoolTensor[B]: rows that use the null condition."""
        if self.drop is None:
            return torch.zeros(batch_size, dtype=torch.bool, device=device)
        return self.drop.to(device=device, dtype=torch.bool)

    def null(self) -> Condition:
        """The same rows, all switched to the null condition (for classifier-free guidance)."""
        n = self.batch_size
        if n is None:
            return self
        return replace(self, drop=torch.ones(n, dtype=torch.bool, device=self.device))

    def with_drop(self, drop: torch.Tensor) -> Condition:
        """Also drop the rows where ``drop`` is True (condition dropout in training)."""
        current = self.dropped(drop.shape[0], drop.device)
        return replace(self, drop=current | drop)

    def select(self, index) -> Condition:
        """The rows ``index`` (an int keeps a batch of one)."""
        index = slice(index, index + 1) if isinstance(index, int) else index
        return replace(self, **{f.name: _select(getattr(self, f.name), index) for f in fields(self)})

    def to(self, device: torch.device | str) -> Condition:
        return replace(self, **{f.name: _to(getattr(self, f.name), device) for f in fields(self)})

    @staticmethod
    def cat(conditions: list[Condition]) -> Condition:
        """Concatenate along the batch; a field must be present in all or none."""
        values = {}
        for f in fields(Condition):
            parts = [getattr(c, f.name) for c in conditions]
            if f.name == "drop":
                parts = [c.dropped(c.batch_size, c.device) if c.batch_size else None for c in conditions]
            present = [p is not None for p in parts]
            if any(present) and not all(present):
                raise ValueError(f"Condition.cat: field {f.name!r} is set in some conditions but not all")
            values[f.name] = torch.cat(parts) if all(present) else None
        return Condition(**values)


def _to(value: torch.Tensor | None, device: torch.device | str) -> torch.Tensor | None:
    return None if value is None else value.to(device)


def _select(value: torch.Tensor | None, index) -> torch.Tensor | None:
    return None if value is None else value[index]
