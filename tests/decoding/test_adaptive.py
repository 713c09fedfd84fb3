"""Orders, threshold / credit decoding, remasking, and the contract every masked decoder keeps."""

from __future__ import annotations

import pytest
import torch

from mgm.decoding import MASKED, METHODS, credit_decode, maskgit_decode, remask_decode, threshold_decode
from mgm.decoding.adaptive import ThresholdOptions, commit_counts
from mgm.decoding.remask import remask_counts
from mgm.models import Condition
from mgm.schedules import masked_counts
from mgm.schedules.orders import halton_order, locality_order
from mgm.tokens import TokenSpec
from tests.conftest import decodable

MASKED_METHODS = sorted(name for name, m in METHODS.items() if m.kind == MASKED)


def neighbours_in_one_step(order: torch.Tensor, shape: tuple[int, int], steps: int = 12) -> int:
    """4-neighbour pairs revealed in the same step when MaskGIT's cosine counts walk ``order``."""
    h, w = shape
    previous, start, pairs = h * w, 0, 0
    for left in masked_counts(torch.tensor([h * w]), steps)[0].tolist():
        group = set(order[start : start + previous - left].tolist())
        start, previous = start + previous - left, left
        pairs += sum((p % w + 1 < w and p + 1 in group) + (p // w + 1 < h and p + w in group) for p in group)
    return pairs


@pytest.mark.parametrize("shape", [(8, 8), (16, 16), (5, 7), (12,)])
def test_orders_are_permutations_and_locality_keeps_a_step_apart(shape):
    n = torch.tensor(shape).prod().item()
    for order in (halton_order(shape), locality_order(shape)):
        assert torch.equal(order.sort().values, torch.arange(n))
    if len(shape) == 2:
        assert neighbours_in_one_step(locality_order(shape), shape) == 0
        assert neighbours_in_one_step(torch.arange(n), shape) > 0  # raster order: the measure can fail


def test_an_order_decides_what_each_step_reveals(tiny_model):
    spec = TokenSpec((8,), (4, 4))
    from mgm.models import MaskedTransformer

    torch.manual_seed(0)
    model = MaskedTransformer([8], [4, 4], dim=32, depth=1, num_heads=2).eval()
    order = torch.randperm(16)
    seen = []
    maskgit_decode(model, spec, batch_size=2, num_steps=16, order=order, callback=lambda s, c: seen.append(c.clone()))
    for step, codes in enumerate(seen):  # one token per step, in the order given
        known = (codes[0, 0] != 8).nonzero()[:, 0].sort().values
        assert torch.equal(known, order[: step + 1].sort().values)


def test_threshold_counts():
    probs = torch.tensor([[0.95, 0.5, 0.92, 0.1], [0.3, 0.2, 0.1, 0.05], [0.99, 0.99, 0.99, 0.99]])
    masked = torch.tensor([[True, True, True, True], [True, True, True, True], [False, False, False, False]])
    own, free = ThresholdOptions(tau=0.9), torch.tensor([4, 4, 4])  # the schedule asks nothing yet
    assert commit_counts(probs, masked, own, free)[1].tolist() == [2, 1, 0]  # at least one; none when done
    assert commit_counts(probs, masked, ThresholdOptions(tau=0.9, max_per_step=1), free)[1].tolist() == [1, 1, 0]
    by_rule, count = commit_counts(probs, masked, own, torch.tensor([1, 1, 1]))  # the floor asks for 3
    assert by_rule.tolist() == [2, 0, 0] and count.tolist() == [3, 3, 0]
    assert commit_counts(probs, masked, own, torch.tensor([0, 0, 0]))[1].tolist() == [4, 4, 0]
    # factor rule, f = 1: n-th highest >= 1 - 1 / (n + 1): 0.95 >= 0.5, 0.92 >= 0.667, 0.5 < 0.75
    assert commit_counts(probs, masked, ThresholdOptions(rule="factor", factor=1.0), free)[0].tolist()[0] == 2


class Peaked:
    """A model sure of every token (probability about 0.99): threshold decoding needs one step."""

    def __call__(self, codes, cond):
        logits = torch.full((*codes.shape, 8), -5.0)
        logits[..., 3] = 5.0
        return logits


@pytest.mark.parametrize("decode", [threshold_decode, credit_decode])
def test_a_confident_model_finishes_in_one_pass_and_an_unsure_one_later(decode):
    spec = TokenSpec((8,), (4, 4))
    sure = decode(Peaked(), spec, batch_size=3, generator=torch.Generator().manual_seed(0))
    assert sure.nfe == 1 and sure.nfe_per_sample.tolist() == [1, 1, 1] and bool((sure.codes == 3).all())
    unsure = decode(lambda c, cond: torch.zeros(*c.shape, 8), spec, batch_size=2, max_steps=5)
    assert unsure.nfe == 5 and not bool((unsure.codes == 8).any())  # finished by the cap
    expected = -masked_counts(torch.tensor([16]), 5)[0].diff(prepend=torch.tensor([16]))  # MaskGIT-5's counts
    assert [int(r.revealed[0]) for r in unsure.trace] == expected.tolist()


def test_without_early_exit_the_cap_is_run():
    spec = TokenSpec((8,), (4, 4))
    result = threshold_decode(Peaked(), spec, batch_size=2, early_exit=False, max_steps=4)
    assert result.nfe == 4 and result.nfe_per_sample.tolist() == [1, 1]


def test_credit_builds_on_a_recurring_top_token():
    from mgm.decoding.adaptive import Credit

    credit = Credit((1, 1, 2), torch.device("cpu"), decay=0.5, strength=1.0)
    logits = torch.tensor([[[[2.0, 0.0], [0.0, 2.0]]]])
    first = credit.fuse(logits)
    second = credit.fuse(logits)  # same top-1: credit = 0.5 * p + p
    p = logits.softmax(-1).max(-1).values
    assert torch.allclose(credit.value, 1.5 * p)
    assert bool((second.softmax(-1).amax(-1) > first.softmax(-1).amax(-1)).all())


def test_remask_counts_keep_within_the_masked_share():
    committed, stay = torch.tensor([10, 4, 0, 8]), torch.tensor([6, 8, 5, 0])
    assert remask_counts(committed, stay, "cap", 0.2).tolist() == [2, 0, 0, 0]  # 0.2 * 10; 4 * 0.2 floors
    assert remask_counts(committed, stay, "rescale", 1.0).tolist() == [6, 4, 0, 0]  # sigma_max * c
    assert bool((remask_counts(committed, stay, "rescale", 1.0) <= stay).all())


@pytest.mark.parametrize("strategy", ["cap", "rescale", "conf", "rerank"])
def test_remasking_keeps_the_schedule_and_revisits_committed_tokens(tiny_model, strategy):
    spec = tiny_model.spec
    seen = []
    result = remask_decode(tiny_model, spec, batch_size=4, strategy=strategy, eta=1.0,
                           generator=torch.Generator().manual_seed(0),
                           callback=lambda s, c: seen.append(spec.is_masked(c).clone()))  # fmt: skip
    counts = masked_counts(torch.full((4,), spec.num_codebooks * spec.num_positions), 12)
    assert torch.equal(torch.stack([m.flatten(1).sum(1) for m in seen], 1), counts)  # MaskGIT's counts
    again = sum(int((~before & after).sum()) for before, after in zip(seen, seen[1:]))
    assert again > 0, "no committed token was masked again"
    assert not bool(spec.is_masked(result.codes).any())


# -- every registered masked decoder ---------------------------------------------------------------


@pytest.mark.parametrize("name", MASKED_METHODS)
def test_every_masked_decoder_edits_guides_and_splits_batches(name, tiny_model):
    """The contract: no mask left, tokens outside ``editable`` unchanged, guidance accepted, and a
    sample fixed by its own generator whatever batch it is decoded in."""
    decode, spec = METHODS[name].decode, tiny_model.spec
    tiny_model = decodable(name, tiny_model)
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    labels = torch.tensor([0, 1, 2, 0])
    init = torch.randint(0, 6, (4, spec.num_codebooks, spec.num_positions), generator=torch.Generator().manual_seed(1))
    editable = torch.zeros(spec.num_codebooks, spec.num_positions, dtype=torch.bool)
    editable[:, ::2] = True
    whole = decode(tiny_model, spec, cond=Condition(labels=labels), generator=gens(range(4)), guidance_scale=1.0,
                   init_codes=init, editable=editable)  # fmt: skip
    assert not bool(spec.is_masked(whole.codes).any())
    assert torch.equal(whole.codes[:, ~editable], init[:, ~editable])
    parts = [decode(tiny_model, spec, cond=Condition(labels=labels[rows]), generator=gens(range(4)[rows]),
                    guidance_scale=1.0, init_codes=init[rows], editable=editable).codes
             for rows in (slice(0, 1), slice(1, 4))]  # fmt: skip
    assert torch.equal(torch.cat(parts), whole.codes)
    assert whole.nfe >= 1 and whole.passes_per_sample().shape == (4,)
