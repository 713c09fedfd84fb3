"""Autoregressive ancestral sampling with a KV cache.

One forward per token: the first call feeds the given prefix (or nothing) and fills the cache;
each later call feeds the token just drawn. Classifier-free guidance runs the conditional and
null rows as one batch and guides the logits before sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mgm.checks import check_int
from mgm.decoding.canvas import batch_of, check_condition, resolve_device
from mgm.decoding.guidance import check_guidance, guide
from mgm.decoding.options import NoOptions, RunOptions, SamplingOptions
from mgm.decoding.registry import AR, Method, register
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import Generators, check_generator, sample_tokens
from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition
from mgm.models.protocols import model_traits
from mgm.schedules.annealing import guidance_scale_at


class GuidedAR:
    """``model(tokens, cond, cache)`` with CFG: [cond; null] rows in one batch when guiding."""

    def __init__(self, model, cond: Condition | None, guided: bool):
        self.model = model
        self.paired = guided and cond is not None
        self.cond = Condition.cat([cond, cond.null()]) if self.paired else cond

    def __call__(self, tokens: torch.Tensor, cache: KVCache | None, scale: float) -> torch.Tensor:
        if not self.paired:
            return self.model(tokens, self.cond, cache=cache)
        logits = self.model(torch.cat([tokens, tokens]), self.cond, cache=cache)
        return guide(*logits.chunk(2), scale)


@dataclass
class ARRun:
    """Everything an AR decode loop needs, checked before its first model call."""

    model: object
    length: int
    batch_size: int
    prefix: torch.Tensor | None  # LongTensor[B, L0] of given first tokens
    cond: Condition | None
    generator: Generators
    sampling: SamplingOptions
    run: RunOptions
    device: torch.device
    vocab_size: int | None

    def guided(self, cond: Condition | None = None) -> GuidedAR:
        cond = self.cond if cond is None else cond
        return GuidedAR(self.model, cond, self.sampling.guidance_scale > 0)

    def guidance_scale(self, position: int) -> float:
        """The guidance scale for the token at ``position`` (annealed over the sequence)."""
        s = self.sampling
        return guidance_scale_at(s.guidance_scale, position, self.length, s.guidance_annealing)

    def step_done(self, step: int, tokens: torch.Tensor) -> None:
        if self.run.callback is not None:
            self.run.callback(step, tokens[:, None])


def prepare_ar(
    model,
    length: int,
    method: Method,
    options: dict,
    *,
    batch_size: int | None,
    cond: Condition | None,
    generator: Generators,
    prefix: torch.Tensor | None,
) -> tuple[ARRun, object]:
    """The preamble of every AR decoder -> (ARRun, the method's own options)."""
    sampling, run, own = method.parse(options)
    if not callable(model):
        raise ValueError(f"model: expected a callable model(tokens, cond, cache=None), got {type(model).__name__}")
    check_int(length, "length")
    traits = model_traits(model)
    if traits.max_length is not None and length > traits.max_length:
        raise ValueError(f"length={length}: the model takes at most {traits.max_length} tokens")
    sampling.check_vocab(traits.vocab_size)
    batch_size = batch_size if prefix is not None else batch_of(batch_size, cond, generator)
    if batch_size is not None:
        check_int(batch_size, "batch_size")
    if prefix is not None:
        prefix = _check_prefix(prefix, length, batch_size, traits.vocab_size)
        batch_size = prefix.shape[0]
    batch_size = 1 if batch_size is None else batch_size
    check_condition(cond, batch_size, model)
    check_guidance(sampling.guidance_scale, cond)
    device = resolve_device(model, prefix, run.device)
    generator = check_generator(generator, batch_size, device)
    prefix = None if prefix is None else prefix.to(device)
    cond = None if cond is None else cond.to(device)
    return ARRun(model, length, batch_size, prefix, cond, generator, sampling, run, device, traits.vocab_size), own


def _check_prefix(prefix, length: int, batch_size: int | None, vocab: int | None) -> torch.Tensor:
    """A prefix LongTensor [B, L0] (or [B, 1, L0], the DecodeResult layout) -> [B, L0]."""
    if isinstance(prefix, torch.Tensor) and prefix.dim() == 3 and prefix.shape[1] == 1:
        prefix = prefix[:, 0]
    if not isinstance(prefix, torch.Tensor) or prefix.dim() != 2 or prefix.dtype != torch.long:
        got = f"{prefix.dtype} {tuple(prefix.shape)}" if isinstance(prefix, torch.Tensor) else type(prefix).__name__
        raise ValueError(f"prefix: expected a LongTensor [B, L0], got {got}")
    if prefix.device.type == "meta":
        raise ValueError("prefix: on the meta device (no values); expected a real tensor")
    if prefix.shape[1] > length:
        raise ValueError(f"prefix: {prefix.shape[1]} tokens is longer than length={length}")
    if batch_size is not None and batch_size != prefix.shape[0]:
        raise ValueError(f"batch_size={batch_size} does not match the prefix's batch {prefix.shape[0]}")
    if vocab is not None and prefix.numel() and (prefix.min() < 0 or prefix.max() >= vocab):
        raise ValueError(f"prefix: tokens must lie in [0, {vocab - 1}]")
    return prefix


@torch.inference_mode()
def ar_decode(
    model,
    length: int,
    *,
    batch_size: int | None = None,
    cond: Condition | None = None,
    generator: Generators = None,
    prefix: torch.Tensor | None = None,
    **options,
) -> DecodeResult:
    """Sample ``length`` tokens per sample from ``model(tokens, cond, cache=...)`` -> codes [B, 1, length].

    ``prefix`` [B, L0]: given first tokens (kept). ``batch_size`` None: from the prefix, else cond,
    else a generator list, else 1. ``options``: the sampling options (temperature, top_k, top_p, guidance_scale,
    guidance_annealing over the sequence) and ``device``, ``callback``. ``nfe``: one pass per
    drawn token.
    """
    run, _ = prepare_ar(
        model, length, AR_METHOD, options, batch_size=batch_size, cond=cond, generator=generator, prefix=prefix
    )
    s = run.sampling
    guided = run.guided()
    empty = torch.zeros(run.batch_size, 0, dtype=torch.long, device=run.device)
    tokens = empty if run.prefix is None else run.prefix
    cache, feed, nfe = KVCache(), tokens, 0
    while tokens.shape[1] < length:
        logits = guided(feed, cache, run.guidance_scale(tokens.shape[1]))[:, -1]  # (B, V): the next token's
        feed = sample_tokens(logits, s.temperature, s.top_k, s.top_p, run.generator)[:, None]
        tokens = torch.cat([tokens, feed], 1)
        run.step_done(nfe, tokens)
        nfe += 1
    return DecodeResult(codes=tokens[:, None], nfe=nfe)


AR_METHOD = register(Method("ar", ar_decode, NoOptions, AR, "autoregressive ancestral sampling (KV cache)"))
