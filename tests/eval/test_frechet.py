import numpy as np
import pytest
import torch

from mgm.eval.frechet import feature_statistics, frechet_distance


def _random_psd(f, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(f, f, generator=g, dtype=torch.float64)
    return a @ a.T / f + 0.01 * torch.eye(f, dtype=torch.float64)


def test_diagonal_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    v1, v2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()
    assert frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2)) == pytest.approx(float(expected), abs=1e-9)


def test_against_the_general_eigenvalues_of_the_product_identity_and_symmetry():
    # tr((S1 S2)^(1/2)) = sum of square roots of the (real, >= 0) eigenvalues of the non-symmetric S1 S2,
    # computed here by the general eigen-solver: a different route from the implementation's.
    s1, s2 = _random_psd(16, 0), _random_psd(16, 1)
    mu1, mu2 = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    eigenvalues = np.linalg.eigvals((s1 @ s2).numpy())
    assert np.abs(eigenvalues.imag).max() < 1e-9 and eigenvalues.real.min() > 0
    covmean_trace = np.sqrt(eigenvalues.real).sum()
    expected = float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * covmean_trace)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-6)
    # Identical statistics: zero up to rounding, never negative (any BLAS); scaled to the covariance.
    assert 0.0 <= frechet_distance(mu1, s1, mu1, s1) <= 1e-9 * float(s1.trace())


def test_never_negative_for_identical_rank_deficient_statistics():
    # A rank-deficient covariance (fewer samples than features): eigh's rounding of the zero
    # eigenvalues once gave -9e-07 here on one BLAS; the distance is clamped at 0.
    x = torch.randn(5, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    mu, sigma = feature_statistics(x)
    assert 0.0 <= frechet_distance(mu, sigma, mu, sigma) <= 1e-9 * float(sigma.trace())


def test_statistics_and_bad_shapes():
    features = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    mu, sigma = feature_statistics(features)
    assert mu.shape == (4,) and sigma.shape == (4, 4) and torch.allclose(sigma, sigma.T)
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(mu, sigma, mu, sigma[:3, :3])
    with pytest.raises(ValueError, match="M >= 2"):
        feature_statistics(features[:1])


def test_against_scipy_sqrtm():
    from scipy import linalg

    for seed in range(3):
        s1, s2 = _random_psd(24, 10 + seed), _random_psd(24, 20 + seed)
        mu1, mu2 = torch.randn(2, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        covmean = linalg.sqrtm(s1.numpy() @ s2.numpy())
        expected = float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * np.trace(covmean.real))
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
