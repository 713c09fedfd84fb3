"""Video tokenizer: a per-frame image VQ (``ImageVQ``) over clips of a fixed number of frames.

Clips are FloatTensor[B, T, 3, H, W] in [0, 1]. Each frame is encoded on its own; the codes are
frame-major over a 3-D grid: ``codes[B, 1, T * h * w]`` with spec shape (T, h, w), so the
transformer's per-axis embeddings give time, row and column. The folder is the frame VQ's
diffusers folder plus ``video.json`` (``{"num_frames": T, "tiles": n}``).

With ``tiles=n`` each frame is cut into n x n tiles of the frame VQ's size, coded one by one and
laid back on the frame's code grid: every code then sees only its own tile, so a tile whose
pixels do not change keeps its codes (a whole-frame VQ's codes depend on the whole frame through
its receptive field and normalisation; docs/findings.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from mgm.checks import check_int
from mgm.hub import HubMixin, resolve_folder
from mgm.io import atomic_folder, load_json, save_json
from mgm.tokenizers.image_vq import ImageVQ, cut_tiles, join_tiles
from mgm.tokens import TokenSpec

VIDEO_CONFIG = "video.json"


class VideoVQ(HubMixin, nn.Module):
    """``frames``: the ImageVQ that codes each frame (or each tile); ``num_frames``: T, the clip
    length; ``tiles``: n, frames of n x n tiles of the frame VQ's size (1: the frame VQ codes whole frames)."""

    def __init__(self, frames: ImageVQ, num_frames: int = 16, tiles: int = 1):
        super().__init__()
        if not isinstance(frames, ImageVQ):
            raise ValueError(f"frames: expected an ImageVQ, got {type(frames).__name__}")
        check_int(num_frames, "num_frames", 1)
        check_int(tiles, "tiles", 1)
        self.frames, self.num_frames, self.tiles = frames, num_frames, tiles
        self.image_size, self.downsample = frames.image_size * tiles, frames.downsample
        h, w = frames.spec.shape
        self.spec = TokenSpec(frames.spec.codebook_sizes, (num_frames, h * tiles, w * tiles))

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | os.PathLike, num_frames: int | None = None, tiles: int | None = None, **hub
    ) -> VideoVQ:
        """A folder written by ``save_pretrained`` (or a hub id). A plain ImageVQ folder (no
        ``video.json``) loads too when ``num_frames`` is given: any frame VQ serves (``tiles``:
        as a tile VQ, default 1). Arguments given override the saved ones."""
        folder = resolve_folder(path_or_id, "a saved VideoVQ or ImageVQ folder", "config.json", **hub)
        if (folder / VIDEO_CONFIG).is_file():
            saved = load_json(folder / VIDEO_CONFIG)
            num_frames = saved.get("num_frames") if num_frames is None else num_frames
            tiles = saved.get("tiles", 1) if tiles is None else tiles
        elif num_frames is None:
            raise ValueError(f"{folder}: no {VIDEO_CONFIG}; pass num_frames to use it as a frame tokenizer")
        return cls(ImageVQ.from_pretrained(folder), num_frames, 1 if tiles is None else tiles)

    def save_pretrained(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        directory = Path(directory)
        with atomic_folder(directory, overwrite) as built:
            self.frames.write_files(built)
            save_json({"num_frames": self.num_frames, "tiles": self.tiles}, built / VIDEO_CONFIG)
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
        self.frames.check_images(self.cut_tiles(videos.flatten(0, 1)), name)

    def cut_tiles(self, images: torch.Tensor) -> torch.Tensor:
        """images [F, 3, S, S] -> tiles [F * n * n, 3, S / n, S / n] (``cut_tiles``)."""
        return cut_tiles(images, self.tiles)

    @torch.no_grad()
    def encode(self, videos: torch.Tensor) -> torch.Tensor:
        """videos FloatTensor[B, T, 3, H, W] in [0, 1] -> codes LongTensor[B, 1, T * h * w]."""
        self.check_videos(videos)
        codes = self.frames.encode(self.cut_tiles(videos.flatten(0, 1)))  # (B * T * n * n, 1, h' * w')
        h, w = self.frames.spec.shape
        n = self.tiles
        grid = codes.view(-1, n, n, h, w).permute(0, 1, 3, 2, 4)  # (B * T, n, h', n, w'): rows of tiles
        return grid.reshape(videos.shape[0], 1, -1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, 1, T * h * w] -> videos FloatTensor[B, T, 3, H, W] in [0, 1]."""
        self.spec.check_codes(codes)
        b, n = codes.shape[0], self.tiles
        h, w = self.frames.spec.shape
        tile_codes = codes.view(b * self.num_frames, n, h, n, w).permute(0, 1, 3, 2, 4)  # (B * T, n, n, h', w')
        frames = join_tiles(self.frames.decode(tile_codes.reshape(-1, 1, h * w)), n)
        return frames.view(b, self.num_frames, *frames.shape[1:])

    def frame_positions(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame indices LongTensor[F] (or a BoolTensor[T] selection) -> BoolTensor[N]: their tokens."""
        per_frame = torch.zeros(self.num_frames, dtype=torch.bool)
        per_frame[frames] = True
        return per_frame.repeat_interleave(self.spec.num_positions // self.num_frames)
