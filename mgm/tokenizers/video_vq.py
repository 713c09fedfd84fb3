"""Video tokenizer: a per-frame image VQ (``ImageVQ``) over clips of a fixed number of frames.

Clips are FloatTensor[B, T, 3, H, W] in [0, 1]. Each frame is encoded on its own; the codes are
frame-major over a 3-D grid: ``codes[B, 1, T * h * w]`` with spec shape (T, h, w), so the
transformer's per-axis embeddings give time, row and column. The folder is the frame VQ's
diffusers folder plus ``video.json`` (``{"num_frames": T}``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from mgm.checks import check_int
from mgm.hub import HubMixin, resolve_folder
from mgm.io import atomic_folder, load_json, save_json
from mgm.tokenizers.image_vq import ImageVQ
from mgm.tokens import TokenSpec

VIDEO_CONFIG = "video.json"


class VideoVQ(HubMixin, nn.Module):
    """``frames``: the ImageVQ that codes each frame; ``num_frames``: T, the clip length."""

    def __init__(self, frames: ImageVQ, num_frames: int = 16):
        super().__init__()
        if not isinstance(frames, ImageVQ):
            raise ValueError(f"frames: expected an ImageVQ, got {type(frames).__name__}")
        check_int(num_frames, "num_frames", 1)
        self.frames, self.num_frames = frames, num_frames
        self.image_size, self.downsample = frames.image_size, frames.downsample
        self.spec = TokenSpec(frames.spec.codebook_sizes, (num_frames, *frames.spec.shape))

    @classmethod
    def from_pretrained(cls, path_or_id: str | os.PathLike, num_frames: int | None = None, **hub) -> VideoVQ:
        """A folder written by ``save_pretrained`` (or a hub id). A plain ImageVQ folder (no
        ``video.json``) loads too when ``num_frames`` is given: any frame VQ serves."""
        folder = resolve_folder(path_or_id, "a saved VideoVQ or ImageVQ folder", "config.json", **hub)
        if (folder / VIDEO_CONFIG).is_file():
            saved = load_json(folder / VIDEO_CONFIG).get("num_frames")
            num_frames = saved if num_frames is None else num_frames
        elif num_frames is None:
            raise ValueError(f"{folder}: no {VIDEO_CONFIG}; pass num_frames to use it as a frame tokenizer")
        return cls(ImageVQ.from_pretrained(folder), num_frames)

    def save_pretrained(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        directory = Path(directory)
        with atomic_folder(directory, overwrite) as built:
            self.frames.vq.save_pretrained(str(built), safe_serialization=True)
            save_json({"num_frames": self.num_frames}, built / VIDEO_CONFIG)
        return directory

    def check_videos(self, videos: torch.Tensor, name: str = "videos") -> None:
        """Raise ValueError unless ``videos`` is FloatTensor[B, T, 3, S, S] in [0, 1] at this T and S."""
        expected = (self.num_frames, 3, self.image_size, self.image_size)
        if not isinstance(videos, torch.Tensor) or not videos.is_floating_point() or videos.dim() != 5:
            got = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
            raise ValueError(f"{name}: expected a float tensor [B, T, 3, H, W] in [0, 1], got {got}")
        if tuple(videos.shape[1:]) != expected:
            raise ValueError(
                f"{name}: shape {tuple(videos.shape)}; this tokenizer expects [B, {', '.join(map(str, expected))}]"
            )
        self.frames.check_images(videos.flatten(0, 1), name)

    @torch.no_grad()
    def encode(self, videos: torch.Tensor) -> torch.Tensor:
        """videos FloatTensor[B, T, 3, H, W] in [0, 1] -> codes LongTensor[B, 1, T * h * w]."""
        self.check_videos(videos)
        codes = self.frames.encode(videos.flatten(0, 1))  # (B * T, 1, h * w)
        return codes.view(videos.shape[0], 1, -1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, 1, T * h * w] -> videos FloatTensor[B, T, 3, H, W] in [0, 1]."""
        self.spec.check_codes(codes)
        b = codes.shape[0]
        frames = self.frames.decode(codes.reshape(b * self.num_frames, 1, -1))
        return frames.view(b, self.num_frames, *frames.shape[1:])

    def frame_positions(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame indices LongTensor[F] (or a BoolTensor[T] selection) -> BoolTensor[N]: their tokens."""
        per_frame = torch.zeros(self.num_frames, dtype=torch.bool)
        per_frame[frames] = True
        return per_frame.repeat_interleave(self.spec.num_positions // self.num_frames)
