"""A small clip classifier: MovingShapes' judge of generated clips and the feature extractor of its
Frechet distance (an FVD analogue: FVD uses an I3D action classifier's features).

A 3-D conv net over clips [B, T, 3, S, S] in [0, 1]. Two heads on the pooled features: the class
logits, and one logit that the frames are in their true order (trained against clips whose frames
were shuffled), so the features see motion as well as appearance.
"""

from __future__ import annotations

import torch
from torch import nn

from mgm.checks import check_int
from mgm.io import PretrainedMixin


def _conv3d_block(cin: int, cout: int, kernel) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, padding=padding), nn.GroupNorm(8, cout), nn.SiLU())


class ClipClassifier(PretrainedMixin, nn.Module):
    """``forward(clips) -> class logits [B, C]``; ``order_logit(clips) -> [B]`` (frames in order);
    ``features(clips) -> [B, width * 4]``, the pooled penultimate activations."""

    def __init__(self, num_classes: int = 10, width: int = 16, dropout: float = 0.1):
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(width, "width", 8)
        self.config = {"num_classes": num_classes, "width": width, "dropout": dropout}
        w = width
        self.body = nn.Sequential(
            _conv3d_block(3, w, (1, 3, 3)), _conv3d_block(w, w, (3, 3, 3)), nn.MaxPool3d((1, 2, 2)),
            _conv3d_block(w, 2 * w, (3, 3, 3)), _conv3d_block(2 * w, 2 * w, (3, 3, 3)), nn.MaxPool3d(2),
            _conv3d_block(2 * w, 4 * w, (3, 3, 3)), _conv3d_block(4 * w, 4 * w, (3, 3, 3)),
        )  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * w, num_classes)
        self.order_head = nn.Linear(4 * w, 1)

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """clips [B, T, 3, S, S] in [0, 1] -> [B, width * 4]."""
        return self.body(clips.transpose(1, 2) * 2 - 1).mean((2, 3, 4))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(clips)))

    def order_logit(self, clips: torch.Tensor) -> torch.Tensor:
        return self.order_head(self.dropout(self.features(clips)))[:, 0]
