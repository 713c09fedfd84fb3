"""The token grid every tokenizer, model and decoder agrees on.

Dimension legend used across mgm:
    B  batch
    K  codebooks (1 for image / motion VQ, n_q for a residual-VQ audio codec)
    N  token positions (H*W row-major for images, frames for audio and motion)
    V  logit width = max(codebook_sizes)

``codes: LongTensor[B, K, N]``. A masked position of codebook k holds ``mask_ids[k]``, which
equals that codebook's size, so an embedding table for codebook k has ``size + 1`` rows.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenSpec:
    """Codebook sizes (one per codebook) and the grid shape of the positions.

    >>> spec = TokenSpec(codebook_sizes=(1024,), shape=(16, 16))
    >>> spec.num_codebooks, spec.num_positions, spec.mask_id
    (1, 256, 1024)
    """

    codebook_sizes: tuple[int, ...]
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "codebook_sizes", _sizes(self.codebook_sizes, "codebook_sizes", "codebook sizes"))
        object.__setattr__(self, "shape", _sizes(self.shape, "shape", "a grid shape of sizes"))

    @property
    def num_codebooks(self) -> int:
        return len(self.codebook_sizes)

    @property
    def num_positions(self) -> int:
        return math.prod(self.shape)

    @property
    def vocab_size(self) -> int:
        """Logit width V: the largest codebook (smaller codebooks get -inf beyond their size)."""
        return max(self.codebook_sizes)

    @property
    def mask_ids(self) -> tuple[int, ...]:
        return self.codebook_sizes

    @property
    def mask_id(self) -> int:
        """The single mask id when every codebook has the same size."""
        if len(set(self.codebook_sizes)) != 1:
            raise ValueError(
                f"codebook_sizes={self.codebook_sizes} differ, so there is no single mask_id; use mask_ids"
            )
        return self.codebook_sizes[0]

    def mask_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Mask ids shaped to broadcast against codes: LongTensor[1, K, 1]."""
        return torch.tensor(self.mask_ids, dtype=torch.long, device=device).view(1, -1, 1)

    def full_mask(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Codes with every position masked: LongTensor[B, K, N]."""
        return self.mask_tensor(device).expand(batch_size, -1, self.num_positions).clone()

    def is_masked(self, codes: torch.Tensor) -> torch.Tensor:
        """BoolTensor[B, K, N]: True where ``codes`` holds its codebook's mask id."""
        return codes == self.mask_tensor(codes.device)

    def check_codes(self, codes: torch.Tensor, name: str = "codes", allow_mask: bool = False) -> None:
        """Raise ValueError unless ``codes`` is an integer tensor [B, K, N] matching this spec."""
        if not isinstance(codes, torch.Tensor) or codes.dtype not in (torch.long, torch.int32, torch.int16):
            raise ValueError(f"{name}: expected an integer torch.Tensor [B, K, N], got {_describe(codes)}")
        if codes.dim() != 3:
            raise ValueError(f"{name}: expected rank 3 [B, K, N], got shape {tuple(codes.shape)}")
        _, k, n = codes.shape
        if k != self.num_codebooks or n != self.num_positions:
            raise ValueError(
                f"{name}: shape {tuple(codes.shape)} does not match the spec: expected "
                f"[B, {self.num_codebooks}, {self.num_positions}] (K codebooks, N = prod{self.shape} positions)"
            )
        upper = self.mask_tensor(codes.device) + (1 if allow_mask else 0)
        bad = (codes < 0) | (codes >= upper)
        if bool(bad.any()):
            b, kk, nn = (int(i) for i in bad.nonzero()[0])
            allowed = f"[0, {self.mask_ids[kk]}]" if allow_mask else f"[0, {self.mask_ids[kk] - 1}]"
            raise ValueError(
                f"{name}[{b}, {kk}, {nn}] = {int(codes[b, kk, nn])} is out of range: codebook {kk} "
                f"expects values in {allowed}"
            )

    def to_dict(self) -> dict:
        return {"codebook_sizes": list(self.codebook_sizes), "shape": list(self.shape)}


def _sizes(values: object, name: str, what: str) -> tuple[int, ...]:
    """One or more whole numbers >= 1 (ints, not bools or floats) -> a tuple of ints."""
    many = isinstance(values, Sequence) and not isinstance(values, (str, bytes))
    if not many or not values or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                                         for v in values):  # fmt: skip
        raise ValueError(f"{name}={values!r}: expected {what}, one or more integers >= 1")
    return tuple(int(v) for v in values)


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of dtype {x.dtype} and shape {tuple(x.shape)}"
    return type(x).__name__


def flatten_codes(codes: torch.Tensor) -> torch.Tensor:
    """codes [B, K, N] -> tokens [B, N * K], frame-major."""
    return codes.transpose(1, 2).reshape(codes.shape[0], -1)


def unflatten_codes(tokens: torch.Tensor, num_codebooks: int) -> torch.Tensor:
    """tokens [B, N * K] -> codes [B, K, N]."""
    b = tokens.shape[0]
    return tokens.view(b, -1, num_codebooks).transpose(1, 2)
