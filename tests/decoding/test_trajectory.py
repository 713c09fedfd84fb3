"""verified_decode(target="maskgit") returns maskgit_decode's codes, token for token, in at most
num_steps sequential passes (the exact-trajectory form; see mgm.decoding.trajectory)."""

from __future__ import annotations

import math

import pytest
import torch

from mgm.decoding import maskgit_decode, verified_decode
from mgm.models import Condition, MaskedTransformer
from mgm.tokens import TokenSpec

CASES = {
    "plain": {},
    "guidance-annealing": {"guidance_scale": 2.0, "guidance_annealing": "linear"},
    "halton": {"order": "halton", "temperature": 0.8},
    "random-order": {"order": "random"},
    "top-k-top-p": {"top_k": 3, "top_p": 0.9, "choice_temperature": 2.0},
    "greedy": {"temperature": 0.0, "choice_temperature": 0.0},
    "choice-annealing-constant": {"choice_temperature_annealing": "constant", "num_steps": 5},
}


def labels(b: int) -> Condition:
    return Condition(labels=torch.arange(b) % 3)


def both(model, spec, b, seed, **options):
    common = {"num_steps": options.pop("num_steps", 8), **options}
    ref = maskgit_decode(model, spec, batch_size=b, cond=labels(b), generator=torch.Generator().manual_seed(seed),
                         **common)  # fmt: skip
    got = verified_decode(model, spec, batch_size=b, cond=labels(b), generator=torch.Generator().manual_seed(seed),
                          target="maskgit", draft=3, **common)  # fmt: skip
    return ref, got


@pytest.mark.parametrize("options", list(CASES.values()), ids=list(CASES))
def test_codes_equal_maskgit_decode(tiny_model, options):
    spec = tiny_model.spec
    ref, got = both(tiny_model, spec, 6, 11, **dict(options))
    assert torch.equal(got.codes, ref.codes)
    steps = options.get("num_steps", 8)
    assert 1 <= int(got.nfe_per_sample.max()) <= steps and got.nfe <= steps


def test_a_given_permutation_and_editing_match(tiny_model):
    spec = tiny_model.spec
    g = torch.Generator().manual_seed(3)
    init = torch.stack([torch.randint(0, v, (4, spec.num_positions), generator=g) for v in spec.codebook_sizes], 1)
    editable = torch.rand(4, spec.num_codebooks, spec.num_positions, generator=g) < 0.6
    order = torch.randperm(spec.num_positions, generator=g)
    opts = {"num_steps": 6, "order": order, "init_codes": init, "editable": editable}
    ref = maskgit_decode(tiny_model, spec, cond=labels(4), generator=torch.Generator().manual_seed(5), **opts)
    got = verified_decode(tiny_model, spec, cond=labels(4), generator=torch.Generator().manual_seed(5),
                          target="maskgit", draft=2, **opts)  # fmt: skip
    assert torch.equal(got.codes, ref.codes)
    for row in range(4):
        keep = ~editable[row]
        assert torch.equal(got.codes[row][keep], init[row][keep])


def test_a_list_of_generators_matches(tiny_model):
    spec = tiny_model.spec
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2, 3)]  # noqa: E731
    ref = maskgit_decode(tiny_model, spec, cond=labels(3), generator=gens(), num_steps=6, guidance_scale=1.5)
    got = verified_decode(tiny_model, spec, cond=labels(3), generator=gens(), num_steps=6, guidance_scale=1.5,
                          target="maskgit")  # fmt: skip
    assert torch.equal(got.codes, ref.codes)


def test_a_one_dimensional_two_codebook_model_matches():
    torch.manual_seed(1)
    model = MaskedTransformer([16, 16], [12], dim=32, depth=1, num_heads=2, num_classes=3).eval()
    ref, got = both(model, model.spec, 5, 2, num_steps=7, guidance_scale=1.0)
    assert torch.equal(got.codes, ref.codes)


class ConstantLogits:
    """The same logits whatever the canvas: every stale-logit draft is right."""

    def __init__(self, spec: TokenSpec):
        self.logits = torch.randn(1, spec.num_codebooks, spec.num_positions, spec.vocab_size,
                                  generator=torch.Generator().manual_seed(0))  # fmt: skip

    def __call__(self, codes, cond):
        return self.logits.expand(len(codes), -1, -1, -1)


@pytest.mark.parametrize("steps, draft", [(12, 1), (12, 3), (12, 8), (5, 2), (1, 4)])
def test_when_every_draft_is_right_a_pass_advances_draft_plus_one_steps(steps, draft):
    spec = TokenSpec((7,), (10,))  # 10 positions: every step of up to 10 reveals at least one
    model = ConstantLogits(spec)
    ref = maskgit_decode(model, spec, batch_size=3, num_steps=steps, generator=torch.Generator().manual_seed(0))
    got = verified_decode(model, spec, batch_size=3, num_steps=steps, target="maskgit", draft=draft,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(got.codes, ref.codes)
    assert got.nfe == 1 + math.ceil((steps - 1) / (draft + 1))


def test_annealed_guidance_needs_the_maskgit_target(tiny_model):
    with pytest.raises(ValueError, match="guidance_annealing"):
        verified_decode(tiny_model, tiny_model.spec, cond=labels(2), guidance_scale=2.0, guidance_annealing="linear")
