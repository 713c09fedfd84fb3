"""Token sampling shared by every decoder: temperature, top-k, top-p, Gumbel noise.

Sampling uses the Gumbel-max trick (argmax of logits / T + Gumbel noise), which draws exactly
from softmax(logits / T), needs no host sync and takes the caller's generator.
"""

from __future__ import annotations

import torch

_TINY = 1e-20


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not temperature >= 0:
        raise ValueError(f"temperature={temperature}: expected a number >= 0 (0 = greedy)")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k={top_k!r}: expected None or an integer >= 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r}: expected None or a number in (0, 1]")


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard Gumbel samples -log(-log(u)), u ~ U(0, 1), drawn from ``generator``."""
    u = torch.rand(shape, generator=generator, device=device)
    neg_log_u = -torch.log(u.clamp_min(_TINY))
    return -torch.log(neg_log_u.clamp_min(_TINY))


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
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per row of ``logits[..., V]`` -> LongTensor[...]; temperature 0 is argmax."""
    logits = filter_logits(logits.float(), top_k, top_p)
    if temperature == 0:
        return logits.argmax(-1)
    return (logits / temperature + gumbel_noise(logits.shape, generator, logits.device)).argmax(-1)


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
