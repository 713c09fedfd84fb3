import numpy as np
import pytest
import torch

from mgm.eval.frechet import FeatureStatistics, feature_statistics, frechet_distance


def _features(m, f, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(f, f, generator=g)
    return (torch.randn(m, f, generator=g) @ mix + shift).float()


def test_batches_and_merges_give_the_statistics_of_all_features():
    x = _features(1000, 12, 0, shift=1e4)  # a large offset: naive sum-of-squares would lose digits
    mean, cov = x.double().mean(0), torch.cov(x.double().T)
    batched = FeatureStatistics()
    for part in x.split(137):
        batched.update(part)
    # Two "processes", each over half, merged.
    left, right = FeatureStatistics().update(x[:400]), FeatureStatistics().update(x[400:])
    merged = left.merge(right)
    for stats in (batched, merged):
        got_mean, got_cov = stats.mean_covariance()
        assert stats.count == 1000
        torch.testing.assert_close(got_mean, mean, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(got_cov, cov, rtol=1e-9, atol=1e-9)
    scale = float(cov.trace())  # zero up to rounding, relative to the features' total variance
    assert 0.0 <= merged.distance(batched) <= 1e-9 * scale
    assert 0.0 <= frechet_distance(*feature_statistics(x), *merged.mean_covariance()) <= 1e-9 * scale


def test_save_load_round_trip_and_foreign_npz(tmp_path):
    stats = FeatureStatistics().update(_features(300, 8, 1))
    path = stats.save(tmp_path / "ref" / "stats.npz")
    loaded = FeatureStatistics.load(path)
    scale = float(stats.mean_covariance()[1].trace())
    assert loaded.count == 300 and 0.0 <= loaded.distance(stats) <= 1e-9 * scale
    loaded.merge(FeatureStatistics().update(_features(10, 8, 2)))  # counted: still mergeable
    assert loaded.count == 310
    with pytest.raises(FileExistsError):
        stats.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["stats.npz"]  # nothing half-written
    # A reference file from elsewhere with only mu / sigma (e.g. pytorch-fid's): comparable, not mergeable.
    mu, sigma = stats.mean_covariance()
    np.savez(tmp_path / "foreign.npz", mu=mu.numpy(), sigma=sigma.numpy())
    foreign = FeatureStatistics.load(tmp_path / "foreign.npz")
    assert 0.0 <= foreign.distance(stats) <= 1e-9 * scale
    with pytest.raises(ValueError, match="without a count"):
        foreign.update(_features(4, 8, 3))


def test_bad_input_is_refused():
    stats = FeatureStatistics().update(_features(5, 4, 0))
    with pytest.raises(ValueError, match="3 features per row; these statistics have 4"):
        stats.update(_features(5, 3, 0))
    with pytest.raises(ValueError, match=r"expected \[M >= 1, F\]"):
        stats.update(torch.zeros(3))
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStatistics().update(torch.zeros(1, 4)).mean_covariance()
    with pytest.raises(ValueError, match=r"\.npz"):
        stats.save("stats.txt")
