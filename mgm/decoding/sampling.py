"""Token sampling shared by every decoder: temperature, top-k, top-p, Gumbel noise, generators.

Sampling uses the Gumbel-max trick (argmax of logits / T + Gumbel noise), which draws exactly
from softmax(logits / T), needs no host sync and takes the caller's generator.

``generator`` is one ``torch.Generator`` (drawing for the whole batch at once) or a list with
one per sample (diffusers' convention): then row i of every draw comes from generator i alone,
so a sample is the same whatever batch it is decoded in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_TINY = 1e-20

Generators = torch.Generator | Sequence[torch.Generator] | None


def check_generator(generator: object, batch_size: int, device: torch.device) -> Generators:
    """None, a torch.Generator, or a list/tuple of ``batch_size`` of them, on ``device``'s type."""
    if generator is None:
        return None
    many = isinstance(generator, (list, tuple))
    gens = list(generator) if many else [generator]
    for g in gens:
        if not isinstance(g, torch.Generator):
            raise ValueError(
                f"generator: expected None, a torch.Generator or a list of one per sample, got {type(g).__name__}"
            )
        if g.device.type != device.type:
            raise ValueError(f"generator: on {g.device}, but decoding runs on {device}; create it there")
    if many and len(gens) != batch_size:
        raise ValueError(f"generator: a list of {len(gens)} generators for a batch of {batch_size} samples")
    return gens if many else generator


def select_generator(generator: Generators, rows) -> Generators:
    """The generator(s) of the sample rows ``rows`` of a batch: a slice gives a list, an int
    that sample's own generator (a single shared generator is returned as it is)."""
    if isinstance(generator, list):
        return generator[rows]
    return generator


def uniform(shape: tuple[int, ...], generator: Generators, device: torch.device) -> torch.Tensor:
    """U(0, 1) samples of ``shape``; with a list of generators, row i (dim 0) from generator i."""
    if isinstance(generator, list):
        return torch.stack([torch.rand(shape[1:], generator=g, device=device) for g in generator])
    return torch.rand(shape, generator=generator, device=device)


def gumbel_noise(shape: tuple[int, ...], generator: Generators, device: torch.device) -> torch.Tensor:
    """Standard Gumbel samples -log(-log(u)), u ~ U(0, 1), drawn from ``generator``."""
    u = uniform(shape, generator, device)
    neg_log_u = -torch.log(u.clamp_min(_TINY))
    return -torch.log(neg_log_u.clamp_min(_TINY))


def draw(probs: torch.Tensor, generator: Generators) -> torch.Tensor:
    """One token per row of ``probs`` [B, ..., V] (Gumbel-max on log-probabilities, so zero
    entries are never drawn; row b from generator b when there is one per sample)."""
    noise = gumbel_noise(probs.shape, generator, probs.device)
    return (probs.log() + noise).argmax(-1)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set logits outside the top-k and outside the top-p nucleus to -inf (last dim = vocab)."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the tokens ranked before it already cover top_p; the top one stays.
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_tokens(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: Generators = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw one token per row of ``logits[..., V]`` -> LongTensor[...]; temperature 0 is argmax.
    ``noise``: the Gumbel noise of ``logits``' shape to use instead of drawing it."""
    logits = filter_logits(logits.float(), top_k, top_p)
    if temperature == 0:
        return logits.argmax(-1)
    noise = gumbel_noise(logits.shape, generator, logits.device) if noise is None else noise
    return (logits / temperature + noise).argmax(-1)


def token_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The distribution ``sample_tokens`` draws from, as probabilities [..., V] (float64).

    softmax(filter(logits) / T); at temperature 0 a point mass on the argmax (ties: first index).
    """
    logits = filter_logits(logits.float(), top_k, top_p)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double()
    return (logits.double() / temperature).softmax(-1)
