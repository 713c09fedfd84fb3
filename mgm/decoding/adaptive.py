"""Adaptive masked decoding: each step commits as many tokens as the model is sure of.

MaskGIT reveals a fixed count per step whatever the model's confidence. Here the count follows
the confidences of the step's sampled tokens, per sample, so easy samples finish in fewer steps:

- ``threshold_decode`` (Fast-dLLM's threshold rule): commit every masked token whose
  probability is at least ``tau``; the "factor" rule commits the largest n whose n-th highest
  probability is at least 1 - factor / (n + 1). At least one token per sample and step, at most
  ``max_per_step``; the step ``max_steps`` commits whatever is left.
- ``credit_decode`` (CreditDecoding): each position keeps a credit for its recurring top-1 token
  (decayed by ``credit_decay`` every step, reset when the top-1 changes), fused into the logits
  as ``credit_strength * log(1 + credit)`` before sampling and thresholding, so a token the model
  keeps proposing is committed sooner.

Shapes stay static: every step runs the whole batch, and a finished sample (nothing masked) just
commits nothing. With ``early_exit`` (default) the loop stops once every sample is done, which
costs one host sync per step (``bool(masked.any())``); without it the loop runs ``max_steps``
passes and never syncs. ``nfe`` is the passes run; ``nfe_per_sample`` the steps each sample still
had masked tokens at. A step commits its n most probable sampled tokens, so under the
threshold rule exactly those at or above tau: ``choice_temperature`` (MaskGIT's noisy ranking)
is not used, as noise would commit tokens below the threshold in place of those above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int, check_number
from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.guidance import GuidedModel
from mgm.decoding.maskgit import check_logits, sample_and_score, step_record
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators
from mgm.models.conditioning import Condition
from mgm.schedules import ranks
from mgm.tokens import TokenSpec

RULES = ("threshold", "factor")


@dataclass(frozen=True)
class ThresholdOptions:
    """tau: the probability a token needs to be committed ("threshold" rule).
    rule: "threshold" or "factor" (Fast-dLLM's; uses ``factor``).
    factor: f of the factor rule, > 0.
    max_per_step: at most this many tokens per sample and step (None: no cap).
    max_steps: the step cap; the last step commits every token still masked.
    early_exit: stop when every sample is done (one host sync per step)."""

    tau: float = 0.9
    rule: str = "threshold"
    factor: float = 1.0
    max_per_step: int | None = None
    max_steps: int = 32
    early_exit: bool = True

    HELP: ClassVar[dict] = {
        "tau": "commit tokens whose probability is at least this (threshold, credit)",
        "rule": "threshold or factor (Fast-dLLM's rules)",
        "factor": "f of the factor rule",
        "max_per_step": "at most this many tokens per sample and step",
        "max_steps": "step cap: the last step commits what is left",
        "early_exit": "stop once every sample is done (a host sync per step)",
    }

    def __post_init__(self):
        check_number(self.tau, "tau", above=0, maximum=1)
        if self.rule not in RULES:
            raise ValueError(f"rule={self.rule!r}: expected one of {list(RULES)}")
        check_number(self.factor, "factor", above=0)
        if self.max_per_step is not None:
            check_int(self.max_per_step, "max_per_step")
        check_int(self.max_steps, "max_steps")
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


def commit_counts(probs: torch.Tensor, masked: torch.Tensor, own: ThresholdOptions, last: bool) -> torch.Tensor:
    """How many tokens each sample commits this step -> LongTensor[B].

    probs FloatTensor[B, M] (the sampled tokens' probabilities), masked BoolTensor[B, M]. The
    rule's count, at least 1 and at most ``max_per_step``, never more than are masked (0 for a
    finished sample); on the ``last`` step every masked token.
    """
    remaining = masked.sum(-1)
    if last:
        return remaining
    top = probs.masked_fill(~masked, -1.0).sort(-1, descending=True).values  # (B, M), masked first
    if own.rule == "threshold":
        count = (top >= own.tau).sum(-1)
    else:  # the largest n with top[n - 1] >= 1 - f / (n + 1)
        n = torch.arange(1, top.shape[-1] + 1, device=top.device)
        count = torch.where(top >= 1 - own.factor / (n + 1), n, 0).amax(-1)
    count = count.clamp_min(1)
    if own.max_per_step is not None:
        count = count.clamp_max(own.max_per_step)
    return torch.minimum(count, remaining)


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


def adaptive_reveal(run: MaskedRun, guided: GuidedModel, own: ThresholdOptions, credit: Credit | None):
    """The adaptive loop -> (codes [B, K, N], trace, passes run, LongTensor[B] steps per sample)."""
    codes = run.codes
    masked = run.spec.is_masked(codes)
    scales = run.guidance_scales(own.max_steps)
    per_sample = torch.zeros(run.batch_size, dtype=torch.long, device=run.device)
    trace, passes = [], 0
    for step in range(own.max_steps):
        if own.early_exit and step > 0 and not bool(masked.any()):  # the one host sync per step
            break
        logits = guided(codes, scales[step])
        if step == 0:
            check_logits(logits, codes, run.spec)
        if credit is not None:
            logits = credit.fuse(logits)
        passes += 1
        sampled, log_probs, _ = sample_and_score(logits, run.sampling, 0.0, run.generator)
        flat_masked = masked.flatten(1)
        count = commit_counts(log_probs.exp().flatten(1), flat_masked, own, last=step == own.max_steps - 1)
        order = ranks(-log_probs.flatten(1).masked_fill(~flat_masked, float("-inf")))  # 0 = most probable
        commit = ((order < count[:, None]) & flat_masked).view_as(codes)
        per_sample += flat_masked.any(-1)
        codes = torch.where(commit, sampled, codes)
        masked = masked & ~commit
        trace.append(step_record(step, commit, log_probs, scales[step], 0.0))
        run.step_done(step, codes)
    return codes, trace, passes, per_sample


def _adaptive_decode(method, model, spec, batch_size, cond, generator, init_codes, editable, options, credit: bool):
    run, own = prepare_masked(
        model, spec, method, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    guided = GuidedModel(run.model, run.cond)
    fusion = Credit(tuple(run.codes.shape), run.device, own.credit_decay, own.credit_strength) if credit else None
    with run.autocast():
        codes, trace, passes, per_sample = adaptive_reveal(run, guided, own, fusion)
    return DecodeResult(codes=codes, nfe=passes, trace=trace, nfe_per_sample=per_sample)


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
