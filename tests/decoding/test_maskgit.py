import pytest
import torch

from mgm.decoding import maskgit_decode
from mgm.decoding.guidance import GuidedModel
from mgm.models import Condition
from mgm.tokens import TokenSpec


def _decode(model, **kwargs):
    kwargs.setdefault("generator", torch.Generator().manual_seed(0))
    return maskgit_decode(model, model.spec, **kwargs)


def test_nothing_masked_and_codes_in_range(tiny_model):
    res = _decode(tiny_model, batch_size=5, num_steps=6)
    assert res.codes.shape == (5, 2, 16)
    tiny_model.spec.check_codes(res.codes)  # raises on a mask id or an out-of-range code
    assert res.nfe == 6 and len(res.trace) == 6
    revealed = torch.stack([s.revealed for s in res.trace]).sum(0)
    assert revealed.tolist() == [32] * 5


def test_same_generator_same_codes_and_different_seed_differs(tiny_model):
    a = _decode(tiny_model, batch_size=4, num_steps=5, generator=torch.Generator().manual_seed(7))
    b = _decode(tiny_model, batch_size=4, num_steps=5, generator=torch.Generator().manual_seed(7))
    c = _decode(tiny_model, batch_size=4, num_steps=5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.codes, b.codes)
    assert not torch.equal(a.codes, c.codes)


def test_tokens_outside_editable_never_change(tiny_model):
    spec = tiny_model.spec
    g = torch.Generator().manual_seed(1)
    init = torch.stack([torch.randint(s, (3, 16), generator=g) for s in spec.codebook_sizes], dim=1)
    editable = torch.rand(3, 2, 16, generator=g) < 0.5
    res = _decode(tiny_model, batch_size=None, num_steps=4, init_codes=init, editable=editable)
    assert torch.equal(res.codes[~editable], init[~editable])
    spec.check_codes(res.codes)
    # Per-sample counts: each sample reveals exactly its own editable tokens.
    revealed = torch.stack([s.revealed for s in res.trace]).sum(0)
    assert torch.equal(revealed, editable.flatten(1).sum(1))


def test_init_codes_alone_fill_only_mask_positions(tiny_model):
    spec = tiny_model.spec
    init = spec.full_mask(2)
    init[:, 0, :8] = 3  # the first half of codebook 0 is given
    res = _decode(tiny_model, batch_size=2, num_steps=3, init_codes=init)
    assert bool((res.codes[:, 0, :8] == 3).all())
    spec.check_codes(res.codes)


def test_broadcast_editable_shapes(tiny_model):
    init = torch.zeros(2, 2, 16, dtype=torch.long)
    editable = torch.zeros(16, dtype=torch.bool)
    editable[5:9] = True
    res = _decode(tiny_model, batch_size=None, num_steps=2, init_codes=init, editable=editable)
    assert bool((res.codes[:, :, :5] == 0).all()) and bool((res.codes[:, :, 9:] == 0).all())


def test_nothing_editable_returns_init(tiny_model):
    init = torch.ones(2, 2, 16, dtype=torch.long)
    res = _decode(tiny_model, batch_size=None, num_steps=3, init_codes=init, editable=torch.zeros(16, dtype=torch.bool))
    assert torch.equal(res.codes, init) and res.nfe == 3


def test_cfg_is_one_batched_forward_per_step(tiny_model):
    calls = []

    def counting(codes, cond):
        calls.append(codes.shape[0])
        return tiny_model(codes, cond)

    cond = Condition(labels=torch.tensor([0, 1, 2]))
    res = maskgit_decode(
        counting,
        tiny_model.spec,
        batch_size=3,
        num_steps=4,
        cond=cond,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert res.nfe == 4 and calls == [6, 6, 6, 6]


def test_guidance_scale_zero_equals_unguided(tiny_model):
    cond = Condition(labels=torch.tensor([0, 1, 2]))
    codes = tiny_model.spec.full_mask(3)
    guided = GuidedModel(tiny_model, cond)
    # The guidance formula itself at scale 0 gives the conditional logits...
    both = tiny_model(torch.cat([codes, codes]), Condition.cat([cond, cond.null()]))
    from mgm.decoding.guidance import guide

    torch.testing.assert_close(guide(*both.chunk(2), 0.0), tiny_model(codes, cond))
    # ...and the decoder with scale 0 samples exactly what an unguided decode samples.
    a = _decode(tiny_model, batch_size=3, num_steps=4, cond=cond, guidance_scale=0.0)
    b = maskgit_decode(
        lambda c, k: tiny_model(c, k),
        tiny_model.spec,
        batch_size=3,
        num_steps=4,
        cond=cond,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(a.codes, b.codes)
    assert guided(codes, 0.0).shape == (3, 2, 16, 8)


def test_guidance_changes_samples_and_keeps_ruled_out_entries(tiny_model):
    cond = Condition(labels=torch.tensor([0, 1, 2]))
    guided = GuidedModel(tiny_model, cond)(tiny_model.spec.full_mask(3), 5.0)
    assert not torch.isnan(guided).any()
    assert bool(torch.isneginf(guided[:, 1, :, 6:]).all())  # codebook 1 has 6 entries
    a = _decode(tiny_model, batch_size=3, num_steps=4, cond=cond, guidance_scale=0.0)
    b = _decode(tiny_model, batch_size=3, num_steps=4, cond=cond, guidance_scale=5.0)
    assert not torch.equal(a.codes, b.codes)


def test_annealed_guidance_trace(tiny_model):
    cond = Condition(labels=torch.tensor([0, 1, 2]))
    res = _decode(tiny_model, batch_size=3, num_steps=4, cond=cond, guidance_scale=2.0, guidance_annealing="linear")
    assert [s.guidance_scale for s in res.trace] == pytest.approx([0.5, 1.0, 1.5, 2.0])


def test_greedy_with_no_choice_noise_is_deterministic_across_seeds(tiny_model):
    kwargs = dict(batch_size=2, num_steps=4, temperature=0.0, choice_temperature=0.0)
    a = _decode(tiny_model, generator=torch.Generator().manual_seed(1), **kwargs)
    b = _decode(tiny_model, generator=torch.Generator().manual_seed(2), **kwargs)
    assert torch.equal(a.codes, b.codes)


def test_top_k_one_equals_greedy_sampling(tiny_model):
    kwargs = dict(batch_size=2, num_steps=4, choice_temperature=0.0)
    a = _decode(tiny_model, top_k=1, **kwargs)
    b = _decode(tiny_model, temperature=0.0, **kwargs)
    assert torch.equal(a.codes, b.codes)


def test_context_conditioning_decodes(context_model):
    cond = Condition(
        labels=torch.tensor([0, 1]),
        context=torch.randn(2, 3, 5),
        context_mask=torch.tensor([[True, True, False], [True, False, False]]),
    )
    res = _decode(context_model, batch_size=2, num_steps=3, cond=cond, guidance_scale=1.5)
    context_model.spec.check_codes(res.codes)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_steps=0), "num_steps=0"),
        (dict(num_steps=2.5), "num_steps=2.5"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(schedule="zigzag"), "schedule='zigzag'"),
        (dict(temperature=-1.0), "temperature=-1.0"),
        (dict(top_k=0), "top_k=0"),
        (dict(top_p=1.5), "top_p=1.5"),
        (dict(guidance_scale=2.0), "guidance_scale=2.0 needs a condition"),
        (dict(guidance_scale=-1.0), "guidance_scale=-1.0"),
        (dict(choice_temperature_annealing="up"), "choice_temperature_annealing='up'"),
        (dict(init_codes=torch.zeros(2, 16, dtype=torch.long)), "init_codes: expected rank 3"),
        (dict(init_codes=torch.full((2, 2, 16), 9)), r"init_codes\[0, 0, 0\] = 9 is out of range"),
        (dict(init_codes=torch.zeros(3, 2, 16, dtype=torch.long), batch_size=2), "batch_size=2 does not match"),
        (dict(editable=torch.ones(16, dtype=torch.bool)), "editable given without init_codes"),
        (
            dict(init_codes=torch.zeros(2, 2, 16, dtype=torch.long), editable=torch.ones(2, 15, dtype=torch.bool)),
            r"editable: shape \(2, 15\) does not fit",
        ),
        (dict(init_codes=torch.zeros(2, 2, 16, dtype=torch.long), editable=torch.ones(16)), "BoolTensor"),
        (dict(cond=Condition(labels=torch.tensor([0, 5]))), r"labels in \[0, 2\]"),
        (dict(cond=Condition(labels=torch.tensor([0, 1, 2]))), "batch size 3 does not match batch_size=2"),
    ],
)
def test_bad_input_raises_before_any_model_call(tiny_model, kwargs, match):
    calls = []

    def model(codes, cond):
        calls.append(1)
        return tiny_model(codes, cond)

    model.spec = tiny_model.spec
    model.num_classes = tiny_model.num_classes
    kwargs.setdefault("batch_size", 2)
    with pytest.raises(ValueError, match=match):
        maskgit_decode(model, tiny_model.spec, **kwargs)
    assert calls == []


def test_spec_mismatch_with_model(tiny_model):
    with pytest.raises(ValueError, match="does not match the model's spec"):
        maskgit_decode(tiny_model, TokenSpec((8,), (4, 4)), batch_size=1)


def test_callable_with_wrong_logits_shape_is_named():
    spec = TokenSpec((4,), (3,))
    with pytest.raises(ValueError, match=r"logits of shape \(1, 1, 3, 5\)"):
        maskgit_decode(lambda codes, cond: torch.zeros(1, 1, 3, 5), spec, batch_size=1)
