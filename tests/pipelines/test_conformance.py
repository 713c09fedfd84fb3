"""The pipeline conformance suite (after diffusers' PipelineTesterMixin): every pipeline class,
with tiny components, keeps one calling convention.

``generate(num, *, <conditions>, **options)`` and every editing method take the call options
(seed, batch_size, progress, output_type, callback) and the decode options; an unknown or bad
option is a ValueError naming it; a seed fixes each sample whatever the batch split; output
types convert; a save/load round trip gives the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from mgm.decoding import DecodeResult


@dataclass
class Case:
    fixture: str
    conditions: dict  # keyword conditions of generate (and the length)
    edits: dict = field(default_factory=dict)  # name -> call(pipe, **options)


def _image_input(pipe):
    return torch.rand(2, 3, pipe.image_size, pipe.image_size, generator=torch.Generator().manual_seed(5))


def _half_mask(pipe):
    mask = torch.zeros(pipe.image_size, pipe.image_size, dtype=torch.bool)
    mask[:, pipe.image_size // 2 :] = True
    return mask


def _clip(pipe):
    return pipe.generate(2, labels=[0, 1], seconds=0.2, seed=9)


def _first_frames(pipe, count=1):
    return pipe.generate(2, labels=[0, 1], seed=9)[:, :count]


def _motion(pipe):
    return pipe.generate(2, texts="a person walks", seconds=2.0, seed=9)


CASES = {
    "image": Case("tiny_image_pipeline", {"labels": [0, 2]}, {
        "inpaint": lambda p, **o: p.inpaint(_image_input(p), _half_mask(p), labels=[0, 1], **o),
        "outpaint": lambda p, **o: p.outpaint(_image_input(p), "left", 4, labels=[1], **o),
        "variations": lambda p, **o: p.variations(_image_input(p), 0.5, labels=[2], **o),
    }),
    "ar_image": Case("tiny_ar_pipeline", {"labels": [0, 1]}),
    "flex_ar_image": Case("tiny_flex_ar_pipeline", {"labels": [0, 2]}, {
        "inpaint": lambda p, **o: p.inpaint(_image_input(p), _half_mask(p), labels=[0, 1], **o),
        "outpaint": lambda p, **o: p.outpaint(_image_input(p), "left", 4, labels=[1], **o),
        "variations": lambda p, **o: p.variations(_image_input(p), 0.5, labels=[2], **o),
    }),
    "audio": Case("tiny_audio_pipeline", {"labels": [1], "seconds": 0.1}, {
        "continue_": lambda p, **o: p.continue_(_clip(p)[..., :800], 0.2, labels=[0, 1], **o),
        "infill": lambda p, **o: p.infill(_clip(p), 0.05, 0.1, labels=[2], **o),
    }),
    "motion": Case("tiny_motion_pipeline", {"texts": "a person walks", "seconds": 1.0}, {
        "inbetween": lambda p, **o: p.inbetween(_motion(p), 0.4, 0.4, texts="someone waves", **o),
        "complete": lambda p, **o: p.complete(_motion(p)[:, :20], 2.0, texts="a person jumps", **o),
        "edit_part": lambda p, **o: p.edit_part(_motion(p), "upper", texts="someone waves", **o),
        "long_sequence": lambda p, **o: p.long_sequence(["a person walks", "a person jumps"], 1.0, **o),
    }),
    "video": Case("tiny_video_pipeline", {"labels": [0, 2]}, {
        "predict": lambda p, **o: p.predict(_first_frames(p, 2), labels=[0, 1], **o),
        "interpolate": lambda p, **o: p.interpolate(_first_frames(p), _first_frames(p), labels=[2], **o),
    }),
}  # fmt: skip
EDITS = [(name, edit) for name, case in CASES.items() for edit in case.edits]


@pytest.fixture(params=list(CASES))
def case(request):
    case = CASES[request.param]
    return request.getfixturevalue(case.fixture), case


def test_generate_takes_the_call_options(case):
    pipe, case = case
    steps = []
    out = pipe.generate(3, **case.conditions, seed=0, batch_size=2, progress=False, output_type="pt",
                        callback=lambda step, codes: steps.append((step, codes.shape[0])))  # fmt: skip
    assert isinstance(out, torch.Tensor) and out.shape[0] == 3
    # Every step of both batches (SJD reports each sample's iterations, one row at a time).
    assert steps and {b for _, b in steps} <= {2, 1} and steps[0][0] == 0
    result = pipe.generate_codes(3, **case.conditions, seed=0, batch_size=2)
    assert isinstance(result, DecodeResult) and result.codes.dim() == 3 and result.codes.shape[0] == 3
    assert result.passes_per_sample().shape == (3,) and result.nfe >= int(result.passes_per_sample().max())


def test_a_seed_fixes_each_sample_whatever_the_batch_split(case):
    pipe, case = case
    whole = pipe.generate_codes(4, **case.conditions, seed=3, batch_size=4).codes
    split = pipe.generate_codes(4, **case.conditions, seed=3, batch_size=1).codes
    assert torch.equal(whole, split)
    assert torch.equal(pipe.generate_codes(4, **case.conditions, seed=3, batch_size=3).codes, whole)
    assert not torch.equal(pipe.generate_codes(4, **case.conditions, seed=4).codes, whole)


def test_output_types(case):
    pipe, case = case
    pt = pipe.generate(2, **case.conditions, seed=1)
    for output_type in pipe.output_types:
        out = pipe.generate(2, **case.conditions, seed=1, output_type=output_type)
        if output_type == "np":
            assert isinstance(out, np.ndarray) and out.shape[0] == 2
            assert np.allclose(np.moveaxis(out, -1, -3) if out.shape[1:] != pt.shape[1:] else out, pt.numpy())
        elif output_type == "pil":
            assert len(out) == 2 and out[0].size == (pt.shape[-1], pt.shape[-2])
    with pytest.raises(ValueError, match="output_type='latent'"):
        pipe.generate(2, **case.conditions, output_type="latent")


BAD_OPTIONS = [
    ({"no_such_option": 1}, r"unknown option\(s\) \['no_such_option'\]; it accepts"),
    ({"seed": -1}, "seed=-1"),
    ({"seed": 1.5}, "seed=1.5"),
    ({"seed": 2**70}, "seed="),
    ({"batch_size": 0}, "batch_size=0"),
    ({"progress": "yes"}, "progress='yes'"),
    ({"callback": 3}, "callback=3"),
    ({"temperature": -1.0}, "temperature=-1.0"),
    ({"temperature": float("inf")}, "temperature=inf"),
    ({"guidance_scale": float("nan")}, "guidance_scale=nan"),
    ({"method": "nope"}, "method='nope'"),
    ({"device": "cpu"}, r"unknown option\(s\) \['device'\]"),
]


@pytest.mark.parametrize("options, match", BAD_OPTIONS, ids=[m for _, m in BAD_OPTIONS])
def test_bad_options_are_value_errors(case, options, match):
    pipe, case = case
    with pytest.raises(ValueError, match=match):
        pipe.generate(2, **case.conditions, **options)


@pytest.mark.parametrize("name, edit", EDITS, ids=[f"{n}.{e}" for n, e in EDITS])
def test_editing_methods_take_the_same_options(name, edit, request):
    case = CASES[name]
    pipe = request.getfixturevalue(case.fixture)
    call = case.edits[edit]
    steps = []
    out = call(pipe, seed=2, batch_size=1, progress=True, temperature=0.8, callback=lambda s, c: steps.append(s))
    assert isinstance(out, torch.Tensor) and steps, "callback called at every step"
    assert torch.equal(out, call(pipe, seed=2, batch_size=2, progress=False, temperature=0.8)), "batch split"
    assert isinstance(call(pipe, seed=2, output_type="np"), np.ndarray)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['temprature'\]"):
        call(pipe, temprature=0.8)
    with pytest.raises(ValueError, match="batch_size=0"):
        call(pipe, batch_size=0)


def test_save_load_round_trip(case, tmp_path):
    pipe, case = case
    folder = pipe.save_pretrained(tmp_path / "pipe")
    loaded = type(pipe).from_pretrained(folder)
    assert loaded.settings == pipe.settings
    assert torch.equal(loaded.generate_codes(2, **case.conditions, seed=5).codes,
                       pipe.generate_codes(2, **case.conditions, seed=5).codes)  # fmt: skip
    with pytest.raises(FileExistsError):
        pipe.save_pretrained(folder)
