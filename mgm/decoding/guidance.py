"""Classifier-free guidance as a wrapper around the model callable.

Guided logits are ``cond + scale * (cond - uncond)``, so scale 0 is plain conditional sampling
(and then only the conditional pass runs). The conditional and null rows go through the model
as ONE batched forward.
"""

from __future__ import annotations

import torch

from mgm.models.conditioning import Condition


class GuidedModel:
    """``GuidedModel(model, cond)(codes, scale) -> float32 logits``; one forward per call either way.

    Float32 whatever the model's output dtype (e.g. bfloat16 under autocast), so guidance and
    sampling do their arithmetic at full precision.
    """

    def __init__(self, model, cond: Condition | None):
        self.model = model
        self.cond = cond
        self.paired = None if cond is None else Condition.cat([cond, cond.null()])

    def __call__(self, codes: torch.Tensor, scale: float | torch.Tensor = 0.0) -> torch.Tensor:
        """``scale``: one number, or FloatTensor[B] with one per row (always a paired pass)."""
        if self.cond is None or (not isinstance(scale, torch.Tensor) and scale == 0):
            return self.model(codes, self.cond).float()
        both = self.model(torch.cat([codes, codes]), self.paired).float()
        return guide(*both.chunk(2), scale)


def guide(cond_logits: torch.Tensor, uncond_logits: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """cond + scale * (cond - uncond); entries the model rules out (-inf) stay -inf, not NaN.
    A tensor ``scale`` [B] holds one scale per row; one of more dimensions broadcasts as it is
    (e.g. [B, L, 1]: one per row and position)."""
    if isinstance(scale, torch.Tensor):
        scale = scale.to(cond_logits)
        scale = scale.view(-1, *[1] * (cond_logits.dim() - 1)) if scale.dim() == 1 else scale
    guided = cond_logits + scale * (cond_logits - uncond_logits)
    return torch.where(torch.isneginf(cond_logits), cond_logits, guided)


def check_guidance(guidance_scale: float, cond: Condition | None) -> None:
    """Guidance needs a condition (the scale itself is checked by SamplingOptions)."""
    if guidance_scale > 0 and (cond is None or cond.batch_size is None):
        raise ValueError(f"guidance_scale={guidance_scale} needs a condition to guide towards, but cond is empty")
