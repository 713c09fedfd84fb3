import pytest
import torch

from mgm.pipelines import AudioPipeline


def _sine(seconds: float, rate: int = 8000, freq: float = 330.0, batch: int = 2) -> torch.Tensor:
    t = torch.arange(round(seconds * rate)) / rate
    return (0.5 * torch.sin(2 * torch.pi * freq * t)).expand(batch, 1, -1).clone()


def test_generate_lengths_labels_and_plans(tiny_audio_pipeline):
    pipe = tiny_audio_pipeline
    assert pipe.max_frames == 10 and pipe.max_seconds == pytest.approx(0.2)
    audio = pipe.generate(3, labels=[0, 2], seed=0)
    assert audio.shape == (3, 1, 1600) and audio.abs().max() <= 1
    assert pipe.generate(2, seconds=0.1).shape == (2, 1, 800)
    for plan, nfe in [("soundstorm", 16 + 3), ("magnet", 20 + 3 * 10), ("gipd", 3 + 2)]:
        result = pipe.generate_codes(2, seconds=0.1, method="group", plan=plan)
        if plan == "gipd":
            result = pipe.generate_codes(2, seconds=0.1)
        assert result.codes.shape == (2, 4, 5) and result.nfe == nfe, plan
    joint = pipe.generate_codes(2, method="maskgit", num_steps=4)
    assert joint.nfe == 4 and joint.codes.shape == (2, 4, 10)


def test_same_seed_same_audio(tiny_audio_pipeline):
    a = tiny_audio_pipeline.generate_codes(2, seed=5).codes
    b = tiny_audio_pipeline.generate_codes(2, seed=5).codes
    assert torch.equal(a, b)


def test_continuation_keeps_the_prompt_tokens(tiny_audio_pipeline):
    pipe = tiny_audio_pipeline
    prompt = _sine(0.06)  # 480 samples = 3 frames
    result = pipe.continue_codes(prompt, seconds=0.2, labels=[1])
    assert result.codes.shape == (2, 4, 10)
    assert torch.equal(result.codes[..., :3], pipe.tokenizer.encode(prompt))
    assert pipe.continue_(prompt, seconds=0.15).shape == (2, 1, 1200)


def test_infill_keeps_everything_outside_the_span(tiny_audio_pipeline):
    pipe = tiny_audio_pipeline
    clip = _sine(0.2)
    original = pipe.tokenizer.encode(clip)
    result = pipe.infill_codes(clip, 0.05, 0.12)  # frames 2..5 (0.05 s = 2.5 frames -> from frame 2)
    outside = torch.ones(10, dtype=torch.bool)
    outside[2:6] = False
    assert torch.equal(result.codes[..., outside], original[..., outside])
    assert not torch.equal(result.codes, original), "the span was re-decoded"
    assert pipe.infill(clip, 0.05, 0.12).shape == (2, 1, 1600)


def test_other_sample_rates_are_resampled_or_refused(tiny_audio_pipeline):
    pipe = tiny_audio_pipeline
    at_16k = _sine(0.06, rate=16000)
    result = pipe.continue_codes(at_16k, sample_rate=16000)
    # The prompt passed through the tokenizer's resampler: 960 samples at 16 kHz -> 3 frames at 8 kHz.
    assert torch.equal(result.codes[..., :3], pipe.tokenizer.encode(at_16k, sample_rate=16000))
    assert result.codes.shape[-1] == 10
    pipe.tokenizer.resample = False
    try:
        with pytest.raises(ValueError, match="16000"):
            pipe.continue_codes(at_16k, sample_rate=16000)
    finally:
        pipe.tokenizer.resample = True


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: p.generate(2, seconds=0.5), "at most 0.2 s"),
        (lambda p: p.generate(2, seconds=0), "seconds=0: expected a number > 0"),
        (lambda p: p.generate(0), "num=0"),
        (lambda p: p.generate(2, labels=[3]), "labels"),
        (lambda p: p.generate(2, method="group", plan="nope"), "known group plan"),
        (lambda p: p.continue_(torch.zeros(1, 1, 0)), r"prompt: shape \(1, 1, 0\)"),
        (lambda p: p.continue_(_sine(0.01)), "shorter than one frame"),
        (lambda p: p.continue_(_sine(0.2)), "nothing to continue"),
        (lambda p: p.infill(_sine(0.2), 0.1, 0.3), "outside the clip"),
        (lambda p: p.infill(_sine(0.2), 0.1, 0.1), "start_s < end_s"),
        (lambda p: p.continue_(_sine(0.06) * 3), "range|\\[-1, 1\\]"),
    ],
)
def test_bad_input_fails_before_any_decoding(tiny_audio_pipeline, call, match, monkeypatch):
    calls = []
    original = tiny_audio_pipeline.transformer.forward
    monkeypatch.setattr(
        tiny_audio_pipeline.transformer, "forward", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    with pytest.raises(ValueError, match=match):
        call(tiny_audio_pipeline)
    assert calls == []


def test_save_load_round_trip(tiny_audio_pipeline, tmp_path):
    tiny_audio_pipeline.save_pretrained(tmp_path / "pipe")
    loaded = AudioPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.settings == tiny_audio_pipeline.settings and loaded.class_names == ["low", "mid", "high"]
    assert torch.equal(loaded.generate_codes(2, seed=1).codes, tiny_audio_pipeline.generate_codes(2, seed=1).codes)
    with pytest.raises(FileExistsError):
        tiny_audio_pipeline.save_pretrained(tmp_path / "pipe")


def test_overriding_the_plan_drops_the_saved_plan_options(tiny_audio_pipeline):
    # The pipeline's gipd options (steps [3, 2]) would not fit soundstorm; a new plan starts clean.
    result = tiny_audio_pipeline.generate_codes(1, method="group", plan="soundstorm")
    assert result.nfe == 16 + 3


def test_group_plans_decode_with_feature_reuse(tiny_audio_pipeline):
    pipe = tiny_audio_pipeline
    # A gipd plan plus a reuse pattern: per group, 2 full steps first, then 1 cheap step per full one.
    reuse = {"steps": [6, 4], "full_first": 2, "cheap_per_full": 1}
    result = pipe.generate_codes(2, seed=0, **reuse)
    full, cheap = True, False
    assert [r.full for r in result.trace] == [full, full, full, cheap, full, cheap, full, full, full, cheap]
    assert result.nfe == 10 and result.compute < 10
    plain = pipe.generate_codes(2, seed=0, steps=[6, 4])
    assert plain.compute == 10 and all(r.full for r in plain.trace)
    # Feature reuse keeps the editing invariant: frames outside the infill span keep their tokens.
    audio = pipe.generate(2, seed=1)
    codes = pipe.tokenizer.encode(audio)
    infilled = pipe.infill_codes(audio, 0.05, 0.1, seed=2, plan="magnet", full_first=1)
    assert any(not r.full for r in infilled.trace)
    kept = infilled.codes
    span = slice(round(0.05 * pipe.frame_rate), round(0.1 * pipe.frame_rate))
    assert torch.equal(kept[..., : span.start], codes[..., : span.start])
    assert torch.equal(kept[..., span.stop :], codes[..., span.stop :])
    with pytest.raises(ValueError, match="cheap_per_full=-1"):
        pipe.generate_codes(1, steps=[3, 2], cheap_per_full=-1)
    # Options of one plan do not carry over to another plan given per call (gipd's steps kept,
    # soundstorm's own default used), and an option a plan does not take is named.
    with pytest.raises(ValueError, match=r"plan 'soundstorm' does not take \['span'\]"):
        pipe.generate_codes(1, plan="soundstorm", span=2)
