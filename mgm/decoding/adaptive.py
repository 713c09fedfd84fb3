"""Adaptive masked decoding: each step commits as many tokens as the model is sure of.

MaskGIT reveals a fixed count per step whatever the model's confidence. Here the count follows
the confidences of the step's sampled tokens, per sample, so easy samples finish in fewer steps:

- ``threshold_decode`` (Fast-dLLM's threshold rule): commit every masked token whose
  probability is at least ``tau``; the "factor" rule commits the largest n whose n-th highest
  probability is at least 1 - factor / (n + 1). At most ``max_per_step`` a step, but never fewer
  than the mask schedule over ``max_steps`` asks (MaskGIT's counts, at least one), so a sample
  the model is unsure of decodes as MaskGIT with ``max_steps`` steps and a sure one finishes sooner.
- ``credit_decode`` (CreditDecoding): each position keeps a credit for its recurring top-1 token
  (decayed by ``credit_decay`` every step, reset when the top-1 changes), fused into the logits
  as ``credit_strength * log(1 + credit)`` before sampling and thresholding, so a token the model
  keeps proposing is committed sooner.

Shapes stay static: every step runs the whole batch, and a finished sample (nothing masked) just
commits nothing. With ``early_exit`` (default) the loop stops once every sample is done, which
costs one host sync per step (``bool(masked.any())``); without it the loop runs ``max_steps``
passes and never syncs. ``nfe`` is the passes run; ``nfe_per_sample`` the steps each sample still
had masked tokens at. Probabilities are those of the distribution each token was drawn from
(temperature, top-k, top-p). The rule's tokens are a step's most probable ones; where the
schedule's floor asks for more, the rest are chosen as MaskGIT chooses (probability plus
``choice_temperature`` times Gumbel noise, annealed over ``max_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int, check_number
from mgm.decoding.cached import CacheOptions, passes_for
from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.maskgit import check_logits, sample_and_score, step_record
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators, token_distribution
from mgm.models.conditioning import Condition
from mgm.schedules import get_mask_schedule, masked_counts, ranks
from mgm.schedules.mask import MaskSchedule
from mgm.tokens import TokenSpec

RULES = ("threshold", "factor")


@dataclass(frozen=True)
class ThresholdOptions(CacheOptions):
    """tau: the probability a token needs to be committed ("threshold" rule).
    rule: "threshold" or "factor" (Fast-dLLM's; uses ``factor``).
    factor: f of the factor rule, > 0.
    max_per_step: at most this many tokens per sample and step (None: no cap), unless the
        schedule's floor asks for more.
    max_steps: the step cap. schedule: the mask schedule over max_steps that is the floor: after
        step t no more tokens stay masked than MaskGIT with max_steps steps would leave.
    early_exit: stop when every sample is done (one host sync per step).
    cached / refresh: cached decoding (``mgm.decoding.cached``); with early_exit each partial
    pass's size is read per step (rounded up to a bucket), without it the schedule's floor
    bounds it before the loop."""

    tau: float = 0.9
    rule: str = "threshold"
    factor: float = 1.0
    max_per_step: int | None = None
    max_steps: int = 16
    schedule: str | MaskSchedule = "cosine"
    early_exit: bool = True

    HELP: ClassVar[dict] = {
        **CacheOptions.HELP,
        "tau": "commit tokens whose probability is at least this (threshold, credit)",
        "rule": "threshold or factor (Fast-dLLM's rules)",
        "factor": "f of the factor rule",
        "max_per_step": "at most this many tokens per sample and step",
        "max_steps": "step cap (the schedule over it is the floor of each step's count)",
        "early_exit": "stop once every sample is done (a host sync per step)",
    }

    def __post_init__(self):
        super().__post_init__()
        check_number(self.tau, "tau", above=0, maximum=1)
        if self.rule not in RULES:
            raise ValueError(f"rule={self.rule!r}: expected one of {list(RULES)}")
        check_number(self.factor, "factor", above=0)
        if self.max_per_step is not None:
            check_int(self.max_per_step, "max_per_step")
        check_int(self.max_steps, "max_steps")
        get_mask_schedule(self.schedule)
        if not isinstance(self.early_exit, bool):
            raise ValueError(f"early_exit={self.early_exit!r}: expected True or False")


@dataclass(frozen=True)
class CreditOptions(ThresholdOptions):
    """ThresholdOptions, and credit_decay: the credit kept from one step to the next (in [0, 1));
    credit_strength: the weight of log(1 + credit) added to the credited token's logit."""

    credit_decay: float = 0.7
    credit_strength: float = 1.0

    HELP: ClassVar[dict] = {
        **ThresholdOptions.HELP,
        "credit_decay": "credit kept from step to step (credit)",
        "credit_strength": "weight of log(1 + credit) in the logits (credit)",
    }

    def __post_init__(self):
        super().__post_init__()
        check_number(self.credit_decay, "credit_decay", minimum=0)
        if not self.credit_decay < 1:
            raise ValueError(f"credit_decay={self.credit_decay}: expected a number in [0, 1)")
        check_number(self.credit_strength, "credit_strength", minimum=0)


def commit_counts(
    probs: torch.Tensor, masked: torch.Tensor, own: ThresholdOptions, most_left: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """How many tokens each sample commits this step -> (by the rule, in all), LongTensor[B] each.

    probs FloatTensor[B, M] (the sampled tokens' probabilities), masked BoolTensor[B, M],
    ``most_left`` LongTensor[B]: the most tokens that may stay masked after this step (the mask
    schedule's count over ``max_steps``). The rule's count, at most ``max_per_step``; in all at
    least what keeps to the schedule (at least one), never more than are masked (0 when done).
    """
    remaining = masked.sum(-1)
    floor = remaining - torch.minimum(most_left, remaining)  # what keeps the schedule's pace
    top = probs.masked_fill(~masked, -1.0).sort(-1, descending=True).values  # (B, M), masked first
    if own.rule == "threshold":
        by_rule = (top >= own.tau).sum(-1)
    else:  # the largest n with top[n - 1] >= 1 - f / (n + 1)
        n = torch.arange(1, top.shape[-1] + 1, device=top.device)
        by_rule = torch.where(top >= 1 - own.factor / (n + 1), n, 0).amax(-1)
    if own.max_per_step is not None:
        by_rule = by_rule.clamp_max(own.max_per_step)
    by_rule = torch.minimum(by_rule, remaining)
    return by_rule, torch.minimum(torch.maximum(by_rule, floor.clamp_min(1)), remaining)


def drawn_probability(logits: torch.Tensor, sampled: torch.Tensor, sampling) -> torch.Tensor:
    """The probability of each sampled token [B, K, N] under the distribution it was drawn from
    (temperature, top-k, top-p applied), which is what a threshold reads; greedy decoding
    (temperature 0, a point mass) reads the temperature-1 distribution instead."""
    temperature = sampling.temperature if sampling.temperature > 0 else 1.0
    probs = token_distribution(logits, temperature, sampling.top_k, sampling.top_p)
    return probs.gather(-1, sampled[..., None])[..., 0].float()


class Credit:
    """Per-position credit of the recurring top-1 token (CreditDecoding), on [B, K, N]."""

    def __init__(self, shape: tuple[int, ...], device: torch.device, decay: float, strength: float):
        self.value = torch.zeros(shape, device=device)
        self.token = torch.full(shape, -1, dtype=torch.long, device=device)
        self.decay, self.strength = decay, strength

    def fuse(self, logits: torch.Tensor) -> torch.Tensor:
        """Update the credits from this step's logits [B, K, N, V] and return the fused logits."""
        probs = logits.float().softmax(-1)
        top_p, top = probs.max(-1)
        self.value = torch.where(top == self.token, self.decay * self.value + top_p, top_p)
        self.token = top
        boost = (self.strength * self.value.log1p())[..., None].to(logits.dtype)
        return logits.scatter_add(-1, top[..., None], boost)


def adaptive_reveal(run: MaskedRun, passes, own: ThresholdOptions, credit: Credit | None):
    """The adaptive loop -> (codes [B, K, N], trace, passes run, LongTensor[B] steps per sample)."""
    codes = run.codes
    masked = run.spec.is_masked(codes)
    most_left = masked_counts(masked.flatten(1).sum(1), own.max_steps, own.schedule)  # (B, T): the floor
    passes.start(masked, None if own.early_exit else most_left)
    scales = run.guidance_scales(own.max_steps)
    per_sample = torch.zeros(run.batch_size, dtype=torch.long, device=run.device)
    trace, nfe = [], 0
    for step in range(own.max_steps):
        if own.early_exit and step > 0 and not bool(masked.any()):  # the one host sync per step
            break
        logits = passes(codes, masked, scales[step])
        if step == 0:
            check_logits(logits, codes, run.spec)
        if credit is not None:
            logits = credit.fuse(logits)
        nfe += 1
        tau = run.choice_temperature(step, own.max_steps)
        sampled, log_probs, confidence = sample_and_score(logits, run.sampling, tau, run.generator)
        probs = drawn_probability(logits, sampled, run.sampling).flatten(1)
        flat_masked = masked.flatten(1)
        by_rule, count = commit_counts(probs, flat_masked, own, most_left[:, step])
        # The rule's tokens (the most probable) first; the schedule's floor fills up by MaskGIT's
        # noisy confidence among the rest.
        chosen = ranks(-probs.masked_fill(~flat_masked, -1.0)) < by_rule[:, None]
        score = torch.where(chosen, float("inf"), confidence.flatten(1)).masked_fill(~flat_masked, float("-inf"))
        commit = ((ranks(-score) < count[:, None]) & flat_masked).view_as(codes)
        per_sample += flat_masked.any(-1)
        codes = torch.where(commit, sampled, codes)
        masked = masked & ~commit
        record = step_record(step, commit, log_probs, scales[step], tau)
        record.queries = passes.queries
        trace.append(record)
        run.step_done(step, codes)
    return codes, trace, nfe, per_sample


def _adaptive_decode(method, model, spec, batch_size, cond, generator, init_codes, editable, options, credit: bool):
    run, own = prepare_masked(
        model, spec, method, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    passes = passes_for(run, own.cached, own.refresh)
    fusion = Credit(tuple(run.codes.shape), run.device, own.credit_decay, own.credit_strength) if credit else None
    with run.autocast():
        codes, trace, nfe, per_sample = adaptive_reveal(run, passes, own, fusion)
    return DecodeResult(codes=codes, nfe=nfe, trace=trace, nfe_per_sample=per_sample, compute=passes.compute)


@torch.inference_mode()
def threshold_decode(
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
    """Threshold (or factor-rule) parallel decoding; arguments as ``maskgit_decode``, options
    ``ThresholdOptions`` with the sampling and run options. See the module doc."""
    return _adaptive_decode(THRESHOLD, model, spec, batch_size, cond, generator, init_codes, editable, options, False)


@torch.inference_mode()
def credit_decode(
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
    """Threshold decoding on credit-fused logits; options ``CreditOptions``. See the module doc."""
    return _adaptive_decode(CREDIT, model, spec, batch_size, cond, generator, init_codes, editable, options, True)


THRESHOLD = register(
    Method("threshold", threshold_decode, ThresholdOptions, MASKED, "adaptive: commit tokens above a confidence")
)
CREDIT = register(Method("credit", credit_decode, CreditOptions, MASKED, "adaptive: threshold on credit-fused logits"))
