"""ReCAP: MaskGIT decoding with cheap feature-reuse steps (Liu et al., "Plug-and-Play Context
Feature Reuse for Efficient Masked Generation").

At a full step the model runs over all N positions and keeps every layer's keys/values. From
its Gumbel-noised confidences we pick the chunk of tokens that this step and the cheap steps
after it will reveal, and reveal this step's share exactly as MaskGIT does. Each following cheap
step recomputes only the chunk's positions (their current tokens, fresh keys/values) against the
cached keys/values of every other position, and reveals the next share of the chunk. Then the
next full step. A plan without cheap steps is MaskGIT, bit for bit.

The model needs ``forward_cached(codes, cond) -> (logits, cache)`` and
``forward_partial(codes[B, K, Q], positions[B, Q], cond, cache) -> logits[B, K, Q, V]``
(``mgm.models.MaskedTransformer`` has both).
"""

from __future__ import annotations

import torch

from mgm.decoding.canvas import (
    check_condition,
    check_model_spec,
    check_positive_int,
    check_reveal_args,
    prepare_canvas,
    resolve_device,
)
from mgm.decoding.guidance import guide
from mgm.decoding.maskgit import _check_logits, _record, sample_and_score
from mgm.decoding.result import DecodeResult
from mgm.decoding.speed import autocast, check_speed_args
from mgm.models.conditioning import Condition
from mgm.schedules import choice_temperature_at, get_mask_schedule, guidance_scale_at, masked_counts, ranks
from mgm.schedules.annealing import check_annealing
from mgm.schedules.groups import span_scores
from mgm.schedules.mask import MaskSchedule
from mgm.schedules.reuse import ReusePlan
from mgm.tokens import TokenSpec


class CachedGuidedModel:
    """Full and cheap passes with classifier-free guidance: conditional and null rows in one batch
    (and side by side in the cache) whenever guidance is on at all."""

    def __init__(self, model, cond: Condition | None, guided: bool):
        for name in ("forward_cached", "forward_partial"):
            if not callable(getattr(model, name, None)):
                raise ValueError(f"recap decoding needs a model with {name}() (e.g. mgm.models.MaskedTransformer)")
        self.model = model
        self.paired = guided and cond is not None
        self.cond = Condition.cat([cond, cond.null()]) if self.paired else cond

    def _pair(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x]) if self.paired else x

    def _guide(self, logits: torch.Tensor, scale: float) -> torch.Tensor:
        logits = logits.float()  # full precision for guidance and sampling, as GuidedModel
        return guide(*logits.chunk(2), scale) if self.paired else logits

    def full(self, codes: torch.Tensor, scale: float):
        logits, cache = self.model.forward_cached(self._pair(codes), self.cond)
        return self._guide(logits, scale), cache

    def cheap(self, codes: torch.Tensor, positions: torch.Tensor, cache, scale: float) -> torch.Tensor:
        logits = self.model.forward_partial(self._pair(codes), self._pair(positions), self.cond, cache)
        return self._guide(logits, scale)


@torch.inference_mode()
def recap_decode(
    model,
    spec: TokenSpec,
    batch_size: int | None = 4,
    num_steps: int = 12,
    schedule: str | MaskSchedule = "cosine",
    cond: Condition | None = None,
    guidance_scale: float = 0.0,
    temperature: float = 1.0,
    init_codes: torch.Tensor | None = None,
    editable: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    reuse: ReusePlan | None = None,
    full_first: int | None = None,
    cheap_per_full: int | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    choice_temperature: float = 4.5,
    choice_temperature_annealing: str = "linear",
    guidance_annealing: str = "constant",
    device: torch.device | str | None = None,
    dtype: str | torch.dtype | None = None,
    compile: bool = False,
) -> DecodeResult:
    """``maskgit_decode``'s arguments plus the reuse plan: ``reuse`` (a ReusePlan), or its fields
    ``full_first`` / ``cheap_per_full`` (default ReusePlan()). ``nfe`` counts full and cheap passes;
    ``compute`` counts a cheap pass over Q of N positions as Q / N of a full one. ``dtype`` as in
    ``maskgit_decode``; ``compile`` is refused (the cheap passes vary in shape)."""
    device = resolve_device(model, init_codes, device)
    check_model_spec(model, spec)
    dtype = check_speed_args(dtype, compile, model)
    if compile:
        raise ValueError("compile=True is not supported by recap_decode (its cheap passes vary in shape)")
    check_positive_int(num_steps, "num_steps")
    get_mask_schedule(schedule)
    check_reveal_args(temperature, top_k, top_p, guidance_scale, cond, choice_temperature, choice_temperature_annealing)
    check_annealing(guidance_annealing, "guidance_annealing")
    if reuse is None:
        options = {k: v for k, v in (("full_first", full_first), ("cheap_per_full", cheap_per_full)) if v is not None}
        reuse = ReusePlan(**options)
    elif full_first is not None or cheap_per_full is not None:
        raise ValueError("give either reuse=ReusePlan(...) or full_first / cheap_per_full, not both")
    passes = CachedGuidedModel(model, cond, guided=guidance_scale > 0)
    codes = prepare_canvas(spec, batch_size, init_codes, editable, device)
    b, k, n = codes.shape
    check_condition(cond, b, model)
    if passes.cond is not None:
        passes.cond = passes.cond.to(device)

    candidates = spec.is_masked(codes)
    scales = [guidance_scale_at(guidance_scale, t, num_steps, guidance_annealing) for t in range(num_steps)]
    with autocast(device, dtype):
        codes, trace, compute = recap_reveal(
            passes, spec, codes, candidates, num_steps, schedule, scales, reuse.kinds(num_steps), temperature,
            top_k, top_p, choice_temperature, choice_temperature_annealing, generator,
        )  # fmt: skip
    return DecodeResult(codes=codes, nfe=num_steps, trace=trace, compute=compute)


def recap_reveal(
    passes: CachedGuidedModel,
    spec: TokenSpec,
    codes: torch.Tensor,
    candidates: torch.Tensor,
    num_steps: int,
    schedule: str | MaskSchedule,
    scales: list[float],
    kinds: tuple[bool, ...],
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    choice_temperature: float,
    choice_temperature_annealing: str,
    generator: torch.Generator | None,
    span: int = 1,
    first_step: int = 0,
) -> tuple[torch.Tensor, list, float]:
    """The ReCAP loop over the masked ``candidates`` [B, K, N] of ``codes`` (as ``iterative_reveal``,
    with ``kinds[t]`` True for a full step, False for a cheap one); returns (codes, trace, compute)."""
    b, k, n = codes.shape
    device = codes.device
    plan = masked_counts(candidates.flatten(1).sum(1), num_steps, schedule)  # (B, T): masked after each step
    query_counts = _query_counts(candidates, plan, kinds)  # one host read, before the loop
    trace, compute, cache, chunk, num_queries = [], 0.0, None, None, 0
    for step in range(num_steps):
        scale = scales[step]
        tau = choice_temperature_at(choice_temperature, step, num_steps, choice_temperature_annealing)
        if kinds[step]:
            logits, cache = passes.full(codes, scale)  # (B, K, N, V)
            if step == 0:
                _check_logits(logits, codes, spec)
            sampled, log_probs, confidence = sample_and_score(logits, temperature, top_k, top_p, tau, generator)
            order = ranks(span_scores(confidence, candidates, span).flatten(1)).view_as(codes)
            # The chunk: every token revealed from now until the next full step (this step's share first).
            last = _last_cheap_step(kinds, step)
            chunk = candidates & (order >= plan[:, last : last + 1, None])
            queries, active, num_queries = n, candidates, query_counts[step]
        else:
            positions, valid = _chunk_positions(chunk, num_queries)  # (B, Q)
            where = positions[:, None, :].expand(b, k, -1)
            logits = passes.cheap(codes.gather(2, where), positions, cache, scale)  # (B, K, Q, V)
            sampled_q, log_probs_q, noised_q = sample_and_score(logits, temperature, top_k, top_p, tau, generator)
            # Back onto the grid; padded (repeated) queries go to a spare column that is dropped.
            slot = torch.where(valid, positions, n)[:, None, :].expand(b, k, -1)
            sampled = torch.cat([codes, codes[..., :1]], -1).scatter(2, slot, sampled_q)[..., :n]
            spare = torch.zeros(b, k, n + 1, device=device)
            log_probs = spare.scatter(2, slot, log_probs_q)[..., :n]
            confidence = spare.scatter(2, slot, noised_q)[..., :n]
            active = candidates & chunk
            order = ranks(span_scores(confidence, active, span).flatten(1)).view_as(codes)
            queries = positions.shape[1]
        # MaskGIT's rule: the plan[:, step] least confident candidates stay masked; masked tokens
        # outside the chunk are not ranked at a cheap step and all stay masked.
        outside = (candidates & ~active).flatten(1).sum(1)
        stay = (order < (plan[:, step] - outside)[:, None, None]) & active
        revealed = active & ~stay
        codes = torch.where(revealed, sampled, codes)
        candidates = candidates & ~revealed
        compute += queries / n
        record = _record(first_step + step, revealed, log_probs, scale, tau)
        record.full, record.queries = kinds[step], queries
        trace.append(record)
    return codes, trace, compute


def _last_cheap_step(kinds: tuple[bool, ...], step: int) -> int:
    """The last step before the next full one (``step`` itself when the next step is full)."""
    last = step
    while last + 1 < len(kinds) and not kinds[last + 1]:
        last += 1
    return last


def _query_counts(candidates: torch.Tensor, plan: torch.Tensor, kinds: tuple[bool, ...]) -> list[int | None]:
    """Per full step, the cheap queries Q of its chunk (the most chunk positions any sample has),
    read off the plan before decoding when there is one codebook (chunk tokens = chunk positions),
    so the loop never reads a count back from the device and the chunk's cheap steps have one
    static shape. With K > 1 codebooks tokens may share positions: None (measured per chunk).
    """
    counts: list[int | None] = [None] * len(kinds)
    full_steps = [t for t, full in enumerate(kinds) if full]
    if candidates.shape[1] > 1 or not full_steps:
        return counts
    total = candidates.flatten(1).sum(1, keepdim=True)
    masked_before = torch.cat([total, plan[:, :-1]], dim=1)  # (B, T)
    lasts = torch.tensor([_last_cheap_step(kinds, t) for t in full_steps], device=plan.device)
    sizes = (masked_before[:, full_steps] - plan[:, lasts]).amax(0).clamp_min(1)
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
