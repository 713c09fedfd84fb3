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
) -> DecodeResult:
    """``maskgit_decode``'s arguments plus the reuse plan: ``reuse`` (a ReusePlan), or its fields
    ``full_first`` / ``cheap_per_full`` (default ReusePlan()). ``nfe`` counts full and cheap passes;
    ``compute`` counts a cheap pass over Q of N positions as Q / N of a full one."""
    device = resolve_device(model, init_codes, device)
    check_model_spec(model, spec)
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
    codes, trace, compute = recap_reveal(
        passes, spec, codes, candidates, num_steps, schedule, scales, reuse.kinds(num_steps), temperature, top_k,
        top_p, choice_temperature, choice_temperature_annealing, generator,
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
    trace, compute, cache, chunk = [], 0.0, None, None
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
            queries, active = n, candidates
        else:
            positions, valid = _chunk_positions(chunk)  # (B, Q)
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


def _chunk_positions(chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid positions holding chunk tokens, per sample, padded by repeating the first one.

    chunk: BoolTensor[B, K, N] -> (positions LongTensor[B, Q], valid BoolTensor[B, Q]), Q = the
    largest count. A repeated query computes exactly what its first copy does, so padding never
    changes another query's result; ``valid`` marks the first copies.
    """
    flags = chunk.any(1)  # (B, N)
    counts = flags.sum(1)
    q = max(int(counts.max()), 1)
    order = (~flags).to(torch.uint8).argsort(dim=-1, stable=True)[:, :q]  # chunk positions first, ascending
    valid = torch.arange(q, device=chunk.device)[None] < counts[:, None]
    return torch.where(valid, order, order[:, :1]), valid
