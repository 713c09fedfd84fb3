"""Reading and writing video clips for the CLI: GIF through Pillow, MP4 (H.264) through ffmpeg.

Clips are FloatTensor[T, 3, H, W] in [0, 1]. GIFs hold up to 256 colours per clip (one palette from
every frame); Pillow merges identical consecutive frames, so the writer records one frame's delay
in the GIF comment and ``read_video`` counts merged frames back from their delays.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from mgm.checks import check_number
from mgm.io import atomic_write
from mgm.pipelines.animation import GIF_FRAME_MS, write_gif, write_mp4
from mgm.pipelines.image_io import check_free

VIDEO_FPS = 8.0
VIDEO_SUFFIXES = (".gif", ".mp4")


def _frames(clip: torch.Tensor) -> list[np.ndarray]:
    array = (clip.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return list(array)


def check_clip(clip, name: str) -> None:
    if not isinstance(clip, torch.Tensor) or clip.dim() != 4 or clip.shape[1] != 3 or clip.shape[0] < 1:
        got = f"shape {tuple(clip.shape)}" if isinstance(clip, torch.Tensor) else type(clip).__name__
        raise ValueError(f"{name}: got {got}; expected a clip [T, 3, H, W] in [0, 1]")
    if not bool(torch.isfinite(clip).all()):
        raise ValueError(f"{name}: holds NaN or infinite values")


def write_videos(clips: dict[str, torch.Tensor], out: str | os.PathLike, fps: float = VIDEO_FPS,
                 overwrite: bool = False) -> list[Path]:  # fmt: skip
    """Write {file name ending .gif or .mp4: clip [T, 3, H, W]} into ``out``. Every name and clip is
    checked (and for .mp4 the ffmpeg binary found) before the first file is written; each file
    appears whole or not at all."""
    check_number(fps, "fps", above=0)
    for name, clip in clips.items():
        check_clip(clip, f"clips[{name!r}]")
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"clips[{name!r}]: expected a file name ending in one of {VIDEO_SUFFIXES}")
        if Path(name).suffix.lower() == ".mp4" and clip.shape[-1] != clip.shape[-2]:
            raise ValueError(f"clips[{name!r}]: MP4 frames here are square; got {tuple(clip.shape[-2:])}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None and any(Path(n).suffix.lower() == ".mp4" for n in clips):
        raise ValueError("writing .mp4 needs an ffmpeg binary on PATH and none was found; write GIFs or install ffmpeg")
    check_free(out, clips, overwrite)
    written = []
    for name, clip in clips.items():
        path, frames = Path(out) / name, _frames(clip)
        if path.suffix.lower() == ".gif":
            written.append(atomic_write(path, lambda tmp, f=frames: write_gif(tmp, f, fps), overwrite=True))
        else:

            def mp4(tmp, f=frames, size=clip.shape[-1]):
                write_mp4(tmp, f, fps, size, ffmpeg)

            written.append(atomic_write(path, mp4, overwrite=True))
    return written


def read_video(path: str | os.PathLike) -> torch.Tensor:
    """A GIF -> FloatTensor[T, 3, H, W] in [0, 1]; frames Pillow merged are repeated by their delay
    (the comment's one-frame delay when an mgm GIF, else the shortest delay in the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{path}: expected a .gif clip")
    try:
        with Image.open(path) as image:
            comment = image.info.get("comment", b"").decode(errors="replace")
            frames, delays = [], []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frames.append(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
                delays.append(int(image.info.get("duration", 0) or 0))
    except OSError as e:
        raise ValueError(f"{path}: not a readable GIF ({e})") from e
    one = int(comment[len(GIF_FRAME_MS) :]) if comment.startswith(GIF_FRAME_MS) else min(delays)
    counts = [max(1, round(d / one)) if one > 0 else 1 for d in delays]
    clip = np.stack([frame for frame, count in zip(frames, counts) for _ in range(count)])
    return torch.from_numpy(clip).permute(0, 3, 1, 2).contiguous()


def clip_grid(clips: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """Clips [B, T, 3, H, W] -> one clip [T, 3, H', W'] showing them side by side in a grid."""
    nrow = nrow or max(1, int(round(len(clips) ** 0.5)))
    return torch.stack([torchvision.utils.make_grid(clips[:, t], nrow=nrow, padding=2, pad_value=1.0)
                        for t in range(clips.shape[1])])  # fmt: skip
