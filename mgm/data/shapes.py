"""Shapes10: an embedded, procedurally generated, labelled RGB image dataset.

Ten classes of shapes (below), each drawn with a random colour, size, position and rotation-free
placement on a random background (solid or a two-colour gradient). Rendered at 2x and
box-filtered for anti-aliased edges. Deterministic: the same seed gives the same images.
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


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """h, s, v: [M] in [0, 1] -> [M, 3]."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + h[:, None] * 6) % 6
    return v[:, None] - v[:, None] * s[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))


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

    # Background: a dark or light base colour, half of them a vertical gradient to a second colour.
    dark = rand(num) < 0.5
    bg_v = torch.where(dark, 0.05 + 0.25 * rand(num), 0.7 + 0.25 * rand(num))
    bg_a = _hsv_to_rgb(rand(num), 0.5 * rand(num), bg_v)
    bg_b = _hsv_to_rgb(rand(num), 0.5 * rand(num), (bg_v + 0.15 * (rand(num) - 0.5)).clamp(0, 1))
    ramp = (rand(num) < 0.5).float()[:, None, None] * (yy / size)[None]
    background = bg_a[:, :, None, None] * (1 - ramp[:, None]) + bg_b[:, :, None, None] * ramp[:, None]
    # Foreground: a saturated colour whose brightness contrasts with the background.
    fg_v = torch.where(dark, 0.75 + 0.25 * rand(num), 0.2 + 0.3 * rand(num))
    fg = _hsv_to_rgb(rand(num), 0.6 + 0.4 * rand(num), fg_v)
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
