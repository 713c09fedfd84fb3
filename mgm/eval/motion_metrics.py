"""The HumanML3D evaluation measures on embeddings, and MPJPE on joints.

Given a text-motion evaluator's embeddings (text [M, E] and motion [M, E], row i of each from the
same pair), as in Guo et al.'s protocol that T2M-GPT, MoMask and MMM report:
- ``r_precision``: rows are cut into batches of ``batch_size`` (32); within a batch each motion
  ranks the batch's texts by Euclidean distance; top-k = share of motions whose own text is among
  the k nearest (k = 1, 2, 3).
- ``matching_score`` (MM-Dist): the mean distance between each motion and its own text.
- ``diversity``: the mean distance between ``num_pairs`` (300) random pairs of motion embeddings.
- the FID is ``frechet_distance`` of real and generated motion embeddings (``mgm.eval.frechet``).
MPJPE is the mean joint position error in millimetres.
"""

from __future__ import annotations

import torch


def _check_pairs(text: torch.Tensor, motion: torch.Tensor) -> None:
    if text.dim() != 2 or motion.shape != text.shape:
        raise ValueError(f"text {tuple(text.shape)}, motion {tuple(motion.shape)}: expected two [M, E] embeddings")


def r_precision(text: torch.Tensor, motion: torch.Tensor, top_k: int = 3, batch_size: int = 32) -> list[float]:
    """[top-1, ..., top-``top_k``] retrieval precision over whole batches of ``batch_size`` pairs."""
    _check_pairs(text, motion)
    num_batches = len(text) // batch_size
    if num_batches == 0:
        raise ValueError(f"{len(text)} pairs: R-precision needs at least batch_size={batch_size}")
    hits = torch.zeros(top_k)
    for b in range(num_batches):
        rows = slice(b * batch_size, (b + 1) * batch_size)
        distances = torch.cdist(motion[rows].double(), text[rows].double())  # (batch, batch)
        rank = (distances < distances.diagonal()[:, None]).sum(1)  # texts nearer than its own
        hits += torch.stack([(rank < k).double().sum() for k in range(1, top_k + 1)]).float()
    return (hits / (num_batches * batch_size)).tolist()


def matching_score(text: torch.Tensor, motion: torch.Tensor) -> float:
    """MM-Dist: mean Euclidean distance between each motion embedding and its own text's."""
    _check_pairs(text, motion)
    return float((motion.double() - text.double()).norm(dim=-1).mean())


def diversity(motion: torch.Tensor, num_pairs: int = 300, generator: torch.Generator | None = None) -> float:
    """Mean distance between ``num_pairs`` random pairs of motion embeddings [M, E] (M > num_pairs)."""
    if motion.dim() != 2 or len(motion) <= num_pairs:
        raise ValueError(f"motion: shape {tuple(motion.shape)}; expected [M, E] with M > num_pairs={num_pairs}")
    first = torch.randperm(len(motion), generator=generator)[:num_pairs]
    second = torch.randperm(len(motion), generator=generator)[:num_pairs]
    return float((motion[first].double() - motion[second].double()).norm(dim=-1).mean())


def mpjpe(predicted: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor | None = None) -> float:
    """Mean per-joint position error in millimetres of joints [B, T, J, 3] (metres); ``lengths`` [B]
    counts only each clip's first frames."""
    if predicted.shape != target.shape or predicted.dim() != 4 or predicted.shape[-1] != 3:
        raise ValueError(f"predicted {tuple(predicted.shape)}, target {tuple(target.shape)}: expected [B, T, J, 3]")
    error = (predicted - target).norm(dim=-1).mean(-1)  # (B, T)
    if lengths is None:
        return float(error.mean() * 1000)
    real = torch.arange(error.shape[1])[None] < lengths.to(error.device)[:, None]
    return float(error[real].mean() * 1000)
