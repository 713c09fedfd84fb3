"""MaskGIT iterative parallel decoding (Chang et al., 2022).

Start from a canvas whose editable positions are masked. At each of T steps: predict every
position, sample a token for each masked one, score the samples by log-probability plus Gumbel
noise whose temperature anneals to 0, keep the most confident and re-mask the rest so that
exactly ``masked_counts(...)[:, t]`` stay masked. After the last step nothing is masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int
from mgm.decoding.cached import CacheOptions, passes_for
from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.options import SamplingOptions
from mgm.decoding.registry import MASKED, Method, register
from mgm.decoding.result import DecodeResult, StepRecord
from mgm.decoding.sampling import Generators, gumbel_noise, sample_tokens, uniform
from mgm.models.conditioning import Condition
from mgm.schedules import get_mask_schedule, masked_counts, ranks
from mgm.schedules.groups import span_scores
from mgm.schedules.mask import MaskSchedule
from mgm.schedules.orders import check_order, order_permutations, order_priority
from mgm.tokens import TokenSpec


@dataclass(frozen=True)
class MaskGITOptions(CacheOptions):
    """MaskGIT's own knobs: ``num_steps`` steps T (one forward each), the mask ``schedule``
    (a name from ``mgm.schedules`` or a callable gamma(r)), the reveal ``order``, and cached
    decoding (``CacheOptions``: cached, refresh)."""

    num_steps: int = 12
    schedule: str | MaskSchedule = "cosine"
    order: str | torch.Tensor = "confidence"

    HELP: ClassVar[dict] = {
        **CacheOptions.HELP,
        "num_steps": "decoding steps (one model pass each)",
        "schedule": "mask schedule",
        "order": "which masked tokens a step reveals: confidence, halton, locality or random",
    }

    def __post_init__(self):
        super().__post_init__()
        check_int(self.num_steps, "num_steps")
        get_mask_schedule(self.schedule)
        check_order(self.order)


@torch.inference_mode()
def maskgit_decode(
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
    """Decode ``codes[B, K, N]`` with any ``model(codes, cond) -> logits[B, K, N, V]``.

    Args:
        model: the masked model callable; masked positions hold ``spec.mask_ids``.
        spec: token spec (codebook sizes, grid shape).
        batch_size: samples to draw; None = from init_codes, else cond, else a generator list, else 1.
        cond: condition for every sample (class labels, context), or None.
        generator: a torch.Generator on the decoding device, or one per sample.
        init_codes: LongTensor[B, K, N] to start from (mask ids where to generate).
        editable: BoolTensor[B, K, N] / [K, N] / [N]; positions outside it are returned unchanged.
        options: ``MaskGITOptions`` (num_steps, schedule, order: see ``mgm.schedules.orders``),
            ``cached`` / ``refresh`` (``mgm.decoding.cached``), ``SamplingOptions`` (temperature,
            top_k, top_p, guidance_scale, guidance_annealing, choice_temperature,
            choice_temperature_annealing) and ``RunOptions`` (device, dtype, compile, callback).

    ``nfe == num_steps``: one (batched, guided) forward per step; ``compute`` counts a cached
    step's partial pass over Q of N positions as Q / N.
    """
    run, own = prepare_masked(
        model, spec, MASKGIT, options, batch_size=batch_size, cond=cond, generator=generator,
        init_codes=init_codes, editable=editable,
    )  # fmt: skip
    passes = passes_for(run, own.cached, own.refresh)
    candidates = spec.is_masked(run.codes)
    priority = position_priority(run, own.order)
    with run.autocast():
        codes, trace = iterative_reveal(
            run, passes, run.codes, candidates, own.num_steps, own.schedule, run.guidance_scales(own.num_steps),
            priority=priority,
        )  # fmt: skip
    return DecodeResult(codes=codes, nfe=own.num_steps, trace=trace, compute=passes.compute)


def position_priority(run: MaskedRun, order) -> torch.Tensor | None:
    """FloatTensor[B, K, N] reveal priorities of a content-independent ``order`` (None for
    "confidence"); "random" draws one permutation per sample from the run's generator."""
    if isinstance(order, str) and order == "confidence":
        return None
    b, k, n = run.codes.shape
    check_order(order, n)
    noise = uniform((b, n), run.generator, run.device) if isinstance(order, str) and order == "random" else None
    return order_priority(order_permutations(order, run.spec.shape, b, run.device, noise), k)


def iterative_reveal(
    run: MaskedRun,
    passes,
    codes: torch.Tensor,
    candidates: torch.Tensor,
    num_steps: int,
    schedule: str | MaskSchedule,
    scales: list[float],
    span: int = 1,
    first_step: int = 0,
    priority: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[StepRecord]]:
    """The MaskGIT loop over the masked ``candidates`` [B, K, N] of ``codes``; returns (codes, trace).

    Masked positions outside ``candidates`` stay masked throughout (e.g. the codebook groups a
    group plan decodes later). ``scales[t]`` is the guidance scale of step t; with ``span`` > 1
    confidences are averaged over aligned spans of frames, so spans are kept or re-masked whole.
    ``first_step`` numbers the trace records (and the callback's steps). ``priority``
    FloatTensor[B, K, N]: a fixed order of reveal (higher first) instead of the confidences.
    ``passes``: ``FullPasses`` or ``CachedPasses`` (``mgm.decoding.cached``), which run each step.
    """
    masked_after = masked_counts(candidates.flatten(1).sum(1), num_steps, schedule)  # (B, T)
    passes.start(candidates, masked_after)
    trace = []
    for step in range(num_steps):
        logits = passes(codes, candidates, scales[step])  # (B, K, N, V)
        if step == 0:
            check_logits(logits, codes, run.spec)
        tau = run.choice_temperature(step, num_steps)
        sampled, log_probs, confidence = sample_and_score(logits, run.sampling, tau, run.generator)
        codes, candidates, revealed = reveal_step(
            codes, candidates, sampled, confidence if priority is None else priority, masked_after[:, step], span
        )
        record = step_record(first_step + step, revealed, log_probs, scales[step], tau)
        record.queries = passes.queries
        trace.append(record)
        run.step_done(first_step + step, codes)
    return codes, trace


def reveal_step(
    codes: torch.Tensor,
    candidates: torch.Tensor,
    sampled: torch.Tensor,
    confidence: torch.Tensor,
    stay: torch.Tensor,
    span: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One MaskGIT reveal: of the ``candidates`` [B, K, N], the ``stay`` LongTensor[B] least
    confident stay masked and the rest take their ``sampled`` tokens -> (codes, the candidates
    still masked, the positions revealed). Known tokens and masked non-candidates rank last (+inf)
    and are never chosen; with ``span`` > 1 confidences are averaged over spans of frames."""
    confidence = span_scores(confidence, candidates, span)
    stay_masked = (ranks(confidence.flatten(1)) < stay[:, None]).view_as(codes)
    revealed = candidates & ~stay_masked
    return torch.where(revealed, sampled, codes), candidates & stay_masked, revealed


def step_noise(
    shape: tuple[int, ...], sampling: SamplingOptions, tau: float, generator: Generators, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The random draws of one step of ``sample_and_score`` over logits of ``shape`` [B, ..., V],
    in its order: (the tokens' Gumbel noise, None at temperature 0; the choice's Gumbel noise
    [B, ...], None at ``tau`` 0). Their shapes depend on nothing the model says, so a step's
    draws are the same whatever the tokens before it: ``verified_decode(target="maskgit")``
    draws them ahead of time."""
    tokens = None if sampling.temperature == 0 else gumbel_noise(shape, generator, device)
    choice = None if tau == 0 else gumbel_noise(shape[:-1], generator, device)
    return tokens, choice


def sample_and_score(
    logits: torch.Tensor,
    sampling: SamplingOptions,
    tau: float,
    generator: Generators,
    noise: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [B, ..., V] -> (sampled tokens [B, ...], their log-probabilities, the confidence that
    ranks them: log-probability plus ``tau`` times Gumbel noise). The draws happen in this order,
    so a generator reproduces the same tokens in every decoder that uses it. ``noise``: the
    step's draws (``step_noise``) to use instead of drawing them."""
    tokens, choice = step_noise(logits.shape, sampling, tau, generator, logits.device) if noise is None else noise
    sampled = sample_tokens(logits, sampling.temperature, sampling.top_k, sampling.top_p, noise=tokens)
    log_probs = logits.float().log_softmax(-1).gather(-1, sampled[..., None])[..., 0]
    confidence = log_probs if choice is None else log_probs + tau * choice
    return sampled, log_probs, confidence


def check_logits(logits: torch.Tensor, codes: torch.Tensor, spec: TokenSpec) -> None:
    expected = (*codes.shape, spec.vocab_size)
    if tuple(logits.shape) != expected:
        raise ValueError(
            f"model returned logits of shape {tuple(logits.shape)}; expected {list(expected)} [B, K, N, V]"
        )


def step_record(step: int, revealed: torch.Tensor, log_probs: torch.Tensor, scale: float, tau: float) -> StepRecord:
    count = revealed.flatten(1).sum(1)
    prob_sum = torch.where(revealed, log_probs.exp(), 0.0).flatten(1).sum(1)
    return StepRecord(step, count, prob_sum / count.clamp_min(1), scale, tau)


MASKGIT = register(Method("maskgit", maskgit_decode, MaskGITOptions, MASKED, "MaskGIT iterative parallel decoding"))
