"""Reading and writing image files for the CLI (PNG via PIL), atomically and without overwriting."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from mgm.io import atomic_write


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """An image file -> FloatTensor[3, H, W] in [0, 1] (greyscale and RGBA become RGB)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({e})") from e
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def read_mask(path: str | os.PathLike) -> torch.Tensor:
    """A mask image -> BoolTensor[H, W]; bright pixels (> 50% grey) mark the region to regenerate."""
    return read_image(path).mean(0) > 0.5


def image_grid(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    nrow = nrow or max(1, int(round(len(images) ** 0.5)))
    return torchvision.utils.make_grid(images, nrow=nrow, padding=2, pad_value=1.0)


def check_free(out: str | os.PathLike, names: Iterable[str], overwrite: bool = False) -> None:
    """FileExistsError when any of ``names`` exists in ``out`` and ``overwrite`` is not set."""
    taken = [str(Path(out) / name) for name in names if (Path(out) / name).exists()]
    if taken and not overwrite:
        raise FileExistsError(f"{len(taken)} output file(s) exist (e.g. {taken[0]}); pass --overwrite to replace them")


def write_pngs(images: dict[str, torch.Tensor], out: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write {file name: FloatTensor[3, H, W] in [0, 1]} into ``out``. Every target is checked
    before the first is written, and each file appears whole or not at all."""
    for name, image in images.items():
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            got = f"shape {tuple(image.shape)}" if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"images[{name!r}]: got {got}; expected a tensor [3, H, W] in [0, 1]")
        if not bool(torch.isfinite(image).all()):
            raise ValueError(f"images[{name!r}]: holds NaN or infinite values")
    check_free(out, images, overwrite)
    targets = {Path(out) / name: image for name, image in images.items()}
    written = []
    for path, image in targets.items():
        array = (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        written.append(
            atomic_write(path, lambda tmp, a=array: Image.fromarray(a).save(tmp, format="PNG"), overwrite=True)
        )
    return written
