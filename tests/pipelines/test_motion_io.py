import os
import shutil
import stat
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mgm.data.motion_features import FEATURE_DIM, recover_joints
from mgm.data.motions import make_motions
from mgm.pipelines.motion_io import read_motion, render_animation, write_motions


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    clips = make_motions(1, seed=0, seconds=2.0)
    return clips.features[0, : clips.lengths[0]]  # [40, 263]


@pytest.fixture(scope="module")
def joints(features) -> torch.Tensor:
    return recover_joints(features)[:4]  # a few frames are enough for the writers' plumbing


def _listing(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_write_motions_writes_features_joints_and_gif(features, tmp_path):
    written = write_motions({"walk_0": features}, tmp_path / "out")
    out = tmp_path / "out"
    assert written == [out / "walk_0.npy", out / "walk_0_joints.npy", out / "walk_0.gif"]
    assert _listing(out) == {"walk_0.npy", "walk_0_joints.npy", "walk_0.gif"}, "no temporary files left behind"

    saved = np.load(out / "walk_0.npy", allow_pickle=False)
    assert saved.dtype == np.float32 and saved.shape == (len(features), FEATURE_DIM)
    assert torch.equal(read_motion(out / "walk_0.npy"), features)
    saved_joints = np.load(out / "walk_0_joints.npy", allow_pickle=False)
    assert saved_joints.dtype == np.float32
    assert torch.equal(torch.from_numpy(saved_joints), recover_joints(features))

    with Image.open(out / "walk_0.gif") as gif:
        assert gif.n_frames == len(features)  # one frame per joint frame, none merged
        assert gif.size == (320, 320) and gif.info["duration"] == 50 and gif.info["loop"] == 0


def test_write_motions_refuses_to_overwrite_and_leaves_nothing_new(features, tmp_path):
    (tmp_path / "b_joints.npy").write_bytes(b"keep me")
    motions = {"a": features, "b": features[:10]}
    with pytest.raises(FileExistsError, match="b_joints.npy"):
        write_motions(motions, tmp_path, render=False)
    assert _listing(tmp_path) == {"b_joints.npy"} and (tmp_path / "b_joints.npy").read_bytes() == b"keep me"

    written = write_motions(motions, tmp_path, render=False, overwrite=True)
    assert [p.name for p in written] == ["a.npy", "a_joints.npy", "b.npy", "b_joints.npy"]
    assert np.load(tmp_path / "b_joints.npy").shape == (10, 22, 3)


@pytest.mark.parametrize(
    "motions, match",
    [
        ({"a": torch.zeros(5, FEATURE_DIM - 1)}, r"motions\['a'\].*expected \[\.\.\., F, 263\]"),
        ({"a": torch.full((5, FEATURE_DIM), float("nan"))}, r"motions\['a'\].*NaN"),
        ({"a": torch.zeros(2, 5, FEATURE_DIM)}, r"motions\['a'\].*expected one clip \[F, 263\]"),
        ({"a": torch.zeros(0, FEATURE_DIM)}, r"motions\['a'\].*F >= 1"),
        ({"../a": torch.zeros(5, FEATURE_DIM)}, "plain file name"),
        ({"a": torch.zeros(5, FEATURE_DIM), "a_joints": torch.zeros(5, FEATURE_DIM)}, "both write a_joints.npy"),
    ],
)
def test_write_motions_rejects_bad_input_before_writing(motions, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        write_motions(motions, tmp_path)
    assert _listing(tmp_path) == set()


def test_read_motion_rejects_what_is_not_features(features, tmp_path):
    write_motions({"a": features}, tmp_path, render=False)
    with pytest.raises(ValueError, match=r"expected features \[F, 263\] \(a \*_joints.npy file holds joints"):
        read_motion(tmp_path / "a_joints.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable .npy array"):
        read_motion(tmp_path / "objects.npy")
    np.save(tmp_path / "nan.npy", np.full((3, FEATURE_DIM), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        read_motion(tmp_path / "nan.npy")
    with pytest.raises(FileNotFoundError):
        read_motion(tmp_path / "missing.npy")


def test_render_animation_checks_its_arguments(joints, tmp_path):
    with pytest.raises(ValueError, match=r"path='.*\.png'.*expected a file name ending in one of"):
        render_animation(joints, tmp_path / "a.png")
    with pytest.raises(ValueError, match="fps=0"):
        render_animation(joints, tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError, match=r"joints: got shape \(2, 4, 22, 3\); expected one clip"):
        render_animation(joints.expand(2, -1, -1, -1), tmp_path / "a.gif")
    with pytest.raises(ValueError, match=r"expected \[\.\.\., T, 22, 3\]"):
        render_animation(joints[..., :2], tmp_path / "a.gif")
    (tmp_path / "taken.gif").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        render_animation(joints, tmp_path / "taken.gif")
    assert _listing(tmp_path) == {"taken.gif"}

    assert render_animation(joints, tmp_path / "taken.gif", fps=10, size=64, overwrite=True) == tmp_path / "taken.gif"
    with Image.open(tmp_path / "taken.gif") as gif:
        assert gif.n_frames == len(joints) and gif.size == (64, 64) and gif.info["duration"] == 100


def test_mp4_without_ffmpeg_says_to_use_gif(joints, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg to be found
    with pytest.raises(ValueError, match=r"needs an ffmpeg binary on PATH.*use a \.gif path"):
        render_animation(joints, tmp_path / "a.mp4")
    assert _listing(tmp_path) == set()


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in ffmpeg is a shell script")
def test_mp4_pipes_raw_frames_to_ffmpeg(joints, tmp_path, monkeypatch):
    # A stand-in ffmpeg that stores the raw RGB frames it is sent in the output file (its last argument).
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor last; do :; done\ncat > "$last"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    path = render_animation(joints, tmp_path / "a.mp4", size=64)
    assert path.stat().st_size == len(joints) * 64 * 64 * 3

    fake.write_text("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n")
    with pytest.raises(RuntimeError, match="ffmpeg failed.*Unknown encoder libx264"):
        render_animation(joints, tmp_path / "b.mp4", size=64)
    assert not (tmp_path / "b.mp4").exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg on PATH")
def test_mp4_with_real_ffmpeg(joints, tmp_path):
    path = render_animation(joints, tmp_path / "a.mp4", size=64)
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 container
