"""Video DataModules: the embedded MovingShapes clips, their frames (for a frame tokenizer), and
their pre-tokenized codes.

Batches are ``{"videos": FloatTensor[B, T, 3, S, S] in [0, 1], "labels": LongTensor[B]}``, or
for frames ``{"images": FloatTensor[B, 3, S, S], "labels"}``.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from mgm.checks import check_int
from mgm.data.moving_shapes import MovingShapesDataset, MovingShapesFrames
from mgm.data.pretokenize import pretokenize
from mgm.parallel import Ranks
from mgm.training.datamodules import CodesDataModule, SplitDataModule


class MovingShapesDataModule(SplitDataModule):
    """The embedded MovingShapes clips (generated in memory from ``seed``; nothing to download)."""

    def __init__(
        self,
        num_clips: int = 5000,
        num_frames: int = 16,
        image_size: int = 32,
        seed: int = 0,
        batch_size: int = 16,
        val_fraction: float = 0.05,
        num_workers: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        check_int(num_clips, "num_clips")
        self.num_clips, self.num_frames, self.image_size = num_clips, num_frames, image_size

    def dataset(self) -> Dataset:
        return MovingShapesDataset(self.num_clips, self.num_frames, self.image_size, self.seed)

    def describe(self) -> str:
        """A string naming the data exactly (part of the pre-tokenization fingerprint)."""
        return (f"moving_shapes(num_clips={self.num_clips}, num_frames={self.num_frames}, "
                f"image_size={self.image_size}, seed={self.seed})")  # fmt: skip


class MovingShapesFramesDataModule(MovingShapesDataModule):
    """The frames of ``num_clips`` MovingShapes clips as ``{"images", "labels"}`` items, the batches
    of an image DataModule (frame VQ training). ``tiles=n``: each frame's n x n tiles as the items
    instead (training the tile VQ of a ``VideoVQ(tiles=n)``)."""

    def __init__(
        self,
        num_clips: int = 1250,
        num_frames: int = 16,
        image_size: int = 32,
        seed: int = 0,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        tiles: int = 1,
    ):
        super().__init__(num_clips, num_frames, image_size, seed, batch_size, val_fraction, num_workers)
        check_int(tiles, "tiles")
        if image_size % tiles:
            raise ValueError(f"tiles={tiles}: frames of {image_size} pixels do not split into {tiles} x {tiles} tiles")
        self.tiles = tiles

    def dataset(self) -> Dataset:
        frames = MovingShapesFrames(self.num_clips, self.num_frames, self.image_size, self.seed)
        if self.tiles > 1:
            from mgm.tokenizers.video_vq import cut_tiles

            frames.images = cut_tiles(frames.images, self.tiles)
            frames.labels = frames.labels.repeat_interleave(self.tiles**2)
        return frames

    def describe(self) -> str:
        tiles = f"{self.tiles}x{self.tiles} tiles of " if self.tiles > 1 else ""
        return tiles + "frames of " + super().describe()


class PretokenizedVideoDataModule(CodesDataModule):
    """Codes of a video DataModule's clips under a saved VideoVQ (or a frame ImageVQ folder: the
    clips' frame count is used; ``tiles``: a tile VQ's n, overriding a saved one), encoded once into
    ``cache``."""

    def __init__(
        self,
        videos: MovingShapesDataModule,
        tokenizer: str,
        cache: str,
        batch_size: int = 16,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
        tiles: int | None = None,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.videos, self.tokenizer_dir, self.cache, self.tiles = videos, tokenizer, cache, tiles

    def prepare_data(self) -> None:
        """Encode into ``cache`` once (as ``PretokenizedImageDataModule``)."""
        if Ranks.current().world_size == 1:
            self.load()

    def load(self):
        from mgm.tokenizers.video_vq import VideoVQ

        tokenizer = VideoVQ.from_pretrained(self.tokenizer_dir, num_frames=self.videos.num_frames, tiles=self.tiles)
        tiled = f", coded in {tokenizer.tiles}x{tokenizer.tiles} tiles" if tokenizer.tiles > 1 else ""
        return pretokenize(tokenizer, self.videos.dataset(), self.cache, source=self.videos.describe() + tiled,
                           input_key="videos", batch_size=32)  # fmt: skip
