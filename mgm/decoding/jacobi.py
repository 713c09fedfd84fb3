"""Speculative Jacobi Decoding (Teng et al., "Accelerating Auto-regressive Text-to-Image
Generation with Training-free Speculative Jacobi Decoding"): lossless parallel sampling of an AR model.

A window of W draft tokens is refined in parallel. Each iteration is one forward over the pending
token and the window, on top of the committed prefix's KV cache. Walking the window in order,
the draft x at a position, drawn from q, is accepted with probability min(1, p(x) / q(x)), p
being the model's distribution there (after CFG, top-k / top-p and temperature); at the first
rejection a token is drawn from normalize(max(0, p - q)) and the walk stops. When every draft is
accepted, the token after the window is drawn from p as well. Both rules are speculative
sampling's, so the committed sequence is distributed exactly as ancestral sampling's. The
unused drafts after a rejection are redrawn from this iteration's p at their positions (the
Jacobi update) and the window is refilled by the ``init`` rule. Temperature 0 makes p a point
mass on the argmax: greedy Jacobi decoding, identical to greedy AR.

Draft initialisation (``init``): "random" (uniform tokens, q uniform), "prev" (drawn from the
last committed position's distribution, q that distribution), "above" (the token one grid row
above, ``row_length`` tokens back; q a point mass on it; uniform where there is no row above).

The whole batch advances together: every row moves by its own accepted length in one batched
forward per iteration. A model declaring ``row_cache`` (``ARTransformer``) keeps one KV cache
with per-row lengths (``KVCache.per_row``), and each iteration feeds W + 1 tokens per row; any
other causal AR callable is fed each row's whole sequence so far (committed tokens, then the
window, then filler the causal mask never lets earlier positions see) with no cache. Acceptance,
residual draws (Gumbel-max) and the window refill are tensor operations with fixed shapes, so the
loop reads nothing back to the host, except, with ``early_exit`` (the default), one flag per
iteration: whether any row is unfinished. Without it the loop runs its worst case, one iteration
per token. Finished rows ride along and commit nothing.

``nfe`` counts the iterations of the call, ``nfe_per_sample`` those each sample was unfinished
at, and the trace holds one ``JacobiRecord`` per iteration and unfinished sample. ``callback``
sees codes [B, 1, length] after each iteration, -1 where a row has not committed a token yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int
from mgm.decoding.ar import prepare_ar
from mgm.decoding.registry import AR, Method, register
from mgm.decoding.result import DecodeResult, JacobiRecord
from mgm.decoding.sampling import Generators, draw, token_distribution, uniform
from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition
from mgm.models.protocols import model_traits

INITS = ("random", "prev", "above")


@dataclass(frozen=True)
class SJDOptions:
    """SJD's own knobs: the draft ``window`` length, the draft ``init`` rule, the grid's
    ``row_length`` (tokens per row) that init "above" reads, and ``early_exit`` (stop once every
    row is done: one host read per iteration)."""

    window: int = 16
    init: str = "random"
    row_length: int | None = None
    early_exit: bool = True

    HELP: ClassVar[dict] = {
        "window": "draft tokens refined per pass",
        "init": "draft initialisation: random, prev, above",
        "row_length": "tokens per grid row (init above; pipelines set it)",
        "early_exit": "stop once every sample is done (a host sync per step)",
    }

    def __post_init__(self):
        check_int(self.window, "window")
        if self.init not in INITS:
            raise ValueError(f"init={self.init!r}: expected one of {INITS}")
        if self.row_length is not None:
            check_int(self.row_length, "row_length")
        if not isinstance(self.early_exit, bool):
            raise ValueError(f"early_exit={self.early_exit!r}: expected True or False")


@torch.inference_mode()
def sjd_decode(
    model,
    length: int,
    *,
    batch_size: int | None = None,
    cond: Condition | None = None,
    generator: Generators = None,
    prefix: torch.Tensor | None = None,
    **options,
) -> DecodeResult:
    """Sample ``codes[B, 1, length]`` from ``model(tokens, cond, cache=...)`` by SJD (see the module doc).

    Arguments as ``ar_decode``'s; ``options`` add ``SJDOptions`` (window, init, row_length, early_exit).
    """
    run, own = prepare_ar(
        model, length, SJD, options, batch_size=batch_size, cond=cond, generator=generator, prefix=prefix
    )
    if own.init == "above" and own.row_length is None:
        raise ValueError("row_length=None: init='above' needs the grid's row length (tokens per row)")
    if run.vocab_size is None:
        raise ValueError("sjd_decode needs model.vocab_size (the token vocabulary V)")
    return _BatchedSJD(run, own, bool(model_traits(model).row_cache)).decode()


class _BatchedSJD:
    """The state of one batched SJD call.

    tokens LongTensor[B, length + W + 1]: committed tokens first (the slack takes the writes of
    finished rows); count LongTensor[B]: tokens committed per row; drafts LongTensor[B, W] and qs
    [B, W, V]: the window and the distributions it was drawn from; last_p [B, V]: the
    distribution at each row's newest committed token ("prev" drafts).
    """

    def __init__(self, run, own: SJDOptions, cached: bool):
        self.run, self.own, self.cached = run, own, cached
        self.b, self.length, self.vocab, self.device = run.batch_size, run.length, run.vocab_size, run.device
        given = 0 if run.prefix is None else run.prefix.shape[1]
        self.given = given
        self.window = max(1, min(own.window, run.length - given))
        self.guided = run.guided()
        self.rows = torch.arange(self.b, device=self.device)
        s = run.sampling
        # Guidance scale per position (annealed over the sequence); one more for positions past the end.
        self.scale_table = torch.tensor(
            [run.guidance_scale(min(i, run.length - 1)) for i in range(run.length + self.window + 2)],
            device=self.device,
        )
        self.annealed = s.guidance_annealing != "constant"

    # -- draws (each row from its own generator when there is one per sample)

    def _draw(self, probs: torch.Tensor) -> torch.Tensor:
        return draw(probs, self.run.generator)

    def _uniform_q(self, *shape) -> torch.Tensor:
        return torch.full((*shape, self.vocab), 1.0 / self.vocab, dtype=torch.float64, device=self.device)

    # -- the model

    def _scales(self, start: torch.Tensor, rows: int):
        """Guidance scales of ``rows`` logits rows per sample whose first is at ``start`` [B]."""
        if not self.annealed:
            return self.run.sampling.guidance_scale
        index = (start[:, None] + torch.arange(rows, device=self.device)).clamp(0, len(self.scale_table) - 1)
        return self.scale_table[index][..., None]  # (B, rows, 1)

    def _distributions(self, logits: torch.Tensor) -> torch.Tensor:
        s = self.run.sampling
        return token_distribution(logits, s.temperature, s.top_k, s.top_p)

    def _first_pass(self, drafts: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        """The given prefix and the first window in one call -> ps [B, W + 1, V] (at the drafts'
        positions and the one after the window)."""
        if not self.cached:
            return self._uncached_pass(drafts)
        given = self.run.prefix if self.run.prefix is not None else drafts[:, :0]
        fed = torch.cat([given, drafts], 1)
        logits = self.guided(fed, cache, self._scales(torch.zeros_like(self.rows), fed.shape[1] + 1))
        cache.per_row(self.length + self.window + 1)
        return self._distributions(logits[:, self.given :])

    def _cached_pass(self, drafts: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Pending token (the newest committed, not yet cached) and window -> ps [B, W + 1, V]."""
        pending = self.tokens.gather(1, (self.count - 1)[:, None])
        lengths = self.count - 1
        cache.lengths = torch.cat([lengths, lengths]) if self.guided.paired else lengths
        logits = self.guided(torch.cat([pending, drafts], 1), cache, self._scales(lengths, self.window + 2))
        return self._distributions(logits[:, 1:])

    def _uncached_pass(self, drafts: torch.Tensor) -> torch.Tensor:
        """Each row's committed tokens with its window written after them, no cache -> ps [B, W + 1, V]."""
        where = self.count[:, None] + torch.arange(self.window, device=self.device)
        fed = self.tokens.scatter(1, where, drafts)[:, : self.length].clamp_min(0)
        logits = self.guided(fed, None, self._scales(torch.zeros_like(self.rows), self.length + 1))
        at = (self.count[:, None] + torch.arange(self.window + 1, device=self.device)).clamp_max(self.length)
        return self._distributions(logits.gather(1, at[..., None].expand(-1, -1, logits.shape[-1])))

    # -- the window

    def _refill(self, keep: torch.Tensor, kept: torch.Tensor, kept_q: torch.Tensor):
        """The next window: the first ``keep[r]`` entries of ``kept`` / ``kept_q`` [B, W(, V)] (the
        Jacobi-updated drafts), the rest by the init rule -> (drafts [B, W], qs [B, W, V])."""
        w, init = self.window, self.own.init
        slot = torch.arange(w, device=self.device)[None].expand(self.b, w)
        fresh = slot >= keep[:, None]  # (B, W)
        if init == "prev":
            q = self.last_p[:, None].expand(-1, w, -1)
            new = self._draw(q)
        else:
            q = self._uniform_q(self.b, w)
            new = self._draw(q)
        drafts = torch.where(fresh, new, kept)
        qs = torch.where(fresh[..., None], q, kept_q)
        if init == "above":
            # Slot i sits at position count + i; the token a row above is committed or an earlier slot.
            row = self.own.row_length
            for i in range(w):
                position = self.count + i
                source = position - row
                from_tokens = self.tokens.gather(1, source.clamp_min(0)[:, None])[:, 0]
                from_window = drafts[:, (i - row) % w] if i >= row else from_tokens
                above = torch.where(source >= self.count, from_window, from_tokens).clamp_min(0)
                use = fresh[:, i] & (source >= 0)
                drafts[:, i] = torch.where(use, above, drafts[:, i])
                point = torch.nn.functional.one_hot(above, self.vocab).double()
                qs[:, i] = torch.where(use[:, None], point, qs[:, i])
        return drafts, qs

    def _verify(self, drafts: torch.Tensor, qs: torch.Tensor, ps: torch.Tensor):
        """One iteration's acceptance for every row -> (accepted [B], new token [B], has_new [B])."""
        w = self.window
        room = (self.length - self.count).clamp(0, w)  # (B,) drafts that lie inside the sequence
        p_x = ps[:, :w].gather(2, drafts[..., None])[..., 0]
        q_x = qs.gather(2, drafts[..., None])[..., 0]
        u = uniform((self.b, w), self.run.generator, self.device).double()
        ok = (u * q_x < p_x) & (torch.arange(w, device=self.device)[None] < room[:, None])
        accepted = ok.long().cumprod(1).sum(1)  # (B,) leading accepted drafts
        at = accepted.clamp_max(w)
        p_at = ps[self.rows, at]  # (B, V)
        q_at = qs[self.rows, accepted.clamp_max(w - 1)]
        residual = (p_at - q_at).clamp_min(0)
        residual = torch.where(residual.sum(-1, keepdim=True) > 0, residual, p_at)
        rejected = accepted < room
        new = self._draw(torch.where(rejected[:, None], residual, p_at))
        has_new = self.count + accepted < self.length
        return accepted, new, has_new

    def decode(self) -> DecodeResult:
        run, w, b = self.run, self.window, self.b
        self.tokens = torch.full((b, self.length + w + 1), -1, dtype=torch.long, device=self.device)
        if run.prefix is not None:
            self.tokens[:, : self.given] = run.prefix
        self.count = torch.full((b,), self.given, dtype=torch.long, device=self.device)
        self.last_p = self._uniform_q(b)
        cache = KVCache() if self.cached else None
        drafts, qs = self._refill(torch.zeros_like(self.count), *self._empty_window())
        committed, passes = [], torch.zeros(b, dtype=torch.long, device=self.device)
        for step in range(self.length - self.given):
            active = self.count < self.length
            if step == 0:
                ps = self._first_pass(drafts, cache)
            elif self.cached:
                ps = self._cached_pass(drafts, cache)
            else:
                ps = self._uncached_pass(drafts)
            accepted, new, has_new = self._verify(drafts, qs, ps)
            # Commit the accepted drafts and the drawn token (finished rows write into the slack).
            slots = torch.arange(w + 1, device=self.device)[None]
            values = torch.cat([drafts, drafts[:, :1]], 1)
            values = torch.where(slots == accepted[:, None], new[:, None], values)
            write = (slots < accepted[:, None]) | ((slots == accepted[:, None]) & has_new[:, None])
            where = self.count[:, None] + slots
            self.tokens = self.tokens.scatter(1, where, torch.where(write, values, self.tokens.gather(1, where)))
            gained = accepted + has_new.long()
            self.count = self.count + gained
            self.last_p = ps[self.rows, accepted.clamp_max(w)]
            committed.append(torch.where(active, gained, 0))
            passes = passes + active.long()
            if run.run.callback is not None:
                run.run.callback(step, self.tokens[:, None, : self.length])
            # Jacobi update: the drafts after the rejected one, redrawn from this pass's p.
            shift = (accepted + 1)[:, None] + torch.arange(w, device=self.device)[None]  # (B, W) source slots
            source = shift.clamp_max(w - 1)
            kept_q = ps[self.rows[:, None], source]
            kept = self._draw(kept_q)
            drafts, qs = self._refill((w - 1 - accepted).clamp_min(0), kept, kept_q)
            if self.own.early_exit and not bool((self.count < self.length).any()):
                break
        return self._result(committed, passes)

    def _empty_window(self):
        return (torch.zeros(self.b, self.window, dtype=torch.long, device=self.device),
                self._uniform_q(self.b, self.window))  # fmt: skip

    def _result(self, committed: list[torch.Tensor], passes: torch.Tensor) -> DecodeResult:
        counts = torch.stack(committed).cpu().tolist()  # (iterations, B), read once after the loop
        trace = [JacobiRecord(step, i, n) for step, row in enumerate(counts) for i, n in enumerate(row) if n > 0]
        codes = self.tokens[:, None, : self.length]
        return DecodeResult(codes=codes, nfe=len(counts), trace=trace, nfe_per_sample=passes.cpu())


SJD = register(Method("sjd", sjd_decode, SJDOptions, AR, "Speculative Jacobi Decoding (lossless parallel AR)"))
