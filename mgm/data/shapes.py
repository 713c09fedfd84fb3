"""Shapes10: an embedded, procedurally generated, labelled RGB image dataset.

Ten classes of shapes (below), each drawn in one of 16 palette colours at a random size and
position on a random background (one of 8 tones, solid or split in two at a random height).
Rendered at 2x and box-filtered for anti-aliased edges. Deterministic: the same seed gives the same images.
Images are FloatTensor[M, 3, S, S] in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

CLASSES = (
    "disk", "square", "triangle", "plus", "ring", "diamond", "x", "frame", "hbar", "vbar",
)  # fmt: skip
NUM_CLASSES = len(CLASSES)
_SUPERSAMPLE = 2


def _shape_mask(label: int, x: torch.Tensor, y: torch.Tensor, r: float) -> torch.Tensor:
    """Coverage in {0, 1} of shape ``label`` with half-size ``r`` at the origin; x, y: [H, W] grids."""
    ax, ay = x.abs(), y.abs()
    thick = 0.34 * r
    name = CLASSES[label]
    if name == "disk":
        inside = x**2 + y**2 <= r**2
    elif name == "square":
        inside = (ax <= 0.8 * r) & (ay <= 0.8 * r)
    elif name == "triangle":  # apex up; y grows downwards
        inside = (y <= 0.8 * r) & (y >= -r) & (ax <= (y + r) * 0.55)
    elif name == "plus":
        inside = ((ax <= thick / 2 + 0.5) & (ay <= r)) | ((ay <= thick / 2 + 0.5) & (ax <= r))
    elif name == "ring":
        d = (x**2 + y**2).sqrt()
        inside = (d <= r) & (d >= 0.55 * r)
    elif name == "diamond":
        inside = ax + ay <= r
    elif name == "x":
        band = thick / 2 + 0.5
        inside = (
            (((x - y).abs() <= band * math.sqrt(2)) | ((x + y).abs() <= band * math.sqrt(2)))
            & (ax <= 0.8 * r)
            & (ay <= 0.8 * r)
        )
    elif name == "frame":
        inside = (ax <= 0.85 * r) & (ay <= 0.85 * r) & ~((ax <= 0.5 * r) & (ay <= 0.5 * r))
    elif name == "hbar":
        inside = (ax <= r) & (ay <= 0.3 * r)
    elif name == "vbar":
        inside = (ax <= 0.3 * r) & (ay <= r)
    else:  # pragma: no cover - CLASSES and this table are kept in step
        raise AssertionError(name)
    return inside.float()


def _rgb(*hex_colours: str) -> torch.Tensor:
    return torch.tensor([[int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)] for h in hex_colours])


# Shape colours for dark and for light backgrounds; background tones of each kind.
_BRIGHT_COLOURS = _rgb("ff4040", "ffa020", "ffe040", "60e060", "40e0e0", "60a0ff", "c070ff", "ff70c0")
_DEEP_COLOURS = _rgb("b01010", "c05000", "806000", "107010", "007070", "1030b0", "6010a0", "a01060")
_DARK_BACKGROUNDS = _rgb("101010", "303030", "102040", "203018")
_LIGHT_BACKGROUNDS = _rgb("f0f0f0", "c8c8c8", "f0e0c0", "d0e8f8")


def make_shapes(num: int, image_size: int = 32, seed: int = 0, labels: torch.Tensor | None = None):
    """Returns (images FloatTensor[num, 3, S, S] in [0, 1], labels LongTensor[num])."""
    if image_size < 16:
        raise ValueError(f"image_size={image_size}: expected at least 16 pixels")
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    if labels is None:
        labels = torch.randint(NUM_CLASSES, (num,), generator=g)
    size = image_size * _SUPERSAMPLE
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")

    # Colours come from fixed palettes (distinct, VQ-friendly), the background is solid or split
    # in two tones at a random height, and the foreground always contrasts with it.
    dark = rand(num) < 0.5
    bg_palette = torch.where(dark[:, None, None], _DARK_BACKGROUNDS[None], _LIGHT_BACKGROUNDS[None])
    pick = lambda n: torch.randint(n, (num,), generator=g)  # noqa: E731
    bg_a = bg_palette[torch.arange(num), pick(len(_DARK_BACKGROUNDS))]
    bg_b = bg_palette[torch.arange(num), pick(len(_DARK_BACKGROUNDS))]
    split = torch.where(rand(num) < 0.5, size * (0.25 + 0.5 * rand(num)), torch.full((num,), float(size)))
    lower = (yy[None] >= split[:, None, None]).float()[:, None]  # (num, 1, size, size)
    background = bg_a[:, :, None, None] * (1 - lower) + bg_b[:, :, None, None] * lower
    fg = torch.where(
        dark[:, None], _BRIGHT_COLOURS[pick(len(_BRIGHT_COLOURS))], _DEEP_COLOURS[pick(len(_DEEP_COLOURS))]
    )
    radius = size * (0.2 + 0.14 * rand(num))
    center = size / 2 + (rand(num, 2) - 0.5) * 2 * (size / 2 - radius[:, None] - size * 0.04)

    images = torch.empty(num, 3, size, size)
    for i in range(num):
        coverage = _shape_mask(int(labels[i]), xx - center[i, 0], yy - center[i, 1], float(radius[i]))
        images[i] = background[i] * (1 - coverage) + fg[i][:, None, None] * coverage
    images = F.avg_pool2d(images, _SUPERSAMPLE)
    return images.clamp(0, 1), labels


class ShapesDataset(Dataset):
    """Shapes10 as a Dataset of ``{"images": [3, S, S], "labels": ()}`` items (generated once)."""

    def __init__(self, num: int = 10_000, image_size: int = 32, seed: int = 0):
        self.images, self.labels = make_shapes(num, image_size, seed)
        self.classes = CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"images": self.images[index], "labels": self.labels[index]}
