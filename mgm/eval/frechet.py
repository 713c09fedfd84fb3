"""The Frechet distance between Gaussians fitted to two feature sets (behind FID, FAD, motion FID).

d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64. The trace of the matrix
square root is taken as the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), which
is symmetric positive semi-definite, so it needs only ``eigh`` (no complex sqrtm, no NaNs from
tiny negative eigenvalues: they are clamped to 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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
    distance = float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt)
    # A Frechet distance is never negative; rounding in eigh (which differs between BLAS builds)
    # can leave a tiny negative value for (nearly) identical statistics.
    return max(distance, 0.0)


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """features [M, F] -> (mean [F], unbiased covariance [F, F]) in float64."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features: shape {tuple(getattr(features, 'shape', ()))}; expected [M >= 2, F]")
    return FeatureStatistics().update(features).mean_covariance()


class FeatureStatistics:
    """Mean and covariance of features seen in batches, in float64, without keeping the features.

    Holds the count, the mean and the scatter matrix (sum of outer products of deviations); batches
    and other accumulators (e.g. one per process) combine by Chan et al.'s pairwise update, which
    stays accurate where sum-of-squares formulas cancel. ``save`` writes ``mu`` / ``sigma`` (the
    unbiased covariance, the layout pytorch-fid's reference ``.npz`` files use) plus ``count``.
    """

    def __init__(self, num_features: int | None = None):
        self.count = 0
        self.counted = True  # False for loaded statistics that did not record their count
        self.mean = None if num_features is None else torch.zeros(num_features, dtype=torch.float64)
        self.scatter = None if num_features is None else torch.zeros(num_features, num_features, dtype=torch.float64)

    @property
    def num_features(self) -> int | None:
        return None if self.mean is None else self.mean.shape[0]

    def update(self, features: torch.Tensor) -> FeatureStatistics:
        """Add a batch of features [M, F]; returns self."""
        if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] == 0:
            raise ValueError(f"features: shape {tuple(getattr(features, 'shape', ()))}; expected [M >= 1, F]")
        if self.num_features not in (None, features.shape[1]):
            got, have = features.shape[1], self.num_features
            raise ValueError(f"features: {got} features per row; these statistics have {have}")
        x = features.detach().to("cpu", torch.float64)
        mean = x.mean(0)
        centred = x - mean
        return self._combine(x.shape[0], mean, centred.T @ centred)

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Add another accumulator's features (e.g. from another process); returns self."""
        if other.count == 0:
            return self
        if not other.counted:
            raise ValueError("other: loaded without a count, so it cannot be merged")
        if self.num_features not in (None, other.num_features):
            raise ValueError(f"other: {other.num_features} features; these statistics have {self.num_features}")
        return self._combine(other.count, other.mean, other.scatter)

    def _combine(self, count: int, mean: torch.Tensor, scatter: torch.Tensor) -> FeatureStatistics:
        if not self.counted:
            raise ValueError("these statistics were loaded without a count: they can be compared, not added to")
        if self.count == 0:
            self.count, self.mean, self.scatter = count, mean.clone(), scatter.clone()
            return self
        total = self.count + count
        delta = mean - self.mean
        self.scatter = self.scatter + scatter + torch.outer(delta, delta) * (self.count * count / total)
        self.mean = self.mean + delta * (count / total)
        self.count = total
        return self

    def mean_covariance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean [F], unbiased covariance [F, F]), float64; needs at least 2 features."""
        if self.count < 2:
            raise ValueError(f"statistics of {self.count} feature rows; a covariance needs at least 2")
        return self.mean.clone(), self.scatter / (self.count - 1)

    def distance(self, other: FeatureStatistics) -> float:
        """The squared Frechet distance between these statistics and ``other``'s."""
        return frechet_distance(*self.mean_covariance(), *other.mean_covariance())

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"path={str(path)!r}: expected a .npz file")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        mu, sigma = self.mean_covariance()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".partial.npz")
        np.savez(tmp, mu=mu.numpy(), sigma=sigma.numpy(), count=np.int64(self.count))
        os.replace(tmp, path)  # never a half-written file under the final name
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStatistics:
        """Statistics saved by ``save``, or any ``.npz`` with ``mu`` and ``sigma`` (count unknown: the
        result can be compared but not merged)."""
        with np.load(path, allow_pickle=False) as data:
            missing = {"mu", "sigma"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: no {sorted(missing)} arrays (found {data.files})")
            mu, sigma = torch.from_numpy(data["mu"]).double(), torch.from_numpy(data["sigma"]).double()
            count = int(data["count"]) if "count" in data.files else 0
        if mu.dim() != 1 or tuple(sigma.shape) != (mu.shape[0], mu.shape[0]):
            raise ValueError(f"{path}: mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)}; expected [F] and [F, F]")
        stats = cls()
        stats.counted = count > 0
        # Without a count, a stand-in count of 2 keeps the covariance as given (scatter = sigma).
        stats.count = count if stats.counted else 2
        stats.mean, stats.scatter = mu, sigma * (stats.count - 1)
        return stats
