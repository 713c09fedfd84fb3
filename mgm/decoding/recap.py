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

from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.guidance import guide
from mgm.decoding.maskgit import MaskGITOptions, check_logits, sample_and_score, step_record
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators
from mgm.models.conditioning import Condition
from mgm.models.protocols import model_traits
from mgm.schedules import masked_counts, ranks
from mgm.schedules.groups import span_scores
from mgm.schedules.mask import MaskSchedule
from mgm.schedules.reuse import ReusePattern
from mgm.tokens import TokenSpec


class CachedGuidedModel:
    """Full and cheap passes with classifier-free guidance: conditional and null rows in one batch
    (and side by side in the cache) whenever guidance is on at all."""

    def __init__(self, model, cond: Condition | None, guided: bool):
        traits = model_traits(model)
        for name in ("forward_cached", "forward_partial"):
            if not callable(getattr(traits, name)):
                raise ValueError(f"feature reuse needs a model with {name}() (e.g. mgm.models.MaskedTransformer)")
        self.traits = traits
        self.paired = guided and cond is not None
        self.cond = Condition.cat([cond, cond.null()]) if self.paired else cond

    def _pair(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x]) if self.paired else x

    def _guide(self, logits: torch.Tensor, scale: float) -> torch.Tensor:
        logits = logits.float()  # full precision for guidance and sampling, as GuidedModel
        return guide(*logits.chunk(2), scale) if self.paired else logits

    def full(self, codes: torch.Tensor, scale: float):
        logits, cache = self.traits.forward_cached(self._pair(codes), self.cond)
        return self._guide(logits, scale), cache

    def cheap(self, codes: torch.Tensor, positions: torch.Tensor, cache, scale: float) -> torch.Tensor:
        logits = self.traits.forward_partial(self._pair(codes), self._pair(positions), self.cond, cache)
        return self._guide(logits, scale)


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
    full_first, cheap_per_full). ``nfe`` counts full and cheap passes; ``compute`` counts a cheap
    pass over Q of N positions as Q / N of a full one. ``compile`` is refused (the cheap passes
    vary in shape)."""
    run, own = prepare_masked(
        model, spec, RECAP, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    if run.run.compile:
        raise ValueError("compile=True is not supported by recap_decode (its cheap passes vary in shape)")
    passes = CachedGuidedModel(run.model, run.cond, guided=run.sampling.guidance_scale > 0)
    candidates = spec.is_masked(run.codes)
    kinds = own.reuse.kinds(own.num_steps)
    with run.autocast():
        codes, trace, compute = recap_reveal(
            run, passes, run.codes, candidates, own.num_steps, own.schedule, run.guidance_scales(own.num_steps), kinds
        )
    return DecodeResult(codes=codes, nfe=own.num_steps, trace=trace, compute=compute)


def recap_reveal(
    run: MaskedRun,
    passes: CachedGuidedModel,
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
    b, k, n = codes.shape
    masked_after = masked_counts(candidates.flatten(1).sum(1), num_steps, schedule)  # (B, T)
    query_counts = _query_counts(candidates, masked_after, kinds)  # one host read, before the loop
    trace, compute, cache, chunk, num_queries = [], 0.0, None, None, 0
    for step in range(num_steps):
        scale = scales[step]
        tau = run.choice_temperature(step, num_steps)
        if kinds[step]:
            logits, cache = passes.full(codes, scale)  # (B, K, N, V)
            if step == 0:
                check_logits(logits, codes, run.spec)
            queries, active = n, candidates
        else:
            positions, valid = _chunk_positions(chunk, num_queries)  # (B, Q)
            where = positions[:, None, :].expand(b, k, -1)
            logits_q = passes.cheap(codes.gather(2, where), positions, cache, scale)  # (B, K, Q, V)
            # Onto the whole grid, so that every sample draws the same noise as at a full step,
            # whatever the batch's largest chunk Q (a padded query repeats its first copy).
            logits = logits_q.new_zeros(b, k, n, logits_q.shape[-1]).scatter(
                2, where[..., None].expand(-1, -1, -1, logits_q.shape[-1]), logits_q
            )
            queries, active = positions.shape[1], candidates & chunk
        sampled, log_probs, confidence = sample_and_score(logits, run.sampling, tau, run.generator)
        order = ranks(span_scores(confidence, active, span).flatten(1)).view_as(codes)
        if kinds[step]:
            # The chunk: every token revealed from now until the next full step (this step's share first).
            last = _last_cheap_step(kinds, step)
            chunk = candidates & (order >= masked_after[:, last : last + 1, None])
            num_queries = query_counts[step]
        # MaskGIT's rule: the masked_after[:, step] least confident candidates stay masked; masked tokens
        # outside the chunk are not ranked at a cheap step and all stay masked.
        outside = (candidates & ~active).flatten(1).sum(1)
        stay = (order < (masked_after[:, step] - outside)[:, None, None]) & active
        revealed = active & ~stay
        codes = torch.where(revealed, sampled, codes)
        candidates = candidates & ~revealed
        compute += queries / n
        record = step_record(first_step + step, revealed, log_probs, scale, tau)
        record.full, record.queries = kinds[step], queries
        trace.append(record)
        run.step_done(first_step + step, codes)
    return codes, trace, compute


def _last_cheap_step(kinds: tuple[bool, ...], step: int) -> int:
    """The last step before the next full one (``step`` itself when the next step is full)."""
    last = step
    while last + 1 < len(kinds) and not kinds[last + 1]:
        last += 1
    return last


def _query_counts(candidates: torch.Tensor, masked_after: torch.Tensor, kinds: tuple[bool, ...]) -> list:
    """Per full step, the cheap queries Q of its chunk (the most chunk positions any sample has),
    read off the mask counts before decoding when there is one codebook (chunk tokens = chunk positions),
    so the loop never reads a count back from the device and the chunk's cheap steps have one
    static shape. With K > 1 codebooks tokens may share positions: None (measured per chunk).
    """
    counts: list[int | None] = [None] * len(kinds)
    full_steps = [t for t, full in enumerate(kinds) if full]
    if candidates.shape[1] > 1 or not full_steps:
        return counts
    total = candidates.flatten(1).sum(1, keepdim=True)
    masked_before = torch.cat([total, masked_after[:, :-1]], dim=1)  # (B, T)
    lasts = torch.tensor([_last_cheap_step(kinds, t) for t in full_steps], device=masked_after.device)
    sizes = (masked_before[:, full_steps] - masked_after[:, lasts]).amax(0).clamp_min(1)
    for t, size in zip(full_steps, sizes.tolist()):
        counts[t] = size
    return counts


def _chunk_positions(chunk: torch.Tensor, q: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid positions holding chunk tokens, per sample, padded by repeating the first one.

    chunk: BoolTensor[B, K, N]; q: the most chunk positions of any sample (``_query_counts``), or
    None to count them here (a host read) -> (positions LongTensor[B, Q], valid BoolTensor[B, Q]). A repeated
    query computes exactly what its first copy does, so padding never changes another query's
    result; ``valid`` marks the first copies.
    """
    flags = chunk.any(1)  # (B, N)
    counts = flags.sum(1)
    q = max(int(counts.max()), 1) if q is None else q
    order = (~flags).to(torch.uint8).argsort(dim=-1, stable=True)[:, :q]  # chunk positions first, ascending
    valid = torch.arange(q, device=chunk.device)[None] < counts[:, None]
    return torch.where(valid, order, order[:, :1]), valid


RECAP = register(Method("recap", recap_decode, RecapOptions, MASKED, "MaskGIT with ReCAP's cheap feature-reuse steps"))
