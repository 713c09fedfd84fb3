"""Image DataModules: the embedded Shapes10 set, a user's ImageFolder, and their pre-tokenized codes.

Batches are ``{"images": FloatTensor[B, 3, S, S] in [0, 1], "labels": LongTensor[B]}``.
"""

from __future__ import annotations

import torch
import torchvision
from torch.utils.data import Dataset
from torchvision.transforms import v2

from mgm.data.pretokenize import pretokenize
from mgm.data.shapes import ShapesDataset
from mgm.parallel import Ranks
from mgm.tokenizers.image_vq import ImageVQ
from mgm.training.datamodules import CodesDataModule, SplitDataModule


class ImageDataModule(SplitDataModule):
    """Train/val split of ``dataset()``; subclasses say where the images come from."""

    def describe(self) -> str:
        """A string naming the data exactly (part of the pre-tokenization fingerprint)."""
        raise NotImplementedError


class ShapesDataModule(ImageDataModule):
    """The embedded Shapes10 images (generated in memory from ``seed``; nothing to download)."""

    def __init__(
        self,
        num_images: int = 20_000,
        image_size: int = 32,
        seed: int = 0,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        num_workers: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.num_images, self.image_size = num_images, image_size

    def dataset(self) -> Dataset:
        return ShapesDataset(self.num_images, self.image_size, self.seed)

    def describe(self) -> str:
        return f"shapes10(num_images={self.num_images}, image_size={self.image_size}, seed={self.seed})"


class _LabelledImages(Dataset):
    def __init__(self, folder: torchvision.datasets.ImageFolder):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, label = self.folder[index]
        return {"images": image, "labels": torch.tensor(label)}


class ImageFolderDataModule(ImageDataModule):
    """A user's images: ``root/<class>/<image>``; class sub-folders (sorted) become labels 0..C-1.
    Images are resized (shorter side) and centre-cropped to ``image_size``."""

    def __init__(
        self,
        root: str,
        image_size: int = 32,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.root, self.image_size = root, image_size

    def dataset(self) -> Dataset:
        transform = v2.Compose(
            [
                v2.ToImage(),
                v2.RGB(),
                v2.Resize(self.image_size, antialias=True),
                v2.CenterCrop(self.image_size),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )
        folder = torchvision.datasets.ImageFolder(self.root, transform=transform)
        self.classes = folder.classes
        return _LabelledImages(folder)

    def describe(self) -> str:
        return f"imagefolder(root={self.root}, image_size={self.image_size})"


class PretokenizedImageDataModule(CodesDataModule):
    """Codes of an image DataModule's images under a saved ImageVQ, encoded once into ``cache``."""

    def __init__(
        self,
        images: ImageDataModule,
        tokenizer: str,
        cache: str,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.images, self.tokenizer_dir, self.cache = images, tokenizer, cache

    def prepare_data(self) -> None:
        """Encode into ``cache`` once. In one process, here; under several ranks (DDP), ``setup``
        encodes on all of them, each its share, merged into the one cache (``mgm.data.pretokenize``)."""
        if Ranks.current().world_size == 1:
            self.load()

    def load(self):
        tokenizer = ImageVQ.from_pretrained(self.tokenizer_dir)
        return pretokenize(tokenizer, self.images.dataset(), self.cache, source=self.images.describe())
