"""The passes a masked decode loop runs at each step, over the whole canvas or on a KV cache.

A loop asks ``passes(codes, candidates, scale)`` for the logits [B, K, N, V] of a step, where
``candidates`` BoolTensor[B, K, N] are the masked tokens this decode may reveal. Two kinds:

- ``FullPasses``: the model over all N positions at every step (MaskGIT as published).
- ``CachedPasses``: a pass that keeps every layer's keys and values (``forward_cached``) and
  passes on a few positions against them (``forward_partial``). It serves ReCAP (``cheap``:
  given positions against the last full pass's cache, which stays as it was) and cached masked
  decoding after dKV-Cache (``refresh=R``): a token's keys and values enter the cache at the step
  after it is decoded, so each step recomputes only the positions that held a candidate at the
  previous step's input (still masked, or decoded at that step) and writes their fresh keys and
  values back; the rest attend from the cache. A full pass runs at least every R steps (and at
  the first step of every loop); with ``refresh=1`` every step is one.

Where the schedule fixes the counts (MaskGIT, group plans, ReCAP) every step's query count is
read off the mask counts before the loop (one host read), so a step has one static shape and
the loop none; where it does not (the adaptive decoders with ``early_exit``) the count is read
each step and rounded up to one of ``BUCKETS`` sizes, so a compiled partial pass sees at most
that many shapes. Queries are padded by repeating a sample's first one, which computes exactly
what its first copy does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int
from mgm.decoding.guidance import GuidedModel, guide
from mgm.models.conditioning import Condition
from mgm.models.protocols import model_traits

BUCKETS = 8  # sizes a step's query count is rounded up to when it is read per step: multiples of N / 8


@dataclass(frozen=True)
class CacheOptions:
    """Cached masked decoding: ``cached`` reuses the keys/values of decoded tokens (dKV-Cache),
    recomputing only the positions masked at the previous step's input; ``refresh``: a full
    pass at least every this many steps (1: every step, which is the uncached decode)."""

    cached: bool = False
    refresh: int = 4

    HELP: ClassVar[dict] = {
        "cached": "reuse decoded tokens' keys/values: recompute only the still-masked and just-decoded positions",
        "refresh": "cached decoding: a full pass at least every this many steps",
    }

    def __post_init__(self):
        if not isinstance(self.cached, bool):
            raise ValueError(f"cached={self.cached!r}: expected True or False")
        check_int(self.refresh, "refresh")


class FullPasses:
    """Every step over the whole canvas: ``GuidedModel``'s one (paired) forward."""

    def __init__(self, model, cond: Condition | None):
        self.guided = GuidedModel(model, cond)
        self.compute = 0.0
        self.queries = 0

    def start(self, candidates: torch.Tensor | None = None, masked_after: torch.Tensor | None = None) -> None:
        """A new loop (nothing to reset)."""

    def __call__(self, codes: torch.Tensor, candidates: torch.Tensor, scale) -> torch.Tensor:
        self.compute += 1.0
        self.queries = codes.shape[-1]
        return self.guided(codes, scale)


def passes_for(run, cached: bool, refresh: int, reuse: bool = False):
    """The passes of a masked run: ``CachedPasses`` for cached decoding or feature reuse (with
    ``refresh`` only when cached), else ``FullPasses``. ``cached`` with ``refresh=1`` runs every
    step in full, so it is ``FullPasses`` unless feature reuse needs the cache anyway."""
    guided = run.sampling.guidance_scale > 0
    if cached and refresh > 1:
        return CachedPasses(run.model, run.cond, guided, refresh)
    if reuse:
        return CachedPasses(run.model, run.cond, guided)
    return FullPasses(run.model, run.cond)


class CachedPasses:
    """Full and partial passes on a KV cache, with classifier-free guidance as one batch
    (conditional and null rows side by side in the cache whenever guidance is on at all).

    ``refresh``: None for ReCAP's rule (every call a full pass; ``cheap`` leaves the cache as it
    is), or R for cached decoding (module doc). ``compute`` adds up full-pass equivalents (a
    pass over Q of N positions counts Q / N); ``queries`` is the last pass's Q.
    """

    def __init__(self, model, cond: Condition | None, guided: bool, refresh: int | None = None):
        traits = model_traits(model)
        for name in ("forward_cached", "forward_partial"):
            if not callable(getattr(traits, name)):
                what = "feature reuse" if refresh is None else "cached decoding"
                raise ValueError(f"{what} needs a model with {name}() (e.g. mgm.models.MaskedTransformer)")
        self.traits, self.refresh = traits, refresh
        self.paired = guided and cond is not None
        self.cond = Condition.cat([cond, cond.null()]) if self.paired else cond
        self.compute, self.queries = 0.0, 0
        self.start()

    def start(self, candidates: torch.Tensor | None = None, masked_after: torch.Tensor | None = None) -> None:
        """A new loop: its first call is a full pass. Given the loop's ``candidates`` [B, K, N] and
        ``masked_after`` LongTensor[B, T] (at most that many candidates masked after step t), every
        partial pass's query count is fixed now (``query_counts``, one host read); without them
        each is read off the device at its step."""
        counts = None
        if self.refresh is not None and masked_after is not None:
            counts = query_counts(candidates, masked_after)
        self.cache, self.previous, self.counts = None, None, counts
        self.step, self.since_full = 0, 0

    def __call__(self, codes: torch.Tensor, candidates: torch.Tensor, scale: float) -> torch.Tensor:
        """A step's logits [B, K, N, V] (float32): a full pass, or with ``refresh`` between full
        ones a partial pass over the positions that held a candidate at the previous step's input."""
        if self.cache is None or self.refresh is None or self.since_full >= self.refresh:
            logits, self.cache = self.traits.forward_cached(self._pair(codes), self.cond)
            self.since_full, self.queries = 0, codes.shape[-1]
            self.compute += 1.0
            logits = self._guide(logits, scale)
        else:
            count = None if self.counts is None else self.counts[self.step]
            logits = self._partial(codes, query_positions(self.previous, count), scale, update=True)
        self._advance(candidates)
        return logits

    def cheap(self, codes: torch.Tensor, positions: torch.Tensor, candidates: torch.Tensor, scale: float):
        """ReCAP's cheap step: logits [B, K, N, V] at ``positions`` LongTensor[B, Q] (zero
        elsewhere) against the cache; with ``refresh`` their fresh keys/values enter the cache."""
        logits = self._partial(codes, positions, scale, update=self.refresh is not None)
        self._advance(candidates)
        return logits

    def _partial(self, codes: torch.Tensor, positions: torch.Tensor, scale: float, update: bool) -> torch.Tensor:
        b, k, n = codes.shape
        where = positions[:, None, :].expand(b, k, -1)
        args = (self._pair(codes.gather(2, where)), self._pair(positions), self.cond, self.cache)
        # ``update`` only when asked, so a model (or wrapper) of ReCAP's four-argument protocol still fits.
        logits = self.traits.forward_partial(*args, update=True) if update else self.traits.forward_partial(*args)
        self.queries = positions.shape[1]
        self.compute += self.queries / n
        return onto_grid(self._guide(logits, scale), where, n)

    def _advance(self, candidates: torch.Tensor) -> None:
        self.previous = candidates
        self.step += 1
        self.since_full += 1

    def _pair(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x]) if self.paired else x

    def _guide(self, logits: torch.Tensor, scale: float) -> torch.Tensor:
        logits = logits.float()  # full precision for guidance and sampling, as GuidedModel
        return guide(*logits.chunk(2), scale) if self.paired else logits


def onto_grid(logits: torch.Tensor, where: torch.Tensor, n: int) -> torch.Tensor:
    """Logits [B, K, Q, V] at grid positions ``where`` LongTensor[B, K, Q] -> [B, K, N, V], zero
    elsewhere, so that every sample draws the same noise as at a full step whatever Q is."""
    b, k, _, v = logits.shape
    return logits.new_zeros(b, k, n, v).scatter(2, where[..., None].expand(-1, -1, -1, v), logits)


def query_positions(tokens: torch.Tensor, q: int | None = None, bucket: bool = True) -> torch.Tensor:
    """Grid positions holding any of ``tokens`` BoolTensor[B, K, N], per sample, ascending, padded
    by repeating the first one -> LongTensor[B, Q]. ``q``: the most such positions of any sample
    when known (``query_counts``); None reads it off the device (rounded up to a bucket unless
    ``bucket`` is False)."""
    flags = tokens.any(1)  # (B, N)
    n = flags.shape[1]
    counts = flags.sum(1)
    if q is None:
        q = max(int(counts.max()), 1)
        step = math.ceil(n / BUCKETS) if bucket else 1
        q = min(n, step * math.ceil(q / step))
    order = (~flags).to(torch.uint8).argsort(dim=-1, stable=True)[:, :q]  # flagged positions first
    valid = torch.arange(q, device=tokens.device)[None] < counts[:, None]
    return torch.where(valid, order, order[:, :1])


def query_counts(candidates: torch.Tensor, masked_after: torch.Tensor) -> list[int]:
    """Per step t, the queries of cached decoding's partial pass: an upper bound on the positions
    holding a candidate at step t - 1's input (the first step's entry is N, a full pass).

    candidates BoolTensor[B, K, N]; masked_after LongTensor[B, T]: the candidate tokens left
    masked after each step. Where each position holds one candidate at most (one codebook, or a
    group of one), tokens are positions and the bound is exact; else it is min(N, the tokens).
    One host read, before the loop.
    """
    b, k, n = candidates.shape
    before = torch.cat([candidates.flatten(1).sum(1, keepdim=True), masked_after[:, :-1]], dim=1)  # (B, T)
    previous = torch.cat([before.new_full((b, 1), n), before[:, :-1]], dim=1)  # step t - 1's input
    return previous.amax(0).clamp(1, n).tolist()
