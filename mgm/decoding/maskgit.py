"""MaskGIT iterative parallel decoding (Chang et al., 2022).

Start from a canvas whose editable positions are masked. At each of T steps: predict every
position, sample a token for each masked one, score the samples by log-probability plus Gumbel
noise whose temperature anneals to 0, keep the most confident and re-mask the rest so that
exactly ``masked_counts(...)[:, t]`` stay masked. After the last step nothing is masked.
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
from mgm.decoding.guidance import GuidedModel, MaskedModel
from mgm.decoding.result import DecodeResult, StepRecord
from mgm.decoding.sampling import gumbel_noise, sample_tokens
from mgm.decoding.speed import autocast, check_speed_args, compiled
from mgm.models.conditioning import Condition
from mgm.schedules import (
    choice_temperature_at,
    get_mask_schedule,
    guidance_scale_at,
    masked_counts,
    ranks,
)
from mgm.schedules.annealing import check_annealing
from mgm.schedules.groups import span_scores
from mgm.schedules.mask import MaskSchedule
from mgm.tokens import TokenSpec


@torch.inference_mode()
def maskgit_decode(
    model: MaskedModel,
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
    top_k: int | None = None,
    top_p: float | None = None,
    choice_temperature: float = 4.5,
    choice_temperature_annealing: str = "linear",
    guidance_annealing: str = "constant",
    device: torch.device | str | None = None,
    dtype: str | torch.dtype | None = None,
    compile: bool = False,
) -> DecodeResult:
    """Decode ``codes[B, K, N]`` with any ``model(codes, cond) -> logits[B, K, N, V]``.

    Args:
        model: the masked model callable; masked positions hold ``spec.mask_ids``.
        spec: token spec (codebook sizes, grid shape).
        batch_size: samples to draw; may be None when ``init_codes`` gives it.
        num_steps: decoding steps T; every step is one model forward (``nfe == num_steps``).
        schedule: mask schedule name or callable gamma(r).
        cond: condition for every sample (class labels, context), or None.
        guidance_scale: classifier-free guidance scale (0 = none); annealed by ``guidance_annealing``.
        temperature: sampling temperature of the token draw (0 = argmax); ``top_k`` / ``top_p`` filter.
        init_codes: LongTensor[B, K, N] to start from (mask ids where to generate).
        editable: BoolTensor[B, K, N] / [K, N] / [N]; positions outside it are returned unchanged.
        generator: torch.Generator on the decoding device; the same seed gives the same codes.
        choice_temperature: temperature of the Gumbel noise added to confidences, annealed by
            ``choice_temperature_annealing`` (MaskGIT: 4.5, linear decay to 0).
        dtype: run the loop under autocast in this dtype ("bfloat16", "float16"; None = as the model).
        compile: run the model's forward through ``torch.compile`` (``mgm.decoding.speed``).
    """
    device = resolve_device(model, init_codes, device)
    check_model_spec(model, spec)
    dtype = check_speed_args(dtype, compile, model)
    check_positive_int(num_steps, "num_steps")
    get_mask_schedule(schedule)
    check_reveal_args(temperature, top_k, top_p, guidance_scale, cond, choice_temperature, choice_temperature_annealing)
    check_annealing(guidance_annealing, "guidance_annealing")
    codes = prepare_canvas(spec, batch_size, init_codes, editable, device)
    batch = codes.shape[0]
    check_condition(cond, batch, model)
    cond = None if cond is None else cond.to(device)

    guided = GuidedModel(compiled(model) if compile else model, cond)
    candidates = spec.is_masked(codes)
    scales = [guidance_scale_at(guidance_scale, t, num_steps, guidance_annealing) for t in range(num_steps)]
    with autocast(device, dtype):
        codes, trace = iterative_reveal(
            guided, spec, codes, candidates, num_steps, schedule, scales, temperature, top_k, top_p,
            choice_temperature, choice_temperature_annealing, generator,
        )  # fmt: skip
    return DecodeResult(codes=codes, nfe=num_steps, trace=trace)


def iterative_reveal(
    guided: GuidedModel,
    spec: TokenSpec,
    codes: torch.Tensor,
    candidates: torch.Tensor,
    num_steps: int,
    schedule: str | MaskSchedule,
    scales: list[float],
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    choice_temperature: float,
    choice_temperature_annealing: str,
    generator: torch.Generator | None,
    span: int = 1,
    first_step: int = 0,
) -> tuple[torch.Tensor, list[StepRecord]]:
    """The MaskGIT loop over the masked ``candidates`` [B, K, N] of ``codes``; returns (codes, trace).

    Masked positions outside ``candidates`` stay masked throughout (e.g. the codebook groups a
    group plan decodes later). ``scales[t]`` is the guidance scale of step t; with ``span`` > 1
    confidences are averaged over aligned spans of frames, so spans are kept or re-masked whole.
    ``first_step`` numbers the trace records.
    """
    plan = masked_counts(candidates.flatten(1).sum(1), num_steps, schedule)  # (B, T)
    trace = []
    for step in range(num_steps):
        logits = guided(codes, scales[step])  # (B, K, N, V)
        if step == 0:
            _check_logits(logits, codes, spec)
        tau = choice_temperature_at(choice_temperature, step, num_steps, choice_temperature_annealing)
        sampled, log_probs, confidence = sample_and_score(logits, temperature, top_k, top_p, tau, generator)
        # Known tokens and masked non-candidates get +inf: they rank last and are never chosen below.
        confidence = span_scores(confidence, candidates, span)
        # The plan[:, step] least confident candidates stay masked.
        stay_masked = (ranks(confidence.flatten(1)) < plan[:, step : step + 1]).view_as(codes)
        revealed = candidates & ~stay_masked
        codes = torch.where(revealed, sampled, codes)
        candidates = candidates & stay_masked
        trace.append(_record(first_step + step, revealed, log_probs, scales[step], tau))
    return codes, trace


def sample_and_score(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    tau: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [..., V] -> (sampled tokens [...], their log-probabilities, the confidence that ranks
    them: log-probability plus ``tau`` times Gumbel noise). The draws happen in this order, so a
    generator reproduces the same tokens in every decoder that uses it."""
    sampled = sample_tokens(logits, temperature, top_k, top_p, generator)
    log_probs = logits.float().log_softmax(-1).gather(-1, sampled[..., None])[..., 0]
    confidence = log_probs if tau == 0 else log_probs + tau * gumbel_noise(log_probs.shape, generator, logits.device)
    return sampled, log_probs, confidence


def _check_logits(logits: torch.Tensor, codes: torch.Tensor, spec: TokenSpec) -> None:
    expected = (*codes.shape, spec.vocab_size)
    if tuple(logits.shape) != expected:
        raise ValueError(
            f"model returned logits of shape {tuple(logits.shape)}; expected {list(expected)} [B, K, N, V]"
        )


def _record(step: int, revealed: torch.Tensor, log_probs: torch.Tensor, scale: float, tau: float) -> StepRecord:
    count = revealed.flatten(1).sum(1)
    prob_sum = torch.where(revealed, log_probs.exp(), 0.0).flatten(1).sum(1)
    return StepRecord(step, count, prob_sum / count.clamp_min(1), scale, tau)
