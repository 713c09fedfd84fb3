"""The MovingShapes frame DataModule, whole frames and tiles (the tile VQ's training items)."""

import pytest
import torch

from mgm.tokenizers.image_vq import join_tiles
from mgm.training.video_data import MovingShapesFramesDataModule


def test_frames_and_their_tiles_hold_the_same_pixels():
    frames = MovingShapesFramesDataModule(num_clips=3, num_frames=4, image_size=16).dataset()
    tiled = MovingShapesFramesDataModule(num_clips=3, num_frames=4, image_size=16, tiles=2)
    tiles = tiled.dataset()
    assert len(frames) == 12 and len(tiles) == 48 and tiles[0]["images"].shape == (3, 8, 8)
    assert torch.equal(join_tiles(tiles.images, 2), frames.images)
    assert torch.equal(tiles.labels[::4], frames.labels)
    assert tiled.describe().startswith("2x2 tiles of frames of moving_shapes(")


def test_tiles_must_split_the_frame():
    with pytest.raises(ValueError, match="tiles=3"):
        MovingShapesFramesDataModule(num_clips=3, image_size=16, tiles=3)
