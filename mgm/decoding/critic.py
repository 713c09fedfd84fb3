"""Token-Critic decoding (Lezama et al., 2022): a learned critic chooses what to mask again.

Each step t: the model predicts every masked token and one is sampled at each, which completes
the canvas; the critic (``critic_scores``, one more pass, on the conditional rows only) scores
every token of the completed canvas, and of the positions this decode owns (the editable ones)
the ``masked_counts(...)[:, t]`` it finds most likely to be sampled (least likely to be data,
ranked by log sigmoid(-score) plus the annealed Gumbel noise of MaskGIT's choice temperature) are
masked again. Unlike MaskGIT, a token committed at an earlier step can be masked again whenever
the critic doubts it in the context the later steps built. The last step keeps the completed
canvas, so its critic pass is skipped: ``nfe == 2 * num_steps - 1``.

The model must declare ``critic_scores`` (``mgm.models.critic.CriticModel``; the shipped
pipelines load theirs from ``critic/``). Codebook groups are not planned: all K * N tokens are
decoded jointly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from mgm.checks import check_int
from mgm.decoding.canvas import prepare_masked
from mgm.decoding.guidance import GuidedModel
from mgm.decoding.maskgit import check_logits, step_record
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators, gumbel_noise, sample_tokens
from mgm.models.conditioning import Condition
from mgm.models.protocols import model_traits
from mgm.schedules import get_mask_schedule, masked_counts, ranks
from mgm.schedules.mask import MaskSchedule
from mgm.tokens import TokenSpec


@dataclass(frozen=True)
class CriticOptions:
    """num_steps: steps T (two passes each but the last); schedule: the mask schedule."""

    num_steps: int = 6
    schedule: str | MaskSchedule = "cosine"

    HELP: ClassVar[dict] = {}

    def __post_init__(self):
        check_int(self.num_steps, "num_steps")
        get_mask_schedule(self.schedule)


@torch.inference_mode()
def critic_decode(
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
    """Token-Critic decoding; arguments as ``maskgit_decode`` (the model with ``critic_scores``),
    options ``CriticOptions`` with the sampling and run options. See the module doc."""
    run, own = prepare_masked(
        model, spec, CRITIC, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    guided = GuidedModel(run.model, run.cond)
    critic_scores = model_traits(run.model).critic_scores
    codes, steps, sampling = run.codes, own.num_steps, run.sampling
    owned = spec.is_masked(codes)  # the positions this decode fills (and may mask again)
    masked_after = masked_counts(owned.flatten(1).sum(1), steps, own.schedule)  # (B, T)
    scales, trace, nfe = run.guidance_scales(steps), [], 0
    with run.autocast():
        for step in range(steps):
            logits = guided(codes, scales[step])
            nfe += 1
            if step == 0:
                check_logits(logits, codes, spec)
            masked = spec.is_masked(codes)
            sampled = sample_tokens(logits, sampling.temperature, sampling.top_k, sampling.top_p, run.generator)
            log_probs = logits.float().log_softmax(-1).gather(-1, sampled[..., None])[..., 0]
            complete = torch.where(masked, sampled, codes)
            tau = run.choice_temperature(step, steps)
            if step + 1 < steps:
                real = F.logsigmoid(-critic_scores(complete, run.cond))  # log P(data token), [B, K, N]
                nfe += 1
                if tau:
                    real = real + tau * gumbel_noise(real.shape, run.generator, run.device)
                # Positions this decode does not own get +inf: they rank last and are never masked.
                real = real.masked_fill(~owned, float("inf"))
                again = (ranks(real.flatten(1)) < masked_after[:, step : step + 1]).view_as(codes)
                codes = torch.where(again, spec.mask_tensor(run.device), complete)
            else:
                codes = complete
            trace.append(step_record(step, masked & ~spec.is_masked(codes), log_probs, scales[step], tau))
            run.step_done(step, codes)
    return DecodeResult(codes=codes, nfe=nfe, trace=trace)


CRITIC = register(
    Method("critic", critic_decode, CriticOptions, MASKED, "Token-Critic: a learned critic re-masks",
           needs=("critic_scores",))
)  # fmt: skip
