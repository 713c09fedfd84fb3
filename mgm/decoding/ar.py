"""Autoregressive ancestral sampling with a KV cache.

One forward per token: the first call feeds the given prefix (or nothing) and fills the cache;
each later call feeds the token just drawn. Classifier-free guidance runs the conditional and
null rows as one batch and guides the logits before sampling.
"""

from __future__ import annotations

import torch

from mgm.decoding.canvas import check_positive_int, resolve_device
from mgm.decoding.guidance import check_guidance_args, guide
from mgm.decoding.result import DecodeResult
from mgm.decoding.sampling import check_sampling_args, sample_tokens
from mgm.models.ar_transformer import ARCache
from mgm.models.conditioning import Condition


class GuidedAR:
    """``model(tokens, cond, cache)`` with CFG: [cond; null] rows in one batch when guiding."""

    def __init__(self, model, cond: Condition | None, guidance_scale: float):
        self.model, self.scale = model, guidance_scale
        self.paired = guidance_scale > 0 and cond is not None
        self.cond = Condition.cat([cond, cond.null()]) if self.paired else cond

    def __call__(self, tokens: torch.Tensor, cache: ARCache | None) -> torch.Tensor:
        if not self.paired:
            return self.model(tokens, self.cond, cache=cache)
        logits = self.model(torch.cat([tokens, tokens]), self.cond, cache=cache)
        return guide(*logits.chunk(2), self.scale)


def check_ar_args(model, length, batch_size, cond, temperature, top_k, top_p, guidance_scale, prefix):
    """Shared checks of the AR decoders; returns (batch size, prefix LongTensor[B, L0] or None)."""
    check_positive_int(length, "length")
    check_sampling_args(temperature, top_k, top_p)
    check_guidance_args(guidance_scale, cond)
    max_length = getattr(model, "max_length", None)
    if max_length is not None and length > max_length:
        raise ValueError(f"length={length}: the model takes at most {max_length} tokens")
    if prefix is not None:
        if not isinstance(prefix, torch.Tensor) or prefix.dim() != 2:
            raise ValueError(f"prefix: expected a LongTensor [B, L0], got {getattr(prefix, 'shape', prefix)}")
        if prefix.shape[1] > length:
            raise ValueError(f"prefix: {prefix.shape[1]} tokens is longer than length={length}")
        if batch_size is not None and batch_size != prefix.shape[0]:
            raise ValueError(f"batch_size={batch_size} does not match the prefix's batch {prefix.shape[0]}")
        batch_size = prefix.shape[0]
    check_positive_int(batch_size, "batch_size")
    vocab = getattr(model, "vocab_size", None)
    if prefix is not None and vocab is not None and prefix.numel() and (prefix.min() < 0 or prefix.max() >= vocab):
        raise ValueError(f"prefix: tokens must lie in [0, {vocab - 1}]")
    if cond is not None and cond.batch_size not in (None, batch_size):
        raise ValueError(f"cond: batch size {cond.batch_size} does not match batch_size={batch_size}")
    return batch_size, prefix


@torch.inference_mode()
def ar_decode(
    model,
    length: int,
    batch_size: int | None = 4,
    cond: Condition | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    guidance_scale: float = 0.0,
    generator: torch.Generator | None = None,
    *,
    prefix: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> DecodeResult:
    """Sample ``codes[B, length]`` token by token from ``model(tokens, cond, cache=...)``.

    ``prefix`` [B, L0]: given first tokens (kept). ``nfe``: forward passes (one per drawn token).
    """
    batch_size, prefix = check_ar_args(
        model, length, batch_size, cond, temperature, top_k, top_p, guidance_scale, prefix
    )
    device = resolve_device(model, prefix, device)
    guided = GuidedAR(model, None if cond is None else cond.to(device), guidance_scale)
    tokens = torch.zeros(batch_size, 0, dtype=torch.long, device=device) if prefix is None else prefix.to(device)
    cache, feed, nfe = ARCache(), tokens, 0
    while tokens.shape[1] < length:
        logits = guided(feed, cache)[:, -1]  # (B, V): the next token's distribution
        nfe += 1
        feed = sample_tokens(logits, temperature, top_k, top_p, generator)[:, None]
        tokens = torch.cat([tokens, feed], 1)
    return DecodeResult(codes=tokens, nfe=nfe)
