"""Pre-computed token datasets: a codes file is what transformer training reads.

File format (``.safetensors``, no pickling): tensor ``codes`` [M, K, N] (int16/int32/int64),
optional ``labels`` [M] (int64), and the TokenSpec as JSON in the metadata under ``spec``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset

from mgm.io import atomic_write, load_tensors
from mgm.tokens import TokenSpec


class CodesDataset(Dataset):
    """Items are dicts: ``codes`` LongTensor[K, N] and, when present, ``labels`` (a 0-d LongTensor)
    and ``captions`` (a str; batches then carry a list of B captions)."""

    def __init__(self, codes: torch.Tensor, labels: torch.Tensor | None = None, captions: list[str] | None = None):
        if codes.dim() != 3:
            raise ValueError(f"codes: expected shape [M, K, N], got {tuple(codes.shape)}")
        if labels is not None and labels.shape != codes.shape[:1]:
            raise ValueError(f"labels: expected shape [{codes.shape[0]}] (one per item), got {tuple(labels.shape)}")
        if captions is not None and len(captions) != codes.shape[0]:
            raise ValueError(f"captions: {len(captions)} for {codes.shape[0]} items; expected one per item")
        self.codes = codes
        self.labels = labels
        self.captions = captions

    def __len__(self) -> int:
        return self.codes.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {"codes": self.codes[index].long()}
        if self.labels is not None:
            item["labels"] = self.labels[index].long()
        if self.captions is not None:
            item["captions"] = self.captions[index]
        return item


def save_codes(
    path: str | os.PathLike,
    codes: torch.Tensor,
    spec: TokenSpec,
    labels: torch.Tensor | None = None,
    overwrite: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a codes file atomically; codes are checked against ``spec`` first. ``metadata``
    (strings) is stored beside the spec, e.g. the fingerprint of the tokenizer that made it."""
    spec.check_codes(codes, "codes")
    dtype = torch.int16 if spec.vocab_size <= torch.iinfo(torch.int16).max else torch.int32
    tensors = {"codes": codes.to(dtype).contiguous().cpu()}
    if labels is not None:
        tensors["labels"] = labels.long().contiguous().cpu()
    metadata = {**(metadata or {}), "spec": json.dumps(spec.to_dict())}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), overwrite)


def read_codes_metadata(path: str | os.PathLike) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def load_codes(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor | None, TokenSpec]:
    """Read a codes file -> (codes [M, K, N] as stored, labels [M] or None, spec)."""
    tensors = load_tensors(path)
    metadata = read_codes_metadata(path)
    if "codes" not in tensors or "spec" not in metadata:
        raise ValueError(f"{path}: not a mgm codes file (expected a 'codes' tensor and 'spec' metadata)")
    spec = TokenSpec(**{k: tuple(v) for k, v in json.loads(metadata["spec"]).items()})
    return tensors["codes"], tensors.get("labels"), spec
