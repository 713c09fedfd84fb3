"""Remasking decoding: committed tokens can be masked again and resampled (ReMDM, and the
confidence re-ranking of Discrete Diffusion VLA), so an early mistake is not final.

The loop is MaskGIT's with the same step counts: after step t, ``masked_counts(...)[:, t]`` tokens
are masked, exactly as in ``maskgit_decode``. Each step also re-masks r_t of the tokens this decode
committed at earlier steps and reveals r_t more, so the schedule's masked share (its marginals)
is kept. With c_t tokens committed so far and m_{t+1} to stay masked, ReMDM's largest remasking
share is sigma_max = min(1, m_{t+1} / c_t) (in ReMDM's terms (1 - alpha_s) / alpha_t), which
keeps the reveal count within what is masked; r_t = floor(sigma * c_t) with

- "cap": sigma = min(eta, sigma_max), which tokens uniformly at random;
- "rescale": sigma = eta * sigma_max, uniformly at random;
- "conf": sigma as "rescale", the tokens committed with the lowest confidence first;
- "rerank": sigma as "cap", the committed tokens the model now finds least likely in their
  current context first (the step's own forward re-scores them: secondary remasking).

The last step masks nothing again (m_T = 0), so every token is decided. Given tokens (outside
``editable``) are never re-masked. ``nfe == num_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int, check_number
from mgm.decoding.canvas import prepare_masked
from mgm.decoding.guidance import GuidedModel
from mgm.decoding.maskgit import check_logits, sample_and_score, step_record
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators, uniform
from mgm.models.conditioning import Condition
from mgm.schedules import get_mask_schedule, masked_counts, ranks
from mgm.schedules.mask import MaskSchedule
from mgm.tokens import TokenSpec

STRATEGIES = ("cap", "rescale", "conf", "rerank")


@dataclass(frozen=True)
class RemaskOptions:
    """num_steps, schedule: as MaskGIT's. strategy: one of STRATEGIES (see the module doc).
    eta: the remasking strength in [0, 1] (cap: the share's cap; the others: its scale)."""

    num_steps: int = 12
    schedule: str | MaskSchedule = "cosine"
    strategy: str = "rerank"
    eta: float = 0.1

    HELP: ClassVar[dict] = {
        "strategy": "remasking rule: cap, rescale, conf or rerank (remask)",
        "eta": "remasking strength in [0, 1] (remask)",
    }

    def __post_init__(self):
        check_int(self.num_steps, "num_steps")
        get_mask_schedule(self.schedule)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}: expected one of {list(STRATEGIES)}")
        check_number(self.eta, "eta", minimum=0, maximum=1)


def remask_counts(committed: torch.Tensor, stay_masked: torch.Tensor, strategy: str, eta: float) -> torch.Tensor:
    """r_t: tokens to re-mask per sample, LongTensor[B], from the committed count c_t and the
    count m_{t+1} to stay masked after the step (both LongTensor[B])."""
    c = committed.double()
    sigma_max = torch.where(c > 0, (stay_masked.double() / c.clamp_min(1)).clamp_max(1.0), 0.0)
    sigma = sigma_max.clamp_max(eta) if strategy in ("cap", "rerank") else eta * sigma_max
    return torch.floor(sigma * c + 1e-9).long().clamp_max(stay_masked)


@torch.inference_mode()
def remask_decode(
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
    """MaskGIT with remasking of committed tokens; arguments as ``maskgit_decode``, options
    ``RemaskOptions`` with the sampling and run options. See the module doc."""
    run, own = prepare_masked(
        model, spec, REMASK, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    guided = GuidedModel(run.model, run.cond)
    codes, steps = run.codes, own.num_steps
    masked = spec.is_masked(codes)
    mine = torch.zeros_like(masked)  # tokens this decode committed (the only ones it may re-mask)
    stored = torch.zeros(codes.shape, device=run.device)  # their log-probabilities when committed
    masked_after = masked_counts(masked.flatten(1).sum(1), steps, own.schedule)  # (B, T)
    scales, trace = run.guidance_scales(steps), []
    flat = lambda x: x.flatten(1)  # noqa: E731
    with run.autocast():
        for step in range(steps):
            logits = guided(codes, scales[step])
            if step == 0:
                check_logits(logits, codes, spec)
            tau = run.choice_temperature(step, steps)
            sampled, log_probs, confidence = sample_and_score(logits, run.sampling, tau, run.generator)
            target = masked_after[:, step]
            again = remask_counts(flat(mine).sum(1), target, own.strategy, own.eta)
            reveal_count = flat(masked).sum(1) - target + again
            order = ranks(-flat(confidence).masked_fill(~flat(masked), float("-inf")))  # 0 = most confident
            reveal = (order < reveal_count[:, None]).view_as(codes) & masked
            if own.strategy in ("cap", "rescale"):
                score = uniform(codes.shape, run.generator, run.device)
            elif own.strategy == "conf":
                score = stored
            else:  # rerank: how likely the model now finds each committed token in its context
                score = (
                    logits.float().log_softmax(-1).gather(-1, codes.clamp_max(logits.shape[-1] - 1)[..., None])[..., 0]
                )
            worst = ranks(flat(score).masked_fill(~flat(mine), float("inf")))  # 0 = first to re-mask
            remask = (worst < again[:, None]).view_as(codes) & mine
            codes = torch.where(reveal, sampled, codes)
            codes = torch.where(remask, spec.mask_tensor(run.device), codes)
            stored = torch.where(reveal, log_probs, stored)
            masked = (masked & ~reveal) | remask
            mine = (mine | reveal) & ~remask
            trace.append(step_record(step, reveal, log_probs, scales[step], tau))
            run.step_done(step, codes)
    return DecodeResult(codes=codes, nfe=steps, trace=trace)


REMASK = register(Method("remask", remask_decode, RemaskOptions, MASKED, "MaskGIT with remasking (ReMDM)"))
