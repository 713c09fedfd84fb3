"""Speculative Jacobi Decoding (Teng et al., "Accelerating Auto-regressive Text-to-Image
Generation with Training-free Speculative Jacobi Decoding"): lossless parallel sampling of an AR model.

A window of draft tokens is refined in parallel. Each iteration is one forward over the pending
token (if any) and the window, on top of the committed prefix's KV cache. Walking the window in
order, the draft x at a position, drawn from q, is accepted with probability min(1, p(x) / q(x)),
p being the model's distribution there (after CFG, top-k / top-p and temperature); at the first
rejection a token is drawn from normalize(max(0, p - q)) and the walk stops. When every draft is
accepted, the token after the window is drawn from p as well. Both rules are speculative
sampling's, so the committed sequence is distributed exactly as ancestral sampling's. The
unused drafts after a rejection are redrawn from this iteration's p at their positions (the
Jacobi update) and the window is refilled by the ``init`` rule. Temperature 0 makes p a point
mass on the argmax: greedy Jacobi decoding, identical to greedy AR.

Draft initialisation (``init``): "random" (uniform tokens, q uniform), "prev" (drawn from the
last committed position's distribution, q that distribution), "above" (the token one grid row
above, ``row_length`` tokens back; q a point mass on it; uniform where there is no row above).

Samples are decoded one at a time (their acceptances differ): ``nfe`` counts every pass of the
call, ``nfe_per_sample`` each sample's, and the trace holds one ``JacobiRecord`` per iteration
and sample (the tokens it committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int
from mgm.decoding.ar import prepare_ar
from mgm.decoding.registry import AR, Method, register
from mgm.decoding.result import DecodeResult, JacobiRecord
from mgm.decoding.sampling import Generators, select_generator, token_distribution
from mgm.models.ar_transformer import ARCache
from mgm.models.conditioning import Condition

INITS = ("random", "prev", "above")


@dataclass(frozen=True)
class SJDOptions:
    """SJD's own knobs: the draft ``window`` length, the draft ``init`` rule, and the grid's
    ``row_length`` (tokens per row) that init "above" reads."""

    window: int = 16
    init: str = "random"
    row_length: int | None = None

    HELP: ClassVar[dict] = {
        "window": "draft tokens refined per pass",
        "init": "draft initialisation: random, prev, above",
        "row_length": "tokens per grid row (init above; pipelines set it)",
    }

    def __post_init__(self):
        check_int(self.window, "window")
        if self.init not in INITS:
            raise ValueError(f"init={self.init!r}: expected one of {INITS}")
        if self.row_length is not None:
            check_int(self.row_length, "row_length")


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

    Arguments as ``ar_decode``'s; ``options`` add ``SJDOptions`` (window, init, row_length).
    """
    run, own = prepare_ar(
        model, length, SJD, options, batch_size=batch_size, cond=cond, generator=generator, prefix=prefix
    )
    if own.init == "above" and own.row_length is None:
        raise ValueError("row_length=None: init='above' needs the grid's row length (tokens per row)")
    if run.vocab_size is None:
        raise ValueError("sjd_decode needs model.vocab_size (the token vocabulary V)")
    rows, trace, passes = [], [], []
    for i in range(run.batch_size):
        guided = run.guided(None if run.cond is None else run.cond.select(i))
        given = torch.zeros(0, dtype=torch.long, device=run.device) if run.prefix is None else run.prefix[i]
        sampler = _Sampler(run, guided, select_generator(run.generator, i), i)
        tokens, committed = sampler.decode(given, length, own.window, own.init, own.row_length)
        trace += [JacobiRecord(step, i, count) for step, count in enumerate(committed)]
        rows.append(tokens)
        passes.append(len(committed))
    per_sample = torch.tensor(passes, dtype=torch.long)
    return DecodeResult(codes=torch.stack(rows)[:, None], nfe=sum(passes), trace=trace, nfe_per_sample=per_sample)


class _Sampler:
    """One sample's SJD loop (``generator``: that sample's, or the call's single generator)."""

    def __init__(self, run, guided, generator, sample: int):
        self.run, self.guided, self.generator, self.sample = run, guided, generator, sample
        self.vocab, self.device = run.vocab_size, run.device

    def distribution(self, logits: torch.Tensor) -> torch.Tensor:
        s = self.run.sampling
        return token_distribution(logits, s.temperature, s.top_k, s.top_p)

    def scales(self, first: int, rows: int) -> torch.Tensor | float:
        """Guidance scales of ``rows`` logits rows whose first predicts position ``first``: one
        number when constant, else FloatTensor[rows, 1] (annealed over the sequence)."""
        s = self.run.sampling
        if s.guidance_annealing == "constant":
            return s.guidance_scale
        last = self.run.length - 1
        values = [self.run.guidance_scale(min(first + r, last)) for r in range(rows)]
        return torch.tensor(values, device=self.device)[:, None]

    def draw(self, probs: torch.Tensor) -> int:
        return int(torch.multinomial(probs.float(), 1, generator=self.generator))

    def uniform(self) -> torch.Tensor:
        return torch.full((self.vocab,), 1.0 / self.vocab, dtype=torch.float64, device=self.device)

    def draft(self, init: str, tokens: list[int], drafts: list[int], last_p: torch.Tensor, row_length):
        """A new draft at position len(tokens) + len(drafts) -> (token, q)."""
        if init == "prev":
            return self.draw(last_p), last_p
        if init == "above":
            position = len(tokens) + len(drafts)
            if position >= row_length:
                above = (tokens + drafts)[position - row_length]
                q = torch.zeros(self.vocab, dtype=torch.float64, device=self.device)
                q[above] = 1.0
                return above, q
        q = self.uniform()
        return self.draw(q), q

    def decode(self, given: torch.Tensor, length: int, window: int, init: str, row_length):
        tokens = given.tolist()
        committed = []  # tokens committed per iteration (one forward pass each)
        cache = ARCache()
        pending = list(tokens)  # committed but not yet in the cache (the prefix, then each drawn token)
        drafts, qs = [], []  # the window: draft tokens and the distributions they were drawn from
        last_p = self.uniform()  # "prev" drafts before any pass: uniform
        while len(tokens) < length:
            start = len(tokens)
            room = min(window, length - len(tokens))
            while len(drafts) < room:
                token, q = self.draft(init, tokens, drafts, last_p, row_length)
                drafts.append(token)
                qs.append(q)
            drafts, qs = drafts[:room], qs[:room]
            fed = torch.tensor([pending + drafts], device=self.device)
            logits = self.guided(fed, cache, self.scales(len(tokens) - len(pending), fed.shape[1] + 1))[0]
            ps = self.distribution(logits[len(pending) :])  # ps[j]: at draft j; ps[room]: after the window
            accepted, new_token = 0, None
            for j in range(room):
                x, p, q = drafts[j], ps[j], qs[j]
                ratio = float(p[x] / q[x])
                if ratio >= 1 or float(torch.rand((), generator=self.generator, device=self.device)) < ratio:
                    accepted += 1
                    continue
                residual = (p - q).clamp_min(0)
                new_token = self.draw(residual / residual.sum())
                break
            # The cache holds the pending tokens and every draft; keep the accepted drafts only.
            cache.truncate(len(tokens) + accepted)
            tokens += drafts[:accepted]
            last_p = ps[accepted]
            if new_token is None and len(tokens) < length:  # all accepted: the token after the window
                new_token = self.draw(ps[room])
            pending = [] if new_token is None else [new_token]
            tokens += pending
            committed.append(len(tokens) - start)
            if self.run.run.callback is not None:
                self.run.run.callback(len(committed) - 1, torch.tensor([tokens], device=self.device)[:, None])
            # Jacobi update: the drafts after the rejected one are redrawn from this pass's distributions.
            rest = range(accepted + 1, room)
            drafts, qs = [self.draw(ps[j]) for j in rest], [ps[j] for j in rest]
        return torch.tensor(tokens[:length], device=self.device), committed


SJD = register(Method("sjd", sjd_decode, SJDOptions, AR, "Speculative Jacobi Decoding (lossless parallel AR)"))
