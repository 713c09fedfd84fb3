import pytest
import torch

from mgm.schedules.groups import (
    GroupPlan,
    get_group_plan,
    gipd_plan,
    group_training_mask,
    magnet_plan,
    soundstorm_plan,
    span_scores,
)


def test_builders_cover_every_codebook_once_in_order():
    for plan in (soundstorm_plan(4), magnet_plan(4), gipd_plan(4), gipd_plan(5, group_size=2, steps=(6, 3, 2))):
        flat = [k for g in plan.groups for k in g]
        assert flat == list(range(plan.num_codebooks))
        assert len(plan.steps) == len(plan.groups) and plan.nfe == sum(plan.steps)
    assert soundstorm_plan(4).steps == (16, 1, 1, 1)
    assert magnet_plan(4).steps == (20, 10, 10, 10) and magnet_plan(4).span == 3
    assert gipd_plan(4).groups == ((0, 1), (2, 3))


@pytest.mark.parametrize(
    "groups, steps, match",
    [
        (((0,), (2,)), (1, 1), "each exactly once"),
        (((1,), (0,)), (1, 1), "in order"),
        (((0,), (1,)), (1,), "one per group"),
        (((0,), (1,)), (1, 0), ">= 1"),
        ((), (), "non-empty"),
    ],
)
def test_bad_plans_are_refused(groups, steps, match):
    with pytest.raises(ValueError, match=match):
        GroupPlan(groups, steps)


def test_get_group_plan_checks_name_and_codebook_count():
    with pytest.raises(ValueError, match="known group plan"):
        get_group_plan("nope", 4)
    with pytest.raises(ValueError, match="K=3"):
        get_group_plan(soundstorm_plan(4), 3)
    assert get_group_plan("magnet", 2, steps=(5, 3)).steps == (5, 3)


def test_training_mask_gives_earlier_groups_and_masks_later_ones():
    plan = gipd_plan(4, group_size=2)
    torch.manual_seed(0)
    masked, target = group_training_mask((512, 4, 20), plan)
    assert (target & ~masked).sum() == 0, "loss only where masked"
    groups = plan.group_masks()
    for b in range(512):
        levels = target[b].any(-1)
        chosen = [g for g in range(2) if (levels & groups[g]).any()]
        assert len(chosen) == 1, "loss on exactly one group"
        g = chosen[0]
        assert not levels[~groups[g]].any()
        later = torch.arange(4) >= 2 * (g + 1)
        earlier = torch.arange(4) < 2 * g
        assert masked[b][later].all() and not masked[b][earlier].any()
        # Inside the chosen group, each codebook has at least one and at most all tokens masked.
        assert (target[b][groups[g]].sum(-1) >= 1).all()
    # Both groups are drawn about equally often (binomial, n=512: 3 sigma is about 34).
    first = target[:, :2].flatten(1).any(1).sum().item()
    assert abs(first - 256) < 40


def test_span_masking_masks_whole_aligned_spans():
    plan = magnet_plan(2, steps=(4, 2), span=3)
    torch.manual_seed(1)
    masked, target = group_training_mask((64, 2, 10), plan)
    spans = torch.nn.functional.pad(target.float(), (0, 2)).view(64, 2, 4, 3)
    partial = (spans.sum(-1) > 0) & (spans[..., :3].sum(-1) < 3)
    partial[..., -1] &= spans[..., -1, 0] == 0  # the last span has one real frame only
    assert not partial[..., :-1].any(), "a span is masked whole or not at all"


def test_span_scores_average_over_active_tokens():
    scores = torch.tensor([[[1.0, 3.0, 5.0, 7.0, 9.0]]])
    active = torch.tensor([[[True, True, False, True, True]]])
    out = span_scores(scores, active, 2)
    assert out[0, 0, :2].tolist() == [2.0, 2.0]
    assert out[0, 0, 2] == float("inf") and out[0, 0, 3] == 7.0 and out[0, 0, 4] == 9.0
    assert torch.equal(span_scores(scores, active, 1), scores.masked_fill(~active, float("inf")))
