"""What every decoder returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class StepRecord:
    """One decoding step. Tensors are per sample ([B]) and stay on the device (no host sync)."""

    step: int
    revealed: torch.Tensor  # LongTensor[B]: tokens revealed at this step
    mean_confidence: torch.Tensor  # FloatTensor[B]: mean model probability of those tokens (0 if none)
    guidance_scale: float = 0.0
    choice_temperature: float = 0.0
    full: bool = True  # False: a cheap feature-reuse step over a few positions (ReCAP)
    queries: int | None = None  # positions the model computed (None: all N)


@dataclass
class DecodeResult:
    codes: torch.Tensor  # LongTensor[B, K, N] (masked decoders) or [B, N] (AR decoders)
    nfe: int  # model forward passes; one batched CFG forward counts once
    trace: list[StepRecord] = field(default_factory=list)
    compute: float | None = None  # full-pass equivalents (a cheap pass over Q of N positions: Q / N); None = nfe

    def __post_init__(self):
        if self.compute is None:
            self.compute = float(self.nfe)
