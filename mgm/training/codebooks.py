"""Codebook-usage measures shared by the VQ trainings (image VQ, audio codec, motion VQ)."""

from __future__ import annotations

import torch


def code_usage(codes: torch.Tensor, num_codes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """codes (any shape) over ``num_codes`` codes -> (share of each code [num_codes], perplexity).

    Perplexity = exp(entropy of the shares): 1 when one code takes everything, ``num_codes`` when
    all are used equally.
    """
    counts = torch.bincount(codes.flatten(), minlength=num_codes).float()
    share = counts / counts.sum().clamp_min(1)
    return share, share_perplexity(share)


def share_perplexity(share: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the code shares [num_codes] (summing to 1)."""
    return (-(share * share.clamp_min(1e-12).log()).sum()).exp()


def perplexity(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    return code_usage(codes, num_codes)[1]
