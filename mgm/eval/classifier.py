"""A small image classifier: the embedded data's judge of generated images and its feature
extractor for Frechet distances (penultimate-layer features)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mgm.io import PretrainedMixin


def conv_stages(in_channels: int, width: int) -> nn.ModuleList:
    """Three stages of two 3x3 conv + GroupNorm + SiLU, widths ``width``, 2x and 4x (the shared body
    of the embedded-data judges; the caller pools 2x between stages)."""

    def stage(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
        )  # fmt: skip

    return nn.ModuleList([stage(in_channels, width), stage(width, width * 2), stage(width * 2, width * 4)])


def pooled_features(stages: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """x [B, C, H, W] through ``conv_stages`` (2x max-pool between stages) -> mean over H, W: [B, F]."""
    for i, stage in enumerate(stages):
        x = stage(x if i == 0 else F.max_pool2d(x, 2))
    return x.mean((2, 3))


class ImageClassifier(PretrainedMixin, nn.Module):
    """Conv net on [B, 3, S, S] images in [0, 1]: ``forward`` gives logits [B, C],
    ``features`` the pooled penultimate activations [B, width * 4]."""

    def __init__(self, num_classes: int = 10, width: int = 32, dropout: float = 0.1):
        super().__init__()
        self.config = {"num_classes": num_classes, "width": width, "dropout": dropout}
        self.stages = conv_stages(3, width)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width * 4, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return pooled_features(self.stages, images * 2 - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(images)))
