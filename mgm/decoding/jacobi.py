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

Samples are decoded one at a time (their acceptances differ); ``nfe`` is the largest per-sample
count of forward passes and the trace holds each sample's passes and accepted counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mgm.decoding.ar import GuidedAR, check_ar_args
from mgm.decoding.canvas import check_positive_int, resolve_device
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import token_distribution
from mgm.models.ar_transformer import ARCache
from mgm.models.conditioning import Condition

INITS = ("random", "prev", "above")


@dataclass
class SJDRecord:
    """One sample: forward passes and tokens committed per iteration (sum = generated tokens)."""

    sample: int
    nfe: int
    committed: list[int] = field(default_factory=list)


@torch.inference_mode()
def sjd_decode(
    model,
    length: int,
    batch_size: int | None = 4,
    window: int = 16,
    init: str = "random",
    cond: Condition | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    guidance_scale: float = 0.0,
    generator: torch.Generator | None = None,
    *,
    prefix: torch.Tensor | None = None,
    row_length: int | None = None,
    device: torch.device | str | None = None,
) -> DecodeResult:
    """Sample ``codes[B, length]`` from ``model(tokens, cond, cache=...)`` by SJD (see the module doc)."""
    batch_size, prefix = check_ar_args(
        model, length, batch_size, cond, temperature, top_k, top_p, guidance_scale, prefix
    )
    check_positive_int(window, "window")
    if init not in INITS:
        raise ValueError(f"init={init!r}: expected one of {INITS}")
    if init == "above":
        check_positive_int(row_length, "row_length (init='above' needs the grid's row length)")
    vocab = getattr(model, "vocab_size", None)
    if vocab is None:
        raise ValueError("sjd_decode needs model.vocab_size (the token vocabulary V)")
    device = resolve_device(model, prefix, device)
    rows, trace = [], []
    for i in range(batch_size):
        guided = GuidedAR(model, None if cond is None else cond.select(i).to(device), guidance_scale)
        given = torch.zeros(0, dtype=torch.long, device=device) if prefix is None else prefix[i].to(device)
        sampler = _Sampler(guided, vocab, temperature, top_k, top_p, generator, device)
        tokens, record = sampler.run(given, length, window, init, row_length)
        record.sample = i
        rows.append(tokens)
        trace.append(record)
    return DecodeResult(codes=torch.stack(rows), nfe=max(r.nfe for r in trace), trace=trace)


class _Sampler:
    def __init__(self, guided, vocab, temperature, top_k, top_p, generator, device):
        self.guided, self.vocab, self.device, self.generator = guided, vocab, device, generator
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def distribution(self, logits: torch.Tensor) -> torch.Tensor:
        return token_distribution(logits, self.temperature, self.top_k, self.top_p)

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

    def run(self, given: torch.Tensor, length: int, window: int, init: str, row_length):
        tokens = given.tolist()
        record = SJDRecord(sample=0, nfe=0)
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
            logits = self.guided(torch.tensor([pending + drafts], device=self.device), cache)[0]
            record.nfe += 1
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
            record.committed.append(len(tokens) - start)
            # Jacobi update: the drafts after the rejected one are redrawn from this pass's distributions.
            rest = range(accepted + 1, room)
            drafts, qs = [self.draw(ps[j]) for j in rest], [ps[j] for j in rest]
        return torch.tensor(tokens[:length], device=self.device), record
