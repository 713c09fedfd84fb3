"""VideoPipeline and VideoVQ: prediction keeps the given frames, every masked decoder runs on
video tokens unchanged, and bad input is named before any work."""

import pytest
import torch

from mgm.decoding.registry import MASKED, METHODS, method_names
from mgm.models import MaskedTransformer
from mgm.pipelines import VideoPipeline
from mgm.tokenizers.video_vq import VideoVQ, cut_tiles, join_tiles


@pytest.fixture
def clips(tiny_video_pipeline):
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 4, 3, 16, 16, generator=g)


def given_tokens(pipe, frames):
    """The frame VQ's tokens of frames [B, F, 3, S, S], flattened frame-major: [B, F * h * w]."""
    return pipe.tokenizer.frames.encode(frames.flatten(0, 1)).view(frames.shape[0], -1)


def runnable_methods(model):
    traits = {"critic_scores": False, "forward_partial": True, "forward_cached": True, "forward_group": False}
    return [name for name in method_names(MASKED) if all(traits.get(t, False) for t in METHODS[name].needs)]


@pytest.mark.parametrize("cached", [False, True])
def test_every_masked_decoder_predicts_with_the_given_frames_tokens_unchanged(tiny_video_pipeline, clips, cached):
    pipe = tiny_video_pipeline
    names = runnable_methods(pipe.transformer)
    assert {"maskgit", "recap", "threshold", "remask", "verified", "group"} <= set(names)
    for name in names:
        options = {"method": name}
        if cached and "cached" in METHODS[name].option_names:
            options["cached"] = True
        elif cached:
            continue
        result = pipe.predict_codes(clips[:, :2], labels=[0, 1], seed=1, **options)
        given = given_tokens(pipe, clips[:, :2])
        assert torch.equal(result.codes[:, 0, : given.shape[1]], given), name
        assert not bool(pipe.spec.is_masked(result.codes).any()), name
        assert pipe.generate_codes(2, seed=1, **options).codes.shape == (2, 1, 256), name


def test_predict_returns_the_given_frames_then_the_predicted_ones(tiny_video_pipeline, clips):
    pipe = tiny_video_pipeline
    out = pipe.predict(clips[:, :1], labels=[1], seed=3)
    assert out.shape == (2, 4, 3, 16, 16) and torch.equal(out[:, :1], clips[:, :1])
    short = pipe.predict(clips[:, :1], 2, labels=[1], seed=3)
    assert short.shape == (2, 3, 3, 16, 16) and torch.equal(short, out[:, :3])
    one = pipe.predict(clips[0, :3], labels=[1], seed=3)  # one clip's frames, no batch axis
    assert one.shape == (1, 4, 3, 16, 16)


def test_predicting_past_the_model_s_frames_rolls_out_in_windows(tiny_video_pipeline, clips):
    pipe = tiny_video_pipeline  # T = 4 frames of 64 tokens; rollout windows keep rollout_context(2) = 2 frames
    assert pipe.rollout_context(1) == 2 and pipe.rollout_context(3) == 3
    long = pipe.predict_codes(clips[:, :2], 6, labels=[0, 1], seed=7)
    assert long.codes.shape == (2, 1, 8 * 64) and not bool(pipe.spec.is_masked(long.codes).any())
    assert torch.equal(long.codes[:, 0, :128], given_tokens(pipe, clips[:, :2]))
    first = pipe.predict_codes(clips[:, :2], labels=[0, 1], seed=7)
    assert torch.equal(long.codes[..., :256], first.codes)  # the first window is the plain prediction
    assert long.nfe == 3 * first.nfe  # three windows: frames 2-3, 4-5, 6-7
    out = pipe.predict(clips[:, :2], 6, labels=[0, 1], seed=7)
    assert out.shape == (2, 8, 3, 16, 16) and torch.equal(out[:, :2], clips[:, :2])
    assert torch.equal(pipe.predict_codes(clips[:, :2], 5, labels=[0, 1], seed=7).codes, long.codes[..., : 7 * 64])
    # pixels in [0, 1]; decoding 7 or 8 frames in one batch may round differently in the convolutions
    torch.testing.assert_close(pipe.predict(clips[:, :2], 5, labels=[0, 1], seed=7), out[:, :7], atol=1e-5, rtol=0)


def test_the_future_depends_on_the_given_frames(tiny_video_pipeline, clips):
    pipe = tiny_video_pipeline
    a = pipe.predict_codes(clips[:1, :2], labels=[0], seed=4, temperature=1e-3).codes
    b = pipe.predict_codes(clips[1:, :2], labels=[0], seed=4, temperature=1e-3).codes
    assert not torch.equal(a[:, :, 128:], b[:, :, 128:])


def test_interpolate_keeps_both_ends(tiny_video_pipeline, clips):
    pipe = tiny_video_pipeline
    out = pipe.interpolate(clips[:, 0], clips[:, 3], labels=[2], seed=5)
    assert out.shape == (2, 4, 3, 16, 16)
    assert torch.equal(out[:, 0], clips[:, 0]) and torch.equal(out[:, 3], clips[:, 3])
    result = pipe.interpolate_codes(clips[:, :1], clips[:, 2:], labels=[2], seed=5)
    assert torch.equal(result.codes[:, 0, :64], given_tokens(pipe, clips[:, :1]))
    assert torch.equal(result.codes[:, 0, 128:], given_tokens(pipe, clips[:, 2:]))


def test_edit_codes_keeps_what_is_not_editable(tiny_video_pipeline, clips):
    pipe = tiny_video_pipeline
    editable = torch.zeros(256, dtype=torch.bool)
    editable[::3] = True
    result = pipe.edit_codes(clips, editable, labels=[0], seed=0)
    encoded = pipe.tokenizer.encode(clips)
    assert torch.equal(result.codes[..., ~editable], encoded[..., ~editable])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p, c: p.predict(c[:, :4]), "nothing to predict"),
        (lambda p, c: p.predict(c[:, :2], 0), "num_future=0"),
        (lambda p, c: p.predict(c[:, :2, :, :8]), "frames: expected frames"),
        (lambda p, c: p.predict(c[:, :2] * 3), "frames: values span"),
        (lambda p, c: p.predict(c[:, :0]), "frames: no frames"),
        (lambda p, c: p.interpolate(c[:, :2], c[:, 2:]), "leave nothing between"),
        (lambda p, c: p.interpolate(c[:, :1], c[:1, 3:]), "end: 1 clips"),
        (lambda p, c: p.predict(c[:, :2], temprature=1.0), "temprature"),
    ],
)
def test_bad_input_is_named_before_any_work(tiny_video_pipeline, clips, call, match, monkeypatch):
    pipe = tiny_video_pipeline
    monkeypatch.setattr(pipe, "decode_codes", lambda *a, **k: pytest.fail("decoded before the check"))
    with pytest.raises(ValueError, match=match):
        call(pipe, clips)


def test_video_vq_codes_frames_on_a_time_grid_and_round_trips(tiny_vq, tmp_path):
    tok = VideoVQ(tiny_vq, num_frames=3)
    assert tok.spec.shape == (3, 8, 8) and tok.downsample == tiny_vq.downsample
    videos = torch.rand(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    codes = tok.encode(videos)
    assert codes.shape == (2, 1, 192)
    assert torch.equal(codes[1, 0, 64:128], tiny_vq.encode(videos[1, 1:2])[0, 0])  # frame-major
    decoded = tok.decode(codes)
    assert decoded.shape == videos.shape
    # pixels in [0, 1]; a batch of 6 frames and one of 1 may round differently in the convolutions
    torch.testing.assert_close(decoded[0, 2:], tiny_vq.decode(codes[:1, :, 128:]), atol=1e-5, rtol=0)
    tok.save_pretrained(tmp_path / "tok")
    loaded = VideoVQ.from_pretrained(tmp_path / "tok")
    assert loaded.num_frames == 3 and torch.equal(loaded.encode(videos), codes)
    tiny_vq.save_pretrained(tmp_path / "frames")  # a plain frame VQ folder serves with num_frames
    assert VideoVQ.from_pretrained(tmp_path / "frames", num_frames=5).spec.shape == (5, 8, 8)
    with pytest.raises(ValueError, match="num_frames"):
        VideoVQ.from_pretrained(tmp_path / "frames")
    with pytest.raises(ValueError, match=r"videos: shape \(2, 2, 3, 16, 16\)"):
        tok.encode(videos[:, :2])


def test_cut_tiles_and_join_tiles_are_inverse_and_raster_ordered():
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    tiles = cut_tiles(images, 3)
    assert tiles.shape == (18, 3, 4, 4)
    assert torch.equal(tiles[5], images[0, :, 4:8, 8:12]) and torch.equal(tiles[9], images[1, :, :4, :4])
    assert torch.equal(join_tiles(tiles, 3), images)
    with pytest.raises(ValueError, match="tiles=5"):
        cut_tiles(images, 5)


def test_a_tiled_video_vq_codes_each_tile_alone(tiny_vq, tmp_path):
    tok = VideoVQ(tiny_vq, num_frames=2, tiles=2)  # frames of 32x32: 2x2 tiles of the 16x16 VQ
    assert tok.image_size == 32 and tok.spec.shape == (2, 16, 16)
    videos = torch.rand(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    codes = tok.encode(videos).view(2, 2, 16, 16)
    # the top-right tile of clip 1's frame 0 holds the tile VQ's codes of that tile, in its grid cells
    assert torch.equal(codes[1, 0, :8, 8:].flatten(), tiny_vq.encode(videos[1, 0:1, :, :16, 16:])[0, 0])
    changed = videos.clone()
    changed[:, :, :, 16:, :16] = torch.rand(2, 2, 3, 16, 16)  # another bottom-left tile
    other = tok.encode(changed).view(2, 2, 16, 16)
    assert torch.equal(other[..., :8, :], codes[..., :8, :]) and torch.equal(other[..., 8:, 8:], codes[..., 8:, 8:])
    assert tok.decode(codes.view(2, 1, -1)).shape == videos.shape
    loaded = VideoVQ.from_pretrained(tok.save_pretrained(tmp_path / "tok"))
    assert loaded.tiles == 2 and torch.equal(loaded.encode(videos), codes.view(2, 1, -1))
    tiny_vq.save_pretrained(tmp_path / "frames")
    assert VideoVQ.from_pretrained(tmp_path / "frames", num_frames=2, tiles=2).spec.shape == (2, 16, 16)
    with pytest.raises(ValueError, match="tiles"):
        VideoVQ(tiny_vq, 2, tiles=0)


def test_a_model_of_another_grid_does_not_fit(tiny_vq):
    model = MaskedTransformer([32], [3, 8, 8], dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="spec"):
        VideoPipeline(VideoVQ(tiny_vq, 4), model)


def test_gifs_round_trip_frames_pillow_merges(tmp_path):
    from mgm.data.moving_shapes import make_clips
    from mgm.pipelines.video_io import read_video, write_videos

    clip = make_clips(1, num_frames=6, seed=0).clips[0]
    clip[2:5] = clip[1]  # frames 1 to 4 identical: Pillow stores them as one frame with their summed delay
    [path] = write_videos({"clip.gif": clip}, tmp_path, fps=8)
    back = read_video(path)
    assert back.shape == clip.shape
    assert float((back - clip).abs().max()) <= 1 / 255 + 1e-6  # few colours: the palette holds them all


@pytest.mark.parametrize(
    "clips, match",
    [
        ({"a.png": torch.rand(2, 3, 8, 8)}, "ending in one of"),
        ({"a.gif": torch.rand(3, 8, 8)}, r"expected a clip \[T, 3, H, W\]"),
        ({"a.gif": torch.full((2, 3, 8, 8), float("nan"))}, "NaN"),
    ],
)
def test_bad_clips_are_named_before_anything_is_written(tmp_path, clips, match):
    from mgm.pipelines.video_io import write_videos

    with pytest.raises(ValueError, match=match):
        write_videos({"ok.gif": torch.rand(2, 3, 8, 8), **clips}, tmp_path / "out")
    assert not (tmp_path / "out").exists()
