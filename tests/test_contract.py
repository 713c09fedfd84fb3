"""The failures the contract issue listed, each as it was tried by a new user: all must now work
(or be a ValueError naming the option). The general invariants are the conformance suites'
(tests/decoding/test_conformance.py, tests/pipelines/test_conformance.py)."""

from __future__ import annotations

import pytest
import torch

from mgm.decoding import (
    DecodeResult,
    JacobiRecord,
    StepRecord,
    TraceRecord,
    ar_decode,
    group_decode,
    maskgit_decode,
    recap_decode,
    sjd_decode,
)
from mgm.models import ARTransformer, Condition


def _codes_of_batch(spec, b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(size, (b, spec.num_positions), generator=g) for size in spec.codebook_sizes], 1)


@pytest.mark.parametrize("decode", [maskgit_decode, recap_decode, group_decode])
def test_init_codes_give_the_batch_size(tiny_model, decode):
    init = _codes_of_batch(tiny_model.spec, 6)
    editable = torch.zeros(16, dtype=torch.bool)
    editable[5:] = True
    res = decode(tiny_model, tiny_model.spec, init_codes=init, editable=editable)
    assert res.codes.shape == (6, 2, 16) and torch.equal(res.codes[..., :5], init[..., :5])
    with pytest.raises(ValueError, match="batch_size=4 does not match init_codes' batch size 6"):
        decode(tiny_model, tiny_model.spec, batch_size=4, init_codes=init, editable=editable)


@pytest.mark.parametrize("decode", [ar_decode, sjd_decode])
def test_a_prefix_gives_the_batch_size(decode):
    torch.manual_seed(0)
    model = ARTransformer(vocab_size=6, max_length=8, dim=16, depth=1, num_heads=2).eval()
    prefix = torch.randint(6, (5, 2))
    res = decode(model, 8, prefix=prefix)
    assert res.codes.shape == (5, 1, 8) and torch.equal(res.codes[:, 0, :2], prefix)


def test_group_plan_options_have_one_name_and_are_checked(tiny_model):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_steps'\]"):
        group_decode(tiny_model, tiny_model.spec, num_steps=12)
    res = group_decode(tiny_model, tiny_model.spec, plan="soundstorm", steps=[3, 3])
    assert res.nfe == 6


def test_every_image_editing_option_is_accepted_or_named(tiny_image_pipeline):
    pipe = tiny_image_pipeline
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:, 8:] = True
    for option in ({"progress": True}, {"batch_size": 1}, {"choice_temperature": 2.0}):
        assert pipe.inpaint(images, mask, **option).shape == images.shape
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_stpes'\]"):
        pipe.inpaint(images, mask, num_stpes=3)
    assert pipe.generate(2, choice_temperature=2.0, top_k=4, top_p=0.9, guidance_annealing="linear").shape[0] == 2


@pytest.mark.parametrize("fixture, conditions", [
    ("tiny_image_pipeline", {}), ("tiny_audio_pipeline", {"seconds": 0.1}),
    ("tiny_motion_pipeline", {"texts": "a person walks", "seconds": 1.0}),
])  # fmt: skip
def test_a_sample_does_not_depend_on_the_batch_split(fixture, conditions, request):
    pipe = request.getfixturevalue(fixture)
    six = pipe.generate_codes(6, seed=0, batch_size=6, **conditions).codes
    assert torch.equal(six, pipe.generate_codes(6, seed=0, batch_size=4, **conditions).codes)


def test_one_generator_per_sample(tiny_model):
    gens = [torch.Generator().manual_seed(i) for i in range(3)]
    res = maskgit_decode(tiny_model, tiny_model.spec, generator=gens)
    assert res.codes.shape[0] == 3


def test_one_result_type_for_every_decoder(tiny_model):
    torch.manual_seed(0)
    ar_model = ARTransformer(vocab_size=6, max_length=8, dim=16, depth=1, num_heads=2).eval()
    masked = maskgit_decode(tiny_model, tiny_model.spec, batch_size=2, num_steps=3)
    ar, sjd = ar_decode(ar_model, 8, batch_size=2), sjd_decode(ar_model, 8, batch_size=2, window=3)
    for res in (masked, ar, sjd):
        assert isinstance(res, DecodeResult) and res.codes.dim() == 3
        assert all(isinstance(r, TraceRecord) for r in res.trace)
    assert all(isinstance(r, StepRecord) for r in masked.trace)
    assert all(isinstance(r, JacobiRecord) for r in sjd.trace) and sjd.nfe == int(sjd.nfe_per_sample.max())
    assert ar.nfe == 8 and masked.nfe == 3


def test_a_group_plan_pipeline_refuses_num_steps_instead_of_ignoring_it(tiny_audio_pipeline):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_steps'\].*'steps'"):
        tiny_audio_pipeline.generate(1, num_steps=4)


def test_sampling_options_reach_every_pipeline_decode(tiny_image_pipeline):
    cond = Condition(labels=torch.tensor([0, 1]))
    direct = maskgit_decode(tiny_image_pipeline.transformer, tiny_image_pipeline.spec, cond=cond, num_steps=4,
                            top_k=1, temperature=1.0, choice_temperature=0.0)  # fmt: skip
    piped = tiny_image_pipeline.generate_codes(2, labels=[0, 1], top_k=1, choice_temperature=0.0)
    assert torch.equal(direct.codes, piped.codes), "top-1 sampling with no choice noise is deterministic"
