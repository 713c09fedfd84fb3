"""The Frechet distance between Gaussians fitted to two feature sets (behind FID, FAD, motion FID).

d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64. The trace of the matrix
square root is taken as the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), which
is symmetric positive semi-definite, so it needs only ``eigh`` (no complex sqrtm, no NaNs from
tiny negative eigenvalues: they are clamped to 0).
"""

from __future__ import annotations

import torch


def _sym_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Means [F] and covariances [F, F] (tensors or arrays) -> the squared Frechet distance."""
    mu1, mu2 = torch.as_tensor(mu1, dtype=torch.float64), torch.as_tensor(mu2, dtype=torch.float64)
    sigma1, sigma2 = torch.as_tensor(sigma1, dtype=torch.float64), torch.as_tensor(sigma2, dtype=torch.float64)
    if mu1.shape != mu2.shape or mu1.dim() != 1:
        raise ValueError(f"means: shapes {tuple(mu1.shape)} and {tuple(mu2.shape)}; expected two vectors [F]")
    f = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if tuple(sigma.shape) != (f, f):
            raise ValueError(f"{name}: shape {tuple(sigma.shape)}; expected [{f}, {f}]")
    root = _sym_sqrt((sigma1 + sigma1.T) / 2)
    middle = root @ ((sigma2 + sigma2.T) / 2) @ root
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt)


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """features [M, F] -> (mean [F], unbiased covariance [F, F]) in float64."""
    features = features.double()
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features: shape {tuple(features.shape)}; expected [M >= 2, F]")
    return features.mean(0), torch.cov(features.T)
