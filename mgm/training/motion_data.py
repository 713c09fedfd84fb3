"""Motion DataModules for tokenizer training: the embedded Motions7 set and a HumanML3D folder.

Batches are ``collate_motions`` batches: ``{"motion": FloatTensor[B, T, 263] normalised, zero-padded,
"length": LongTensor[B], "caption": list[str], "label"?: LongTensor[B]}``. Training batches are
random crops of ``crop_frames`` frames (``RandomCrops``); validation batches are whole clips, padded
to the batch's longest. The data's normalisation statistics are ``mean`` and ``std`` after
``setup`` (``MotionVQTraining`` copies them into the tokenizer).

Short clips: a clip shorter than ``crop_frames`` is zero-padded to it, and its ``length`` says how
many frames are real; the training system masks the rest out of every loss and out of the codebook
updates. Skipping such clips instead would drop a third of Motions7 at 64 frames (its clips are 40
to 120 frames long) and most HumanML3D clips at longer crops.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset

from mgm.data.humanml3d import HumanML3D, collate_motions
from mgm.data.motions import MotionsDataset
from mgm.training.datamodules import SplitDataModule


def _check_crop(crop_frames: int) -> int:
    if isinstance(crop_frames, bool) or not isinstance(crop_frames, int) or crop_frames < 1:
        raise ValueError(f"crop_frames={crop_frames!r}: expected a whole number of frames >= 1")
    return crop_frames


class RandomCrops(Dataset):
    """Items of ``items`` cut to ``crop_frames`` frames: ``{**item, "motion": [crop_frames, 263], "length": L}``.

    A clip longer than the crop gives a window starting anywhere that fits (drawn from the item's
    generator in training: ``mgm.training.resume.SeededItems``); a shorter
    one is zero-padded at the end and keeps its ``length``.
    """

    def __init__(self, items: Dataset, crop_frames: int):
        self.items, self.crop_frames = items, _check_crop(crop_frames)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.draw(index, None)

    def draw(self, index: int, generator: torch.Generator | None) -> dict:
        """Item ``index`` with its window drawn from ``generator`` (None: torch's global one)."""
        item = self.items[index]
        motion = item["motion"][: item["length"]]
        length = len(motion)
        if length > self.crop_frames:
            start = int(torch.randint(length - self.crop_frames + 1, (), generator=generator))
            motion, length = motion[start : start + self.crop_frames], self.crop_frames
        padded = motion.new_zeros(self.crop_frames, motion.shape[-1])
        padded[:length] = motion
        return {**item, "motion": padded, "length": length}


class MotionDataModule(SplitDataModule):
    """Random crops for training, whole clips for validation; subclasses say where the clips come from.

    ``crop_frames`` should be a multiple of the tokenizer's downsample (4); ``mean`` and ``std``
    [263] are the statistics the items are normalised with, set by ``setup``.
    """

    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    def __init__(
        self,
        crop_frames: int = 64,
        batch_size: int = 32,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.crop_frames = _check_crop(crop_frames)

    def train_dataloader(self) -> DataLoader:
        crops = RandomCrops(self.train_set, self.crop_frames)
        drop_last = len(self.train_set) >= self.batch_size  # a tiny set still gives one batch
        return self.training_loader(crops, drop_last, collate_motions)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.batch_size, collate_fn=collate_motions, num_workers=self.num_workers)


class Motions7DataModule(MotionDataModule):
    """The embedded Motions7 clips (generated in memory from ``seed``: about 5 ms a clip; nothing to
    download), split at random into train and validation. Normalised by the statistics of all clips."""

    def __init__(
        self,
        num_clips: int = 2000,
        seconds: float | None = None,
        crop_frames: int = 64,
        batch_size: int = 32,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(crop_frames, batch_size, val_fraction, num_workers, seed)
        self.num_clips, self.seconds = num_clips, seconds

    def dataset(self) -> Dataset:
        dataset = MotionsDataset(self.num_clips, seed=self.seed, seconds=self.seconds)
        self.mean, self.std = dataset.mean, dataset.std
        return dataset

    def describe(self) -> str:
        return f"motions7(num_clips={self.num_clips}, seconds={self.seconds}, seed={self.seed})"


class HumanML3DDataModule(MotionDataModule):
    """A HumanML3D folder (see ``mgm.data.humanml3d.HumanML3D``): its ``train_split`` and ``val_split``
    lists, normalised by its ``Mean.npy`` / ``Std.npy``. One item per (segment, caption), as the reader gives."""

    def __init__(
        self,
        root: str | os.PathLike,
        crop_frames: int = 64,
        batch_size: int = 32,
        train_split: str = "train",
        val_split: str = "val",
        max_frames: int = 196,
        min_frames: int = 40,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(crop_frames, batch_size, 0.0, num_workers, seed)
        self.root, self.train_split, self.val_split = root, train_split, val_split
        self.max_frames, self.min_frames = max_frames, min_frames

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        read = lambda split: HumanML3D(self.root, split, self.max_frames, self.min_frames)  # noqa: E731
        self.train_set, self.val_set = read(self.train_split), read(self.val_split)
        self.mean, self.std = self.train_set.mean, self.train_set.std

    def describe(self) -> str:
        return f"humanml3d(root={self.root}, train={self.train_split}, val={self.val_split})"
