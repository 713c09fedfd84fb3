"""Verified parallel decoding: lossless against one-token-per-step decoding in a fixed order.

The reference sampler decodes one token per model pass in a content-independent ``order``
(``mgm.schedules.orders``): each token is drawn from the model's conditional given every token
decoded before it (under the call's temperature, top-k, top-p and guidance). ``verified_decode``
draws from exactly that distribution in fewer sequential passes, by speculative sampling as SJD
does for AR models:

1. draft the next ``draft`` tokens of the order, each from a proposal q: the model's marginals at
   the last verified state (all drafts at once, independently);
2. one batched forward over the ``draft + 1`` states "prefix + the first i drafts" gives p_i, the
   exact conditional of the i-th draft's position;
3. accept draft i with probability min(1, p_i / q_i) while all before it were accepted; the first
   rejected one is redrawn from normalise(max(0, p_i - q_i)); if all are accepted, the token after
   them is drawn from p exactly (the last state saw every draft).

Each iteration commits at least one token, so there are at most N + 1 passes and fewer when the
marginals already predict the conditionals well. The next proposal is the forward output of the
last accepted state, which costs nothing more. Any proposal keeps the output exact; a better one
only accepts more. ``nfe`` counts sequential passes (one per iteration, plus the first); each pass
runs ``(draft + 1) x batch`` rows. The loop checks once per iteration whether any sample still has
tokens to decode (one host sync per pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int
from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.guidance import GuidedModel
from mgm.decoding.maskgit import check_logits, position_priority
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult, StepRecord
from mgm.decoding.sampling import Generators, draw, token_distribution, uniform
from mgm.decoding.trajectory import trajectory_decode
from mgm.models.conditioning import Condition
from mgm.schedules import get_mask_schedule
from mgm.schedules.mask import MaskSchedule
from mgm.schedules.orders import check_order
from mgm.tokens import TokenSpec

TARGETS = ("sequential", "maskgit")


@dataclass(frozen=True)
class VerifiedOptions:
    """target: "sequential" (the distribution of one-token-per-step decoding in ``order``) or
    "maskgit" (``maskgit_decode``'s own codes with ``num_steps``, ``schedule`` and ``order``:
    ``mgm.decoding.trajectory``). order: None = "halton" for "sequential" (which needs a
    content-independent order), "confidence" for "maskgit". draft: tokens (sequential) or
    steps (maskgit) drafted per pass."""

    target: str = "sequential"
    order: str | torch.Tensor | None = None
    draft: int = 8
    num_steps: int = 12
    schedule: str | MaskSchedule = "cosine"

    HELP: ClassVar[dict] = {
        "target": "what verified decoding reproduces: sequential (its distribution) or maskgit (its codes)",
        "draft": "tokens (sequential) or steps (maskgit) drafted and verified per pass (verified)",
    }

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target={self.target!r}: expected one of {list(TARGETS)}")
        if self.order is not None:
            check_order(self.order)
        if self.target == "sequential" and isinstance(self.order, str) and self.order == "confidence":
            raise ValueError("order='confidence': verified decoding needs a content-independent order "
                             "(halton, locality, random or a permutation)")  # fmt: skip
        check_int(self.draft, "draft")
        check_int(self.num_steps, "num_steps")
        get_mask_schedule(self.schedule)

    @property
    def resolved_order(self) -> str | torch.Tensor:
        if self.order is not None:
            return self.order
        return "halton" if self.target == "sequential" else "confidence"


def speculative_accept(
    p: torch.Tensor, q: torch.Tensor, drafts: torch.Tensor, valid: torch.Tensor, generator: Generators
) -> tuple[torch.Tensor, torch.Tensor]:
    """Speculative sampling over a window of drafts, batched.

    p, q: FloatTensor[B, L, V] (the target conditionals and the proposals the drafts came from),
    drafts LongTensor[B, L], valid BoolTensor[B, L] (a prefix of each row). Returns (accepted
    LongTensor[B]: the leading drafts kept, residual LongTensor[B]: a token from
    normalise(max(0, p - q)) at the first rejected draft; meaningless where none was rejected).
    """
    ratio = p.gather(-1, drafts[..., None])[..., 0] / q.gather(-1, drafts[..., None])[..., 0]
    ok = (uniform(tuple(drafts.shape), generator, drafts.device) < ratio) & valid
    accepted = ok.long().cumprod(-1).sum(-1)
    at = accepted.clamp_max(drafts.shape[1] - 1)[:, None, None].expand(-1, 1, p.shape[-1])
    residual = (p.gather(1, at) - q.gather(1, at))[:, 0].clamp_min(0)
    empty = residual.sum(-1, keepdim=True) <= 0  # p == q there: never rejected, any token will do
    residual = torch.where(empty, p.gather(1, at)[:, 0], residual)
    return accepted, draw(residual / residual.sum(-1, keepdim=True), generator)


def reveal_order(priority: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(slots LongTensor[B, M]: each sample's token slots (flat K*N) in decoding order, its
    candidates first; counts LongTensor[B]: how many candidates)."""
    flat = priority.flatten(1).masked_fill(~candidates.flatten(1), float("-inf"))
    return flat.argsort(dim=-1, descending=True, stable=True), candidates.flatten(1).sum(1)


class Verifier:
    """One decode's state: the canvas, each sample's place in its order, the proposals."""

    def __init__(self, run: MaskedRun, guided: GuidedModel, draft: int, slots: torch.Tensor, counts: torch.Tensor):
        self.run, self.guided, self.draft = run, guided, draft
        self.slots, self.counts = slots, counts
        self.done = torch.zeros_like(counts)
        b, k, n = run.codes.shape
        self.codes = run.codes.flatten(1).clone()  # (B, M)
        self.shape, self.vocab = (b, k, n), run.spec.vocab_size
        rows = torch.arange(b, device=run.device).repeat_interleave(draft + 1)
        self.many = GuidedModel(run.model, None if run.cond is None else run.cond.select(rows))
        self.scale = run.sampling.guidance_scale

    def distribution(self, logits: torch.Tensor) -> torch.Tensor:
        s = self.run.sampling
        return token_distribution(logits, s.temperature, s.top_k, s.top_p).flatten(-3, -2)  # (..., M, V)

    def first_proposal(self) -> torch.Tensor:
        logits = self.guided(self.codes.view(self.shape), self.scale)
        check_logits(logits, self.codes.view(self.shape), self.run.spec)
        return self.distribution(logits)  # (B, M, V)

    def iterate(self, proposal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass: draft, verify, commit -> (the next proposal [B, M, V], tokens committed [B])."""
        b, m, length = self.codes.shape[0], self.codes.shape[1], self.draft
        window = self.done[:, None] + torch.arange(length + 1, device=self.codes.device)  # (B, L + 1)
        valid = window < self.counts[:, None]
        slot = self.slots.gather(1, window.clamp_max(m - 1))
        v = proposal.shape[-1]
        q = proposal.gather(1, slot[:, :length, None].expand(-1, -1, v))  # (B, L, V)
        drafts = draw(q, self.run.generator)
        # State i holds drafts 0..i-1 (the valid ones): (B, L + 1, M)
        states = self.codes[:, None, :].repeat(1, length + 1, 1)
        for t in range(length):
            placed = valid[:, t, None] & (torch.arange(length + 1, device=states.device)[None, :] > t)
            current = states.gather(2, slot[:, None, t, None].expand(-1, length + 1, 1))[..., 0]
            states.scatter_(2, slot[:, None, t, None].expand(-1, length + 1, 1),
                            torch.where(placed, drafts[:, t, None], current)[..., None])  # fmt: skip
        logits = self.many(states.view(b * (length + 1), *self.shape[1:]), self.scale)
        dist = self.distribution(logits).view(b, length + 1, m, -1)  # (B, L + 1, M, V)
        p = dist.gather(2, slot[:, :, None, None].expand(-1, -1, 1, v))[:, :, 0]  # (B, L + 1, V): at each slot
        accepted, residual = speculative_accept(p[:, :length], q, drafts, valid[:, :length], self.run.generator)
        bonus = draw(p[:, length], self.run.generator)  # the token after a fully accepted window
        full = accepted == length
        extra = torch.where(full, bonus, residual)
        has_extra = torch.where(full, valid[:, length], accepted < valid[:, :length].sum(-1))
        keep = (torch.arange(length, device=slot.device)[None, :] < accepted[:, None]) & valid[:, :length]
        for t in range(length):  # one slot at a time: past the end of an order, slots repeat
            at = slot[:, t, None]
            self.codes.scatter_(1, at, torch.where(keep[:, t, None], drafts[:, t, None], self.codes.gather(1, at)))
        at = slot.gather(1, accepted[:, None])
        self.codes.scatter_(1, at, torch.where(has_extra[:, None], extra[:, None], self.codes.gather(1, at)))
        committed = accepted + has_extra.long()
        self.done = self.done + committed
        return dist[torch.arange(b, device=dist.device), accepted], committed


@torch.inference_mode()
def verified_decode(
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
    """Lossless parallel decoding; arguments as ``maskgit_decode``, options ``VerifiedOptions``
    with the sampling and run options (guidance at a constant scale). See the module doc."""
    run, own = prepare_masked(
        model, spec, VERIFIED, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    if own.target == "sequential" and run.sampling.guidance_annealing != "constant" and run.sampling.guidance_scale > 0:
        raise ValueError(
            f"guidance_annealing={run.sampling.guidance_annealing!r}: verified decoding keeps one guidance scale "
            "(the reference sampler's); use 'constant'"
        )
    if own.target == "maskgit":
        return trajectory_decode(run, own.num_steps, own.schedule, position_priority(run, own.resolved_order),
                                 own.draft)  # fmt: skip
    candidates = spec.is_masked(run.codes)
    slots, counts = reveal_order(position_priority(run, own.resolved_order), candidates)
    verifier = Verifier(run, GuidedModel(run.model, run.cond), own.draft, slots, counts)
    trace, passes = [], 1
    with run.autocast():
        proposal = verifier.first_proposal()
        per_sample = torch.ones_like(counts)
        while bool((verifier.done < counts).any()):  # one host sync per pass
            active = verifier.done < counts
            proposal, committed = verifier.iterate(proposal)
            per_sample += active.long()
            trace.append(StepRecord(passes - 1, committed, torch.zeros(len(committed), device=run.device),
                                    run.sampling.guidance_scale, 0.0, queries=None))  # fmt: skip
            run.step_done(passes - 1, verifier.codes.view(verifier.shape))
            passes += 1
    # Compute in full passes per sample: the first forward, then draft + 1 states per verifying pass.
    compute = 1.0 + (passes - 1) * (own.draft + 1)
    return DecodeResult(
        codes=verifier.codes.view(verifier.shape), nfe=passes, trace=trace, compute=compute, nfe_per_sample=per_sample
    )


VERIFIED = register(
    Method("verified", verified_decode, VerifiedOptions, MASKED, "lossless parallel decoding by speculative sampling")
)
