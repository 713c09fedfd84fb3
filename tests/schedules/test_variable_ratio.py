"""Training masks with a narrowed ratio range (MaskViT's variable ratio) and given slices."""

import pytest
import torch

from mgm.schedules import given_slices, random_mask
from mgm.tokens import TokenSpec


def test_maskvit_ratio_is_uniform_between_half_and_all():
    g = torch.Generator().manual_seed(0)
    mask, ratio = random_mask((4000, 1, 64), "linear", generator=g, ratio_range=(0.5, 1.0))
    assert float(ratio.min()) >= 0.5 and float(ratio.max()) <= 1.0
    # U(0.5, 1): mean 0.75, sd 0.144; with n = 4000 the mean's standard error is 0.0023
    assert abs(float(ratio.mean()) - 0.75) < 0.01 and abs(float(ratio.std()) - 0.1443) < 0.01
    counts = mask.sum((1, 2)).float()
    assert bool(((counts - ratio * 64).abs() <= 0.5 + 1e-6).all())


def test_given_positions_are_never_masked_and_the_ratio_counts_the_rest():
    spec = TokenSpec((16,), (8, 2, 2))
    g = torch.Generator().manual_seed(1)
    given = given_slices(500, spec, share=0.6, slices=(1, 6), both_ends_share=0.5, generator=g)
    mask, ratio = random_mask((500, 1, 32), "cosine", generator=g, given=given)
    assert not bool((mask & given).any())
    free = (~given).sum((1, 2))
    expected = torch.minimum(torch.round(ratio * free).long().clamp_min(1), free)
    assert torch.equal(mask.sum((1, 2)), expected)


def test_given_slices_are_whole_leading_and_trailing_frames():
    spec = TokenSpec((16,), (8, 2, 2))
    g = torch.Generator().manual_seed(2)
    given = given_slices(4000, spec, share=0.6, slices=(1, 6), both_ends_share=0.5, generator=g)
    frames = given[:, 0].view(4000, 8, 4)
    assert bool((frames.all(-1) == frames.any(-1)).all())  # a frame is given whole or not at all
    per_frame = frames.any(-1)  # (B, 8)
    lead = per_frame.int().cumprod(1).sum(1)
    trail = per_frame.flip(1).int().cumprod(1).sum(1)
    with_context = per_frame.any(1)
    assert bool((per_frame.sum(1) == lead + trail).all())  # only a leading and a trailing run
    assert bool((per_frame.sum(1) < 8).all())  # some frame is always left to predict
    assert bool((lead[with_context] >= 1).all()) and int(lead.max()) <= 6
    share = with_context.float().mean()
    both = (trail[with_context] > 0).float().mean()
    # n = 4000 and about 2400 with context: standard errors 0.008 and 0.010
    assert abs(float(share) - 0.6) < 0.03 and abs(float(both) - 0.5) < 0.04


@pytest.mark.parametrize("ratio_range", [(0.6, 0.5), (-0.1, 1.0), (0.5,), "half"])
def test_bad_ratio_ranges_are_named(ratio_range):
    with pytest.raises(ValueError, match="ratio_range"):
        random_mask((2, 1, 4), ratio_range=ratio_range)


def test_bad_given_slices_are_named():
    spec = TokenSpec((16,), (4, 2))
    with pytest.raises(ValueError, match="slices"):
        given_slices(2, spec, 0.5, (1, 4))
    with pytest.raises(ValueError, match="share"):
        given_slices(2, spec, 1.5, (1, 2))
