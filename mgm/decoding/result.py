"""What every decoder returns: one DecodeResult, with a typed trace per method behind one base."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TraceRecord:
    """Base of every trace record: the step (iteration) it describes, 0-based."""

    step: int


@dataclass
class StepRecord(TraceRecord):
    """One masked-decoding step. Tensors are per sample ([B]) and stay on the device (no host sync)."""

    revealed: torch.Tensor  # LongTensor[B]: tokens revealed at this step
    mean_confidence: torch.Tensor  # FloatTensor[B]: mean model probability of those tokens (0 if none)
    guidance_scale: float = 0.0
    choice_temperature: float = 0.0
    full: bool = True  # False: a cheap feature-reuse step over a few positions (ReCAP)
    queries: int | None = None  # positions the model computed (None: all N)


@dataclass
class JacobiRecord(TraceRecord):
    """One SJD iteration of one sample: the tokens it committed (accepted drafts + one drawn)."""

    sample: int
    committed: int


@dataclass
class DecodeResult:
    """Args:
    codes: LongTensor[B, K, N] for every decoder (AR decoders: K = 1, N = the sequence length).
    nfe: the model forward passes the call ran in sequence (one batched CFG forward counts once).
    trace: per-step records (``StepRecord`` for masked decoders, ``JacobiRecord`` for SJD).
    compute: full-pass equivalents (a cheap pass over Q of N positions counts Q / N); None = nfe.
    nfe_per_sample: LongTensor[B] of each sample's passes where samples differ (SJD); else None.
    """

    codes: torch.Tensor
    nfe: int
    trace: list[TraceRecord] = field(default_factory=list)
    compute: float | None = None
    nfe_per_sample: torch.Tensor | None = None

    def __post_init__(self):
        if self.compute is None:
            self.compute = float(self.nfe)

    def passes_per_sample(self) -> torch.Tensor:
        """LongTensor[B]: each sample's forward passes (``nfe`` for all when they decode together)."""
        if self.nfe_per_sample is not None:
            return self.nfe_per_sample
        return torch.full((self.codes.shape[0],), self.nfe, dtype=torch.long)

    @staticmethod
    def cat(results: list[DecodeResult]) -> DecodeResult:
        """Results of consecutive batches as one: codes concatenated, passes and compute summed
        (they ran one after the other), each sample's own passes kept, the trace of every batch in order."""
        per_sample = torch.cat([r.passes_per_sample().cpu() for r in results])
        return DecodeResult(
            codes=torch.cat([r.codes for r in results]),
            nfe=sum(r.nfe for r in results),
            trace=[record for r in results for record in r.trace],
            compute=sum(r.compute for r in results),
            nfe_per_sample=per_sample,
        )
