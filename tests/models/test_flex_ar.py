"""FlexARTransformer: teacher forcing and cached group steps agree; queries see what they should."""

from __future__ import annotations

import pytest
import torch

from mgm.models import ARTransformer, Condition, FlexARTransformer, KVCache
from mgm.models.flex_ar import warm_start_from_ar
from mgm.training.flex_ar import training_groups

SIZES = [1, 2, 3, 3, 3]  # groups of the 12 positions of a 3x4 grid


def tiny(positions="learned", group_attention=True, seed=0) -> FlexARTransformer:
    torch.manual_seed(seed)
    model = FlexARTransformer([12], [3, 4], dim=32, depth=2, num_heads=2, num_classes=3, positions=positions,
                              group_attention=group_attention)  # fmt: skip
    with torch.no_grad():  # a query vector and tables that matter, so a wrong mask shows
        model.query_emb.normal_(std=1.0)
        model.token_emb.weight.mul_(20)
        if positions == "learned":
            model.pos_emb.mul_(20)
            model.target_emb.mul_(20)
    return model.eval()


def ordered_batch(seed=1, b=2, n=12):
    g = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(n, generator=g) for _ in range(b)])
    codes = torch.randint(12, (b, n), generator=g)
    return codes.gather(1, order), order


def groups_of(sizes):
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


def cached_steps(model, tokens, order, sizes, cond, masks=None):
    """forward_group over the groups in turn: feed group t - 1, ask group t."""
    cache, out, start, prev = KVCache(), [], 0, slice(0, 0)
    for size in sizes:
        now = slice(start, start + size)
        out.append(model.forward_group(tokens[:, prev], order[:, prev], order[:, now], cond, cache))
        prev, start = now, start + size
    return torch.cat(out, 1), cache


@pytest.mark.parametrize("positions", ["learned", "rotary"])
@pytest.mark.parametrize("group_attention", [True, False])
def test_teacher_forcing_equals_the_cached_group_steps(positions, group_attention):
    model = tiny(positions, group_attention)
    tokens, order = ordered_batch()
    cond = Condition(labels=torch.tensor([0, 2]))
    full = model(tokens, order, groups_of(SIZES), cond)
    steps, cache = cached_steps(model, tokens, order, SIZES, cond)
    scale = full.abs().max()
    assert full.shape == (2, 12, 12) and scale > 0.1
    assert (full - steps).abs().max() <= 1e-5 * scale
    # The cache grew by one group per step: the prefix and every group but the last.
    assert cache.keys[0].shape[2] == 1 + sum(SIZES[:-1]) and cache.slot_mask is None


def test_a_query_sees_earlier_groups_only_and_its_group_mates_positions_with_group_attention():
    tokens, order = ordered_batch()
    groups = groups_of(SIZES)
    for group_attention in (True, False):
        model = tiny(group_attention=group_attention)
        base = model(tokens, order, groups)
        later = tokens.clone()
        later[:, 6] = (later[:, 6] + 1) % 12  # slot 6 is in group 3
        changed = (model(later, order, groups) - base).abs().amax(-1)  # (B, slots)
        assert torch.all(changed[:, :9] == 0), "groups 0-3 do not see a token of group 3"
        assert torch.all(changed[:, 9:] > 1e-4), "group 4 sees it"
        # With group attention a query also knows its mates' target positions: moving slot 11's
        # target (group 4; no query sees its token) changes its mates' answers, and only then.
        moved = order.clone()
        moved[:, 11] = order[:, 0]
        other = model(tokens, moved, groups)
        mates = (other[:, 9:11] - base[:, 9:11]).abs().amax()
        assert (mates > 0) == group_attention, "a masked key changes nothing, bit for bit"


def test_padded_group_steps_equal_each_row_alone():
    model = tiny()
    tokens, order = ordered_batch(b=2)
    cond = Condition(labels=torch.tensor([1, 2]))
    # Row 0 feeds 5 given tokens then asks 3 targets; row 1 feeds 2 and asks 4 (padded to 5 and 4).
    cache = KVCache()
    feed_mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    target_mask = torch.tensor([[True, True, True, False], [True] * 4])
    targets = torch.stack([order[0, 5:9], order[1, 2:6]])
    both = model.forward_group(tokens[:, :5], order[:, :5], targets, cond, cache, feed_mask, target_mask)
    assert cache.slot_mask is not None and cache.slot_mask.tolist()[1] == [True, True, True] + [False] * 3
    for row, (fed, asked) in enumerate(((5, 3), (2, 4))):
        one = slice(row, row + 1)
        alone = model.forward_group(tokens[one, :fed], order[one, :fed], targets[one, :asked], cond.select(one))
        assert (both[row, :asked] - alone[0]).abs().max() <= 1e-5 * alone.abs().max()


def test_save_load_round_trip_and_named_errors(tmp_path):
    model = tiny(positions="rotary")
    folder = model.save_pretrained(tmp_path / "flex")
    loaded = FlexARTransformer.from_pretrained(folder).eval()
    tokens, order = ordered_batch()
    assert torch.equal(model(tokens, order, groups_of(SIZES)), loaded(tokens, order, groups_of(SIZES)))
    with pytest.raises(ValueError, match=r"positions: values in \[1, 12\]; expected grid positions in \[0, 12\)"):
        model(tokens, torch.where(order == 0, 12, order), groups_of(SIZES))
    with pytest.raises(ValueError, match="groups: shape"):
        model(tokens, order, groups_of([1, 2]))
    with pytest.raises(ValueError, match="positions='alibi'"):
        FlexARTransformer([12], [3, 4], positions="alibi")
    with pytest.raises(ValueError, match="one codebook"):
        FlexARTransformer([12, 12], [3, 4])
    with pytest.raises(ValueError, match="num_classes=0"):
        unconditional = FlexARTransformer([12], [3, 4], dim=32, depth=1, num_heads=2)
        unconditional.forward_group(tokens[:, :0], order[:, :0], order[:, :2], Condition(labels=torch.tensor([0, 1])))


def test_warm_start_copies_the_ar_weights_and_names_every_mismatch():
    torch.manual_seed(0)
    ar = ARTransformer(vocab_size=12, max_length=16, dim=32, depth=2, num_heads=2, num_classes=3)
    model = FlexARTransformer([12], [3, 4], dim=32, depth=2, num_heads=2, num_classes=3)
    warm_start_from_ar(model, ar)
    assert torch.equal(model.blocks[1].mlp.fc.weight, ar.blocks[1].mlp.fc.weight)
    assert torch.equal(model.pos_emb, ar.pos_emb[:12]) and torch.equal(model.target_emb, ar.pos_emb[:12])
    assert torch.equal(model.head.weight, ar.head.weight)
    wrong = FlexARTransformer([16], [3, 4], dim=32, depth=1, num_heads=2, num_classes=3)
    with pytest.raises(ValueError, match=r"depth: flexible 1 vs AR 2; vocabulary: flexible 16 vs AR 12"):
        warm_start_from_ar(wrong, ar)


def test_training_groups_follow_the_decoders_sizes():
    from mgm.schedules import masked_counts

    for n, t in ((64, 12), (64, 2), (12, 12), (12, 5)):
        groups = training_groups(n, t)
        sizes = groups.bincount(minlength=t)
        left = masked_counts(torch.tensor([n]), t)[0]
        assert sizes.tolist() == (n - left).diff(prepend=torch.tensor([0])).tolist()
        assert torch.all(groups.diff() >= 0) and int(sizes.min()) >= 1


def test_flex_training_continues_from_a_flex_folder_and_checks_its_arguments(tmp_path):
    from mgm.training import FlexARTraining

    source = tiny()
    folder = source.save_pretrained(tmp_path / "flex")
    fresh = FlexARTransformer([12], [3, 4], dim=32, depth=2, num_heads=2, num_classes=3)
    system = FlexARTraining(fresh, group_steps=(2, 5), decode_order_share=0.5, init_from=str(folder))
    assert torch.equal(fresh.query_emb, source.query_emb) and torch.equal(fresh.head.weight, source.head.weight)
    codes = torch.randint(12, (4, 1, 12))
    loss, accuracy = system.loss({"codes": codes, "labels": torch.tensor([0, 1, 2, 0])}, train=True)
    assert loss.isfinite() and 0 <= accuracy <= 1
    other = FlexARTransformer([12], [3, 4], dim=32, depth=1, num_heads=2, num_classes=3)
    with pytest.raises(ValueError, match="differs from the model's"):
        FlexARTraining(other, init_from=str(folder))
    with pytest.raises(ValueError, match=r"group_steps=\[2, 13\]: at most N=12 groups"):
        FlexARTraining(fresh, group_steps=(2, 13))
    with pytest.raises(ValueError, match="decode_order_share=1.5"):
        FlexARTraining(fresh, decode_order_share=1.5)
