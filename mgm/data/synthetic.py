"""Synthetic token data with exact structure, for testing that models learn.

A ``SparseMarkovChain`` allows only ``branching`` successors per state, so the share of
allowed transitions in a sequence is an exact quality check: trained samples should be near 1,
uniformly random tokens score ``branching / vocab_size``.
"""

from __future__ import annotations

import torch


class SparseMarkovChain:
    """A fixed random first-order chain over ``vocab_size`` states, ``branching`` successors each.

    One chain per class: ``num_classes`` independent transition tables from one seed.
    """

    def __init__(self, vocab_size: int = 16, branching: int = 2, num_classes: int = 1, seed: int = 0):
        if not 1 <= branching <= vocab_size:
            raise ValueError(f"branching={branching}: expected 1 <= branching <= vocab_size={vocab_size}")
        g = torch.Generator().manual_seed(seed)
        self.vocab_size, self.branching, self.num_classes = vocab_size, branching, num_classes
        # successors[c, s] = the allowed next states of state s under class c.
        self.successors = torch.stack(
            [
                torch.stack([torch.randperm(vocab_size, generator=g)[:branching] for _ in range(vocab_size)])
                for _ in range(num_classes)
            ]
        )  # (C, V, branching)
        self.allowed = torch.zeros(num_classes, vocab_size, vocab_size, dtype=torch.bool)
        self.allowed.scatter_(2, self.successors, True)

    def sample(
        self, num: int, length: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """LongTensor[num, length]: sequences from a uniform start, uniform among allowed successors."""
        labels = torch.zeros(num, dtype=torch.long) if labels is None else labels
        seq = torch.empty(num, length, dtype=torch.long)
        seq[:, 0] = torch.randint(self.vocab_size, (num,), generator=generator)
        for t in range(1, length):
            choice = torch.randint(self.branching, (num,), generator=generator)
            seq[:, t] = self.successors[labels, seq[:, t - 1], choice]
        return seq

    def valid_rate(self, seq: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """FloatTensor[num]: share of transitions in each sequence [num, length] the chain allows."""
        labels = torch.zeros(seq.shape[0], dtype=torch.long) if labels is None else labels
        ok = self.allowed[labels[:, None], seq[:, :-1], seq[:, 1:]]
        return ok.float().mean(1)
