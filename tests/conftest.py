"""Shared tiny components for the tests (hidden size 32, one or two layers)."""

from __future__ import annotations

import pytest
import torch

from mgm.models import MaskedTransformer


@pytest.fixture
def tiny_model() -> MaskedTransformer:
    torch.manual_seed(0)
    return MaskedTransformer([8, 6], [4, 4], dim=32, depth=1, num_heads=2, num_classes=3).eval()


@pytest.fixture
def context_model() -> MaskedTransformer:
    torch.manual_seed(0)
    return MaskedTransformer([8], [6], dim=32, depth=1, num_heads=2, num_classes=2, context_dim=5).eval()
