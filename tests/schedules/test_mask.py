import math

import pytest
import torch

from mgm.schedules import MASK_SCHEDULES, get_mask_schedule, mask_ratio, masked_counts, random_mask, ranks

NAMES = sorted(MASK_SCHEDULES)


@pytest.mark.parametrize("name", NAMES)
def test_gamma_endpoints_and_monotone(name):
    r = torch.linspace(0, 1, 1001, dtype=torch.float64)
    gamma = mask_ratio(r, name)
    assert gamma[0].item() == pytest.approx(1.0) and gamma[-1].item() == pytest.approx(0.0, abs=1e-12)
    assert bool((gamma[1:] <= gamma[:-1] + 1e-12).all()), "gamma must be non-increasing"
    assert bool(((gamma >= 0) & (gamma <= 1)).all())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_steps", [1, 2, 7, 12, 64])
def test_counts_reveal_every_token_exactly_once(name, num_steps):
    unknown = torch.tensor([0, 1, 5, 11, 12, 13, 100, 256, 1024])
    counts = masked_counts(unknown, num_steps, name)
    assert counts.shape == (len(unknown), num_steps)
    before = torch.cat([unknown[:, None], counts[:, :-1]], dim=1)
    revealed = before - counts
    assert bool((revealed >= 0).all()), "a step never re-masks"
    assert torch.equal(revealed.sum(1), unknown), "every unknown token is revealed exactly once"
    assert bool((counts[:, -1] == 0).all()), "nothing masked after the last step"
    # At least one per step while tokens remain: a step reveals 0 only once none are left.
    assert bool(((revealed >= 1) | (before == 0)).all())


def test_counts_follow_gamma_from_the_start_count():
    counts = masked_counts(torch.tensor([256]), 8, "cosine")[0]
    expected = [math.floor(256 * math.cos(math.pi / 2 * (t + 1) / 8) + 1e-9) for t in range(7)] + [0]
    assert counts.tolist() == expected


def test_counts_clamp_a_flat_schedule_to_one_per_step():
    counts = masked_counts(torch.tensor([10]), 5, lambda r: torch.where(r < 1, torch.ones_like(r), 0 * r))
    assert counts[0].tolist() == [9, 8, 7, 6, 0]


def test_unknown_schedule_lists_known_names():
    with pytest.raises(ValueError, match="cosine.*") as info:
        get_mask_schedule("bogus")
    assert "'bogus'" in str(info.value) and all(name in str(info.value) for name in NAMES)


def test_callable_schedule_is_accepted():
    def half(r):
        return (1 - r) / 2 + (r < 1e-9) * 0.5

    assert get_mask_schedule(half) is half
    assert mask_ratio(torch.tensor(0.5), half).item() == pytest.approx(0.25)


def test_bad_num_steps():
    with pytest.raises(ValueError, match="num_steps=0"):
        masked_counts(torch.tensor([4]), 0)


def test_random_mask_counts_match_the_drawn_ratio():
    g = torch.Generator().manual_seed(0)
    mask, ratio = random_mask((512, 2, 16), "cosine", generator=g)
    expected = torch.round(ratio * 32).clamp(1, 32)
    assert torch.equal(mask.flatten(1).sum(1).float(), expected)
    # The ratio gamma(r), r ~ U(0, 1), has mean 2 / pi under the cosine schedule (~0.637).
    assert abs(ratio.mean().item() - 2 / math.pi) < 0.04


def test_ranks_are_a_permutation_with_stable_ties():
    scores = torch.tensor([[0.5, 0.1, 0.5, float("inf"), 0.2]])
    assert ranks(scores).tolist() == [[2, 0, 3, 4, 1]]
