"""ReCAP: MaskGIT decoding with cheap feature-reuse steps (Liu et al., "Plug-and-Play Context
Feature Reuse for Efficient Masked Generation").

At a full step the model runs over all N positions and keeps every layer's keys/values. From
its Gumbel-noised confidences we pick the chunk of tokens that this step and the cheap steps
after it will reveal, and reveal this step's share exactly as MaskGIT does. Each following cheap
step recomputes only the chunk's positions (their current tokens, fresh keys/values) against the
cached keys/values of every other position, and reveals the next share of the chunk. Then the
next full step. A pattern without cheap steps is MaskGIT, bit for bit.

The model needs ``forward_cached(codes, cond) -> (logits, cache)`` and
``forward_partial(codes[B, K, Q], positions[B, Q], cond, cache) -> logits[B, K, Q, V]``
(``mgm.models.MaskedTransformer`` has both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.decoding.cached import CachedPasses, passes_for, query_positions
from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.maskgit import MaskGITOptions, check_logits, sample_and_score, step_record
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators
from mgm.models.conditioning import Condition
from mgm.schedules import masked_counts, ranks
from mgm.schedules.groups import span_scores
from mgm.schedules.mask import MaskSchedule
from mgm.schedules.reuse import ReusePattern
from mgm.tokens import TokenSpec


@dataclass(frozen=True)
class RecapOptions(MaskGITOptions):
    """MaskGIT's options plus the reuse pattern: ``full_first`` full steps, then each later full
    step followed by ``cheap_per_full`` cheap ones (``mgm.schedules.reuse.ReusePattern``)."""

    full_first: int = 2
    cheap_per_full: int = 1

    HELP: ClassVar[dict] = {
        "full_first": "feature reuse: full steps at the start",
        "cheap_per_full": "feature reuse: cheap steps after each later full step",
    }

    def __post_init__(self):
        super().__post_init__()
        self.reuse  # noqa: B018 (builds the ReusePattern, which checks both)

    @property
    def reuse(self) -> ReusePattern:
        return ReusePattern(self.full_first, self.cheap_per_full)


@torch.inference_mode()
def recap_decode(
    model,
    spec: TokenSpec,
    *,
    batch_size: int | None = None,
    cond: Condition | None = None,
    generator: Generators = None,
    init_codes: torch.Tensor | None = None,
    editable: torch.Tensor | None = None,
    **options,
) -> DecodeResult:
    """``maskgit_decode``'s arguments; ``options`` add the reuse pattern (``RecapOptions``:
    full_first, cheap_per_full) to MaskGIT's (``cached`` / ``refresh`` too: then the full steps
    between refreshes are cached decoding's partial passes and the cheap ones write their keys
    and values back). ``nfe`` counts full and cheap passes; ``compute`` counts a pass over Q of N
    positions as Q / N of a full one. With ``compile`` the cheap passes compile with dynamic shapes."""
    run, own = prepare_masked(
        model, spec, RECAP, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    passes = passes_for(run, own.cached, own.refresh, reuse=True)
    candidates = spec.is_masked(run.codes)
    kinds = own.reuse.kinds(own.num_steps)
    with run.autocast():
        codes, trace, compute = recap_reveal(
            run, passes, run.codes, candidates, own.num_steps, own.schedule, run.guidance_scales(own.num_steps), kinds
        )
    return DecodeResult(codes=codes, nfe=own.num_steps, trace=trace, compute=compute)


def recap_reveal(
    run: MaskedRun,
    passes: CachedPasses,
    codes: torch.Tensor,
    candidates: torch.Tensor,
    num_steps: int,
    schedule: str | MaskSchedule,
    scales: list[float],
    kinds: tuple[bool, ...],
    span: int = 1,
    first_step: int = 0,
) -> tuple[torch.Tensor, list, float]:
    """The ReCAP loop over the masked ``candidates`` [B, K, N] of ``codes`` (as ``iterative_reveal``,
    with ``kinds[t]`` True for a full step, False for a cheap one); returns (codes, trace, compute)."""
    masked_after = masked_counts(candidates.flatten(1).sum(1), num_steps, schedule)  # (B, T)
    chunk_counts = _query_counts(candidates, masked_after, kinds)  # one host read, before the loop
    passes.start(candidates, masked_after)
    trace, compute_before, chunk, num_queries = [], passes.compute, None, 0
    bucket = run.run.compile  # chunk counts read per step (K > 1) round up only for a compiled pass
    for step in range(num_steps):
        scale = scales[step]
        tau = run.choice_temperature(step, num_steps)
        if kinds[step]:
            logits = passes(codes, candidates, scale)  # (B, K, N, V)
            if step == 0:
                check_logits(logits, codes, run.spec)
            active = candidates
        else:
            positions = query_positions(chunk, num_queries, bucket)  # (B, Q)
            logits = passes.cheap(codes, positions, candidates, scale)  # (B, K, N, V), zero off the chunk
            active = candidates & chunk
        sampled, log_probs, confidence = sample_and_score(logits, run.sampling, tau, run.generator)
        order = ranks(span_scores(confidence, active, span).flatten(1)).view_as(codes)
        if kinds[step]:
            # The chunk: every token revealed from now until the next full step (this step's share first).
            last = _last_cheap_step(kinds, step)
            chunk = candidates & (order >= masked_after[:, last : last + 1, None])
            num_queries = chunk_counts[step]
        # MaskGIT's rule: the masked_after[:, step] least confident candidates stay masked; masked tokens
        # outside the chunk are not ranked at a cheap step and all stay masked.
        outside = (candidates & ~active).flatten(1).sum(1)
        stay = (order < (masked_after[:, step] - outside)[:, None, None]) & active
        revealed = active & ~stay
        codes = torch.where(revealed, sampled, codes)
        candidates = candidates & ~revealed
        record = step_record(first_step + step, revealed, log_probs, scale, tau)
        record.full, record.queries = kinds[step], passes.queries
        trace.append(record)
        run.step_done(first_step + step, codes)
    return codes, trace, passes.compute - compute_before


def _last_cheap_step(kinds: tuple[bool, ...], step: int) -> int:
    """The last step before the next full one (``step`` itself when the next step is full)."""
    last = step
    while last + 1 < len(kinds) and not kinds[last + 1]:
        last += 1
    return last


def _query_counts(candidates: torch.Tensor, masked_after: torch.Tensor, kinds: tuple[bool, ...]) -> list:
    """Per full step, the cheap queries Q of its chunk (the most chunk positions any sample has),
    read off the mask counts before decoding when each position holds one candidate at most (one
    codebook, or a group of one: chunk tokens = chunk positions), so the loop never reads a count
    back from the device and the chunk's cheap steps have one static shape. Where tokens share
    positions (K > 1 codebooks decoded together): None (measured per chunk).
    """
    counts: list[int | None] = [None] * len(kinds)
    full_steps = [t for t, full in enumerate(kinds) if full]
    if not full_steps or bool((candidates.sum(1) > 1).any()):
        return counts
    total = candidates.flatten(1).sum(1, keepdim=True)
    masked_before = torch.cat([total, masked_after[:, :-1]], dim=1)  # (B, T)
    lasts = torch.tensor([_last_cheap_step(kinds, t) for t in full_steps], device=masked_after.device)
    sizes = (masked_before[:, full_steps] - masked_after[:, lasts]).amax(0).clamp_min(1)
    for t, size in zip(full_steps, sizes.tolist()):
        counts[t] = size
    return counts


RECAP = register(Method("recap", recap_decode, RecapOptions, MASKED, "MaskGIT with ReCAP's cheap feature-reuse steps"))
