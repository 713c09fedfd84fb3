"""Keeping state in step across DDP ranks where DDP itself does not.

DDP averages gradients, so parameters trained by gradients stay equal on every rank. State moved
by other means drifts apart: codebooks that follow EMAs of each rank's own batch, dead codes
restarted on each rank's own latents, a draw that every rank must make alike (quantizer dropout).
The VQ trainings call these after such a step. In one process (no process group) each is a no-op,
so single-device training is unchanged bit for bit.

Usage statistics are averaged over ranks rather than summed, so an EMA count keeps the scale of
one rank's batch and the thresholds written for single-device training mean the same under DDP.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Processes in the default group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def mean_over_ranks_(tensor: torch.Tensor) -> torch.Tensor:
    """Replace ``tensor`` (in place) by its mean over the ranks; returns it. Every rank must call it."""
    size = world_size()
    if size > 1:
        dist.all_reduce(tensor)
        tensor.div_(size)
    return tensor


@torch.no_grad()
def broadcast_from_first_(*tensors: torch.Tensor) -> None:
    """Overwrite each tensor (in place) with rank 0's copy. Every rank must call it with the same tensors."""
    if world_size() > 1:
        for tensor in tensors:
            dist.broadcast(tensor, src=0)
