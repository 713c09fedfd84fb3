"""Encode a dataset once into a codes file that transformer training reads.

The file records a fingerprint of the tokenizer's weights and of the data source; a later run
with the same fingerprint reads the file instead of re-encoding, a different one re-encodes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from mgm.data.codes import load_codes, read_codes_metadata, save_codes
from mgm.io import weights_fingerprint
from mgm.tokens import TokenSpec

log = logging.getLogger(__name__)


@torch.no_grad()
def pretokenize(
    tokenizer,
    dataset: Dataset,
    path: str | os.PathLike,
    source: str,
    input_key: str = "images",
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor | None, TokenSpec]:
    """Encode ``dataset[i][input_key]`` with ``tokenizer.encode`` into ``path`` (or reuse it).

    Returns (codes [M, K, N], labels [M] or None, spec) like ``load_codes``.
    """
    path = Path(path)
    fingerprint = {"tokenizer_sha256": weights_fingerprint(tokenizer), "source": source}
    if path.is_file():
        stored = read_codes_metadata(path)
        if all(stored.get(k) == v for k, v in fingerprint.items()):
            log.info("reusing pre-tokenized codes in %s", path)
            return load_codes(path)
        log.info("%s was made by another tokenizer or source; encoding again", path)
    device = next(tokenizer.parameters()).device
    codes, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        codes.append(tokenizer.encode(batch[input_key].to(device)).cpu())
        if "labels" in batch:
            labels.append(batch["labels"])
    codes = torch.cat(codes)
    labels = torch.cat(labels) if labels else None
    save_codes(path, codes, tokenizer.spec, labels, overwrite=True, metadata=fingerprint)
    return codes, labels, tokenizer.spec
