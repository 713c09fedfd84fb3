import pytest
import torch

from mgm.decoding import group_decode
from mgm.models import Condition, MaskedTransformer
from mgm.schedules.groups import GroupPlan, gipd_plan, magnet_plan, soundstorm_plan
from mgm.tokens import TokenSpec


@pytest.fixture
def rvq_model() -> MaskedTransformer:
    torch.manual_seed(0)
    return MaskedTransformer([16, 16, 16, 16], [12], dim=32, depth=1, num_heads=2, num_classes=3).eval()


class Recorder:
    """Wraps a model and keeps the input codes of every call."""

    def __init__(self, model):
        self.model, self.spec, self.num_classes, self.accepts = model, model.spec, model.num_classes, model.accepts
        self.inputs = []

    def __call__(self, codes, cond):
        self.inputs.append(codes.clone())
        return self.model(codes, cond)


@pytest.mark.parametrize("plan", [soundstorm_plan(4), magnet_plan(4, steps=(6, 3, 2, 2)), gipd_plan(4, steps=(5, 3))])
def test_groups_decoded_in_order_each_codebook_once(rvq_model, plan):
    model = Recorder(rvq_model)
    res = group_decode(model, rvq_model.spec, batch_size=3, plan=plan, generator=torch.Generator().manual_seed(0))
    rvq_model.spec.check_codes(res.codes)  # nothing masked at the end, codes in range
    assert res.nfe == plan.nfe == len(model.inputs) == len(res.trace)
    masked = [rvq_model.spec.is_masked(c) for c in model.inputs]  # each [B, K, N]
    call = 0
    for g, steps in enumerate(plan.steps):
        earlier = [k for group in plan.groups[:g] for k in group]
        later = [k for group in plan.groups[g + 1 :] for k in group]
        for _ in range(steps):
            assert not masked[call][:, earlier].any(), "earlier groups are known"
            assert masked[call][:, later].all(), "later groups stay masked"
            call += 1
    # Each token is revealed exactly once over the whole decode.
    revealed = torch.stack([s.revealed for s in res.trace]).sum(0)
    assert revealed.tolist() == [4 * 12] * 3


def test_editable_tokens_only_and_seed_reproduces(rvq_model):
    spec = rvq_model.spec
    g = torch.Generator().manual_seed(3)
    init = torch.randint(16, (2, 4, 12), generator=g)
    editable = torch.zeros(12, dtype=torch.bool)
    editable[4:9] = True  # infill a span of frames in every codebook
    kwargs = dict(batch_size=None, plan="soundstorm", init_codes=init, editable=editable)
    a = group_decode(rvq_model, spec, generator=torch.Generator().manual_seed(1), **kwargs)
    b = group_decode(rvq_model, spec, generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(a.codes, b.codes)
    assert torch.equal(a.codes[..., ~editable], init[..., ~editable])
    spec.check_codes(a.codes)


def test_shorter_clip_than_the_model_length(rvq_model):
    spec = TokenSpec((16,) * 4, (7,))
    res = group_decode(rvq_model, spec, batch_size=2, plan="gipd", generator=torch.Generator().manual_seed(0))
    assert res.codes.shape == (2, 4, 7)
    with pytest.raises(ValueError, match="does not match the model"):
        group_decode(rvq_model, TokenSpec((16,) * 4, (13,)), batch_size=2)


def test_magnet_guidance_falls_with_the_mask_ratio(rvq_model):
    cond = Condition(labels=torch.tensor([0, 1]))
    res = group_decode(rvq_model, rvq_model.spec, batch_size=2, plan=magnet_plan(4, steps=(5, 2, 2, 2)), cond=cond,
                       guidance_scale=8.0, generator=torch.Generator().manual_seed(0))  # fmt: skip
    first = [s.guidance_scale for s in res.trace[:5]]
    assert first[0] == pytest.approx(8.0) and first == sorted(first, reverse=True) and first[-1] > 1.0
    constant = group_decode(rvq_model, rvq_model.spec, batch_size=2, plan=GroupPlan(((0, 1, 2, 3),), (3,)),
                            cond=cond, guidance_scale=8.0, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert [s.guidance_scale for s in constant.trace] == [8.0] * 3


def test_bad_plan_fails_before_any_model_call(rvq_model):
    model = Recorder(rvq_model)
    with pytest.raises(ValueError, match="K=4"):
        group_decode(model, rvq_model.spec, batch_size=2, plan=soundstorm_plan(3))
    with pytest.raises(ValueError, match="known group plan"):
        group_decode(model, rvq_model.spec, batch_size=2, plan="soundstrom")
    # MaskGIT's knob is not a group plan's: a ValueError listing the accepted options, no TypeError.
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_steps'\].*'steps'"):
        group_decode(model, rvq_model.spec, num_steps=12)
    with pytest.raises(ValueError, match=r"plan 'soundstorm' does not take \['group_size'\]"):
        group_decode(model, rvq_model.spec, plan="soundstorm", group_size=2)
    with pytest.raises(ValueError, match="steps="):
        group_decode(model, rvq_model.spec, plan="gipd", steps="many")
    assert model.inputs == []


@pytest.mark.parametrize(
    "plan, steps, nfe",
    [
        ("soundstorm", [3, 3], 3 + 3 * 3),
        ("soundstorm", 2, 8),
        ("magnet", [4, 2], 4 + 2 * 3),
        ("gipd", [5], 10),
        ("joint", 7, 7),
    ],
)
def test_every_plan_builder_calls_its_step_counts_steps(rvq_model, plan, steps, nfe):
    # One int: every group; a list: one per group, its last value repeated for the groups after it.
    res = group_decode(rvq_model, rvq_model.spec, plan=plan, steps=steps, generator=torch.Generator().manual_seed(0))
    assert res.nfe == nfe == sum(1 for _ in res.trace)


def test_group_plans_with_feature_reuse(rvq_model):

    plan = gipd_plan(4, steps=(6, 4))
    common = dict(batch_size=3, plan=plan, cond=Condition(labels=torch.tensor([0, 1, 2])), guidance_scale=2.0)
    ref = group_decode(rvq_model, rvq_model.spec, generator=torch.Generator().manual_seed(4), **common)
    same = group_decode(rvq_model, rvq_model.spec, generator=torch.Generator().manual_seed(4),
                        full_first=6, **common)  # fmt: skip
    assert torch.equal(same.codes, ref.codes), "no cheap steps: the plain group decode"
    cheap = group_decode(rvq_model, rvq_model.spec, generator=torch.Generator().manual_seed(4),
                         full_first=1, cheap_per_full=2, **common)  # fmt: skip
    rvq_model.spec.check_codes(cheap.codes)
    assert cheap.nfe == 10 and cheap.compute < 10
    revealed = torch.stack([s.revealed for s in cheap.trace]).sum(0)
    assert revealed.tolist() == [4 * 12] * 3
