import pytest
import torch

from mgm.eval.motion_metrics import diversity, matching_score, mpjpe, r_precision


def test_r_precision_of_perfect_and_shuffled_pairs():
    g = torch.Generator().manual_seed(0)
    text = torch.randn(64, 8, generator=g)
    assert r_precision(text, text + 0.01 * torch.randn(64, 8, generator=g)) == [1.0, 1.0, 1.0]
    # Against unrelated texts, top-k is about k / 32 (chance within a batch of 32).
    chance = r_precision(torch.randn(3200, 8, generator=g), torch.randn(3200, 8, generator=g))
    for k, value in enumerate(chance, start=1):
        assert abs(value - k / 32) < 0.02, chance
    # Hand-made batch of 2: motion 0 is nearer text 1 than its own.
    text, motion = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.9], [1.0]])
    assert r_precision(text, motion, top_k=2, batch_size=2) == [0.5, 1.0]


def test_matching_diversity_and_mpjpe():
    text, motion = torch.zeros(4, 2), torch.tensor([[3.0, 4.0]] * 4)
    assert matching_score(text, motion) == pytest.approx(5.0)
    assert diversity(torch.ones(400, 3), num_pairs=300) == 0
    spread = torch.cat([torch.zeros(500, 1), torch.ones(500, 1)])
    assert diversity(spread, generator=torch.Generator().manual_seed(0)) == pytest.approx(0.5, abs=0.1)
    joints = torch.zeros(2, 5, 22, 3)
    shifted = joints.clone()
    shifted[..., 1] += 0.01  # 1 cm everywhere
    shifted[1, 3:] += 1.0  # frames past clip 1's length do not count
    assert mpjpe(shifted, joints, lengths=torch.tensor([5, 3])) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="num_pairs=300"):
        diversity(torch.ones(10, 3))
    with pytest.raises(ValueError, match="batch_size=32"):
        r_precision(torch.ones(10, 3), torch.ones(10, 3))
