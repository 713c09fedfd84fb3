"""ARPG and LPD decoding: the law they sample, the groups they decode, editing, the orders.

The conformance suite (test_conformance.py) already holds both methods to the masked decoders'
contract: nothing left masked, given tokens unchanged, a seed reproduces, samples ignore the batch
split, guidance is one batched pass, bad options fail first.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from mgm.decoding import arpg_decode, lpd_decode
from mgm.decoding.parallel_ar import group_bounds
from mgm.models import Condition, FlexARTransformer
from mgm.schedules import masked_counts
from mgm.schedules.orders import locality_order
from mgm.training.flex_ar import training_groups


@pytest.fixture(scope="module")
def model() -> FlexARTransformer:
    """A tiny model taught a dependent law on 1x3 grids (x1 = x0 and x2 = x0 + 1 mod 3, each with
    probability 0.7, else uniform), in random orders and groups: its conditionals depend on the
    context, so a decoder that fed the cache wrongly would sample another law."""
    torch.manual_seed(3)
    model = FlexARTransformer([3], [3], dim=16, depth=1, num_heads=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    with torch.enable_grad():
        for _ in range(150):
            x0 = torch.randint(3, (128,), generator=g)
            noise = lambda: torch.randint(3, (128,), generator=g)  # noqa: E731
            x1 = torch.where(torch.rand(128, generator=g) < 0.7, x0, noise())
            x2 = torch.where(torch.rand(128, generator=g) < 0.7, (x0 + 1) % 3, noise())
            codes = torch.stack([x0, x1, x2], 1)
            order = torch.rand(128, 3, generator=g).argsort(1)
            groups = training_groups(3, int(torch.randint(1, 4, (1,), generator=g)))
            tokens = codes.gather(1, order)
            loss = torch.nn.functional.cross_entropy(model(tokens, order, groups).flatten(0, 1), tokens.flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def exact_law(model, order: list[int], sizes: list[int], temperature: float = 1.0) -> dict:
    """Probability of every code sequence when the positions are decoded in ``order``, ``sizes``
    tokens at a time, each group drawn from the model's conditionals given the earlier groups."""
    n, v = model.spec.num_positions, model.vocab_size
    groups = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    seqs = torch.tensor(list(itertools.product(range(v), repeat=n)))  # (V^N, N) in grid order
    positions = torch.tensor(order).expand(len(seqs), n)
    tokens = seqs.gather(1, positions)
    with torch.no_grad():
        logp = (model(tokens, positions, groups) / temperature).log_softmax(-1)
    p = logp.gather(-1, tokens[..., None])[..., 0].sum(1).exp()
    return {tuple(s.tolist()): float(q) for s, q in zip(seqs, p)}


def total_variation(codes: torch.Tensor, law: dict) -> float:
    counts = {}
    for row in codes.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    n = len(codes)
    return 0.5 * sum(abs(counts.get(k, 0) / n - p) for k, p in law.items())


@pytest.mark.parametrize("num_steps, sizes", [(3, [1, 1, 1]), (2, [1, 2])])
def test_lpd_samples_the_models_grouped_chain_rule(model, num_steps, sizes):
    """TV between 20000 samples and the exact law of the model's conditionals over LPD's order
    (0, 2, 1 on a 1x3 grid), groups of the cosine schedule's sizes. Noise: about 0.01;
    threshold 0.03. The test bites: the conditionals depend on the context (TV between two
    contexts' laws > 0.2) and sampling at temperature 2 is far off (> 0.1)."""
    order = locality_order((3,)).tolist()
    assert order == [0, 2, 1]
    assert (3 - masked_counts(torch.tensor([3]), num_steps)[0]).diff(prepend=torch.tensor([0])).tolist() == sizes
    law = exact_law(model, order, sizes)
    codes = lpd_decode(model, model.spec, batch_size=20000, num_steps=num_steps,
                       generator=torch.Generator().manual_seed(0)).codes[:, 0]  # fmt: skip
    assert total_variation(codes, law) < 0.03
    hot = lpd_decode(model, model.spec, batch_size=20000, num_steps=num_steps, temperature=2.0,
                     generator=torch.Generator().manual_seed(0)).codes[:, 0]  # fmt: skip
    assert total_variation(hot, law) > 0.1
    # The context matters: the law of the position decoded last, given two different first tokens.
    last = order[-1]
    given = [{k: p for k, p in law.items() if k[order[0]] == a} for a in (0, 1)]
    marginals = [torch.tensor([sum(p for k, p in g.items() if k[last] == x) for x in range(3)]) for g in given]
    marginals = [m / m.sum() for m in marginals]
    assert 0.5 * (marginals[0] - marginals[1]).abs().sum() > 0.2


def test_arpg_with_groups_of_one_samples_the_random_order_chain_rule(model):
    """ARPG's order is uniform over permutations, so its law is the mean of the 6 orders' laws
    (TV threshold 0.03 as above)."""
    laws = [exact_law(model, list(p), [1, 1, 1]) for p in itertools.permutations(range(3))]
    law = {k: sum(lw[k] for lw in laws) / len(laws) for k in laws[0]}
    codes = arpg_decode(model, model.spec, batch_size=20000, num_steps=3,
                        generator=torch.Generator().manual_seed(1)).codes[:, 0]  # fmt: skip
    assert total_variation(codes, law) < 0.03


def test_each_step_decodes_its_group_in_the_methods_order():
    torch.manual_seed(0)
    model = FlexARTransformer([16], [4, 4], dim=16, depth=1, num_heads=2, num_classes=2).eval()
    spec, n = model.spec, 16
    for decode, steps in ((lpd_decode, 5), (arpg_decode, 7)):
        seen = []
        gens = [torch.Generator().manual_seed(i) for i in range(3)]
        record = lambda step, codes, seen=seen: seen.append(spec.is_masked(codes)[:, 0].clone())  # noqa: E731
        result = decode(model, spec, batch_size=3, num_steps=steps, generator=gens, callback=record)
        assert result.nfe == steps == len(seen) and not spec.is_masked(result.codes).any()
        left = masked_counts(torch.full((3,), n), steps)
        assert torch.equal(torch.stack([s.sum(1) for s in seen], 1), left), "each group has the schedule's size"
        revealed = [~seen[0]] + [seen[t - 1] & ~seen[t] for t in range(1, steps)]
        if decode is lpd_decode:
            bounds = group_bounds(torch.zeros(1, dtype=torch.long), torch.tensor([n]), steps, "cosine")[0].tolist()
            order = locality_order((4, 4))
            for t, mask in enumerate(revealed):
                expected = torch.zeros(n, dtype=torch.bool)
                expected[order[bounds[t] : bounds[t + 1]]] = True
                assert torch.equal(mask, expected[None].expand(3, n)), f"step {t}: LPD's slice of its order"
        else:
            firsts = [tuple(mask.nonzero()[:, 0].tolist()) for mask in revealed[1]]
            assert len(set(firsts)) > 1, "each sample has its own random order"
        assert result.compute < steps, "cached passes compute fewer rows than full ones"


def test_editing_feeds_the_given_tokens_first_and_rows_decode_as_alone():
    torch.manual_seed(0)
    model = FlexARTransformer([16], [4, 4], dim=16, depth=1, num_heads=2, num_classes=2).eval()
    spec = model.spec
    g = torch.Generator().manual_seed(4)
    init = torch.randint(16, (3, 1, 16), generator=g)
    editable = torch.rand(3, 1, 16, generator=g) < torch.tensor([0.2, 0.6, 1.0])[:, None, None]
    cond = Condition(labels=torch.tensor([0, 1, 1]))
    for decode in (arpg_decode, lpd_decode):
        gens = lambda rows: [torch.Generator().manual_seed(10 + i) for i in rows]  # noqa: E731
        both = decode(model, spec, init_codes=init, editable=editable, cond=cond, generator=gens(range(3)),
                      guidance_scale=1.5, num_steps=6)  # fmt: skip
        assert torch.equal(both.codes[~editable], init[~editable])
        for row in range(3):
            one = slice(row, row + 1)
            alone = decode(model, spec, init_codes=init[one], editable=editable[one], cond=cond.select(one),
                           generator=gens([row]), guidance_scale=1.5, num_steps=6)  # fmt: skip
            assert torch.equal(alone.codes[0], both.codes[row]), "padding never changes a row"
            assert both.passes_per_sample()[row] == alone.nfe == min(6, int(editable[row].sum()))
    # Nothing editable: no pass at all, the tokens back as given.
    kept = lpd_decode(model, spec, init_codes=init, editable=torch.zeros(16, dtype=torch.bool))
    assert kept.nfe == 0 and torch.equal(kept.codes, init)


def test_the_given_tokens_condition_what_is_decoded(model):
    """Editing is conditioning: with x0 given, greedy decoding of x1 follows it (the model learnt
    x1 = x0), so the given token entered the cache and the queries read it."""
    editable = torch.tensor([False, True, True])
    for decode in (arpg_decode, lpd_decode):
        for value in range(3):
            init = torch.full((4, 1, 3), value)
            codes = decode(model, model.spec, init_codes=init, editable=editable, temperature=0.0).codes
            assert torch.all(codes[:, 0, 0] == value) and torch.all(codes[:, 0, 1] == value)
