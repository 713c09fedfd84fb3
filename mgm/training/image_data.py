"""Image DataModules: the embedded Shapes10 set, a user's ImageFolder, and their pre-tokenized codes.

Batches are ``{"images": FloatTensor[B, 3, S, S] in [0, 1], "labels": LongTensor[B]}``.
"""

from __future__ import annotations

import lightning as L
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from mgm.data.pretokenize import pretokenize
from mgm.data.shapes import ShapesDataset
from mgm.tokenizers.image_vq import ImageVQ
from mgm.training.datamodules import CodesDataModule


class ImageDataModule(L.LightningDataModule):
    """Train/val split of ``dataset()``; subclasses say where the images come from."""

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.05, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.batch_size, self.val_fraction, self.num_workers, self.seed = batch_size, val_fraction, num_workers, seed
        self.train_set = self.val_set = None

    def dataset(self) -> Dataset:
        raise NotImplementedError

    def describe(self) -> str:
        """A string naming the data exactly (part of the pre-tokenization fingerprint)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        dataset = self.dataset()
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed)).tolist()
        num_val = max(1, int(round(len(dataset) * self.val_fraction)))
        self.val_set, self.train_set = Subset(dataset, order[:num_val]), Subset(dataset, order[num_val:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.batch_size, num_workers=self.num_workers)


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

    def load(self):
        tokenizer = ImageVQ.from_pretrained(self.tokenizer_dir)
        return pretokenize(tokenizer, self.images.dataset(), self.cache, source=self.images.describe())
