"""The tokenizer contract every modality adapter fulfils.

``encode(x) -> codes: LongTensor[B, K, N]``, ``decode(codes) -> x``, ``spec`` (TokenSpec),
``downsample`` (input units per token: pixels per token side, samples per frame),
``save_pretrained(dir)`` and ``from_pretrained(dir)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from mgm.tokens import TokenSpec


@runtime_checkable
class Tokenizer(Protocol):
    spec: TokenSpec
    downsample: int

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor: ...

    def save_pretrained(self, directory, overwrite: bool = False): ...
