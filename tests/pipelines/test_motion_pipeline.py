import pytest
import torch

from mgm.data.motion_features import recover_joints
from mgm.data.motions import make_motions
from mgm.pipelines.motion import MotionPipeline


def _clips(num=2, frames=40):
    clips = make_motions(num, seed=3, seconds=2.5)
    return clips.features[:, :frames]


def test_generate_lengths_and_seeds(tiny_motion_pipeline):
    pipe = tiny_motion_pipeline
    assert pipe.max_tokens == 10 and pipe.max_seconds == 2.0
    motion = pipe.generate(texts=["a person walks forward", "someone waves"], seconds=1.0, seed=0)
    assert motion.shape == (2, 20, 263) and torch.isfinite(motion).all()
    assert recover_joints(motion).shape == (2, 20, 22, 3)
    again = pipe.generate(texts=["a person walks forward", "someone waves"], seconds=1.0, seed=0)
    assert torch.equal(motion, again)
    assert pipe.generate(3, texts="a man jumps").shape == (3, 40, 263)
    # Decoding steps scaled with the length: 2.5 steps per second.
    assert pipe.generate_codes(texts="a man jumps", seconds=1.0, steps_per_second=2.5).nfe == 3
    assert pipe.generate_codes(texts="a man jumps", seconds=2.0, steps_per_second=2.5).nfe == 5
    with pytest.raises(ValueError, match="steps_per_second=0"):
        pipe.generate_codes(texts="a man jumps", steps_per_second=0)


def test_editing_keeps_the_given_tokens(tiny_motion_pipeline):
    pipe = tiny_motion_pipeline
    motion = _clips()
    given = pipe.encode(motion)  # (2, 2, 10)
    # In-betweening: the first 0.4 s (2 tokens) and the last 0.6 s (3 tokens) are kept.
    result = pipe.inbetween_codes(motion, 0.4, 0.6, texts="a person walks", seed=1)
    assert torch.equal(result.codes[..., :2], given[..., :2]) and torch.equal(result.codes[..., 7:], given[..., 7:])
    assert not torch.equal(result.codes[..., 2:7], given[..., 2:7])
    # Completion of a 1 s prefix (5 tokens) to 2 s, and of a suffix.
    prefix = pipe.complete_codes(motion[:, :20], 2.0, texts="a person walks", seed=1).codes
    assert prefix.shape == (2, 2, 10) and torch.equal(prefix[..., :5], given[..., :5])
    suffix = pipe.complete_codes(motion[:, 20:], 2.0, "suffix", texts="a person walks", seed=1).codes
    assert torch.equal(suffix[..., 5:], pipe.encode(motion[:, 20:]))
    # Body-part editing: the lower body's tokens, and so its features, are kept exactly.
    edited = pipe.edit_part_codes(motion, "upper", texts="someone waves", seed=2).codes
    assert torch.equal(edited[:, 0], given[:, 0]) and not torch.equal(edited[:, 1], given[:, 1])
    lower = pipe.tokenizer.part_dims[0]
    kept, new = pipe.features(given), pipe.features(edited)
    assert torch.equal(kept[..., lower], new[..., lower])


def test_long_sequence_joins_segments(tiny_motion_pipeline):
    motion = tiny_motion_pipeline.long_sequence(["a person walks", "a person jumps", "someone sits down"], 1.0)
    assert motion.shape == (1, 3 * 20, 263) and torch.isfinite(motion).all()


def test_save_load_round_trip(tiny_motion_pipeline, tmp_path):
    folder = tiny_motion_pipeline.save_pretrained(tmp_path / "pipe")
    loaded = MotionPipeline.from_pretrained(folder)
    a = loaded.generate(texts="a man kicks", seconds=1.0, seed=4)
    b = tiny_motion_pipeline.generate(texts="a man kicks", seconds=1.0, seed=4)
    assert torch.equal(a, b)
    with pytest.raises(FileExistsError):
        tiny_motion_pipeline.save_pretrained(folder)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: p.generate(texts=""), r"texts\[0\]=''"),
        (lambda p: p.generate(texts="walk", seconds=9), "seconds=9"),
        (lambda p: p.edit_part(torch.zeros(1, 40, 250), texts="walk"), "263"),
        (lambda p: p.edit_part(torch.full((1, 40, 263), float("nan")), texts="walk"), "NaN"),
        (lambda p: p.edit_part(torch.zeros(1, 3, 263), texts="walk"), "F >= 4"),
        (lambda p: p.edit_part(_clips(1), "head", texts="walk"), "part='head'"),
        (lambda p: p.inbetween(_clips(1), 1.0, 1.0, texts="walk"), "nothing left"),
    ],
)
def test_bad_input_fails_before_any_decoding(tiny_motion_pipeline, call, match, monkeypatch):
    monkeypatch.setattr(type(tiny_motion_pipeline), "decode_codes", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(ValueError, match=match):
        call(tiny_motion_pipeline)


def test_a_missing_shipped_pipeline_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(MotionPipeline, "default_folder", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="make pretrained-motion"):
        MotionPipeline.default()
