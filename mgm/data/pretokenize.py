"""Encode a dataset once into a codes file that transformer training reads.

The file records a fingerprint of the tokenizer's weights and of the data source; a later run
with the same fingerprint reads the file instead of re-encoding, a different one re-encodes.

Across processes (``ranks``, default the current process group: a DDP Trainer's in ``setup``, a
Fabric or torchrun launch), each rank encodes its contiguous share of the dataset into a shard
file beside ``path``, rank 0 merges the shards in rank order into ``path`` (atomically) and removes
them, and every rank then reads ``path``: the same file as one process writes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mgm.data.codes import load_codes, read_codes_metadata, save_codes
from mgm.io import weights_fingerprint
from mgm.parallel import Ranks
from mgm.tokens import TokenSpec

log = logging.getLogger(__name__)


def codes_fingerprint(tokenizer, source: str) -> dict[str, str]:
    """What made a set of codes: the tokenizer's weights and the data source (a match skips re-encoding)."""
    return {"tokenizer_sha256": weights_fingerprint(tokenizer), "source": source}


@torch.no_grad()
def pretokenize(
    tokenizer,
    dataset: Dataset,
    path: str | os.PathLike,
    source: str,
    input_key: str = "images",
    batch_size: int = 256,
    ranks: Ranks | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, TokenSpec]:
    """Encode ``dataset[i][input_key]`` with ``tokenizer.encode`` into ``path`` (or reuse it), on
    ``ranks`` (module doc; default the current process group).

    Returns (codes [M, K, N], labels [M] or None, spec) like ``load_codes``.
    """
    path = Path(path)
    fingerprint = codes_fingerprint(tokenizer, source)
    if path.is_file():
        stored = read_codes_metadata(path)
        if all(stored.get(k) == v for k, v in fingerprint.items()):
            log.info("reusing pre-tokenized codes in %s", path)
            return load_codes(path)
        log.info("%s was made by another tokenizer or source; encoding again", path)
    ranks = Ranks.current() if ranks is None else ranks
    share = ranks.blocks(len(dataset), batch_size)
    codes, labels = _encode(tokenizer, Subset(dataset, share), input_key, batch_size)
    if ranks.world_size == 1:
        save_codes(path, codes, tokenizer.spec, labels, overwrite=True, metadata=fingerprint)
        return codes, labels, tokenizer.spec
    shard = path.with_name(f"{path.name}.rank{ranks.rank}-of-{ranks.world_size}.partial")
    if len(share):
        save_codes(shard, codes, tokenizer.spec, labels, overwrite=True, metadata=fingerprint)
    ranks.barrier()  # every shard is written
    if ranks.is_main:
        shards = [path.with_name(f"{path.name}.rank{r}-of-{ranks.world_size}.partial") for r in range(ranks.world_size)]
        parts = [load_codes(s) for s in shards if s.is_file()]
        merged = torch.cat([c for c, _, _ in parts])
        merged_labels = torch.cat([lab for _, lab, _ in parts]) if parts[0][1] is not None else None
        save_codes(path, merged, tokenizer.spec, merged_labels, overwrite=True, metadata=fingerprint)
        for s in shards:
            s.unlink(missing_ok=True)
    ranks.barrier()  # the merged file is in place
    return load_codes(path)


def _encode(tokenizer, dataset: Dataset, input_key: str, batch_size: int):
    """(codes [M, K, N], labels [M] or None) of ``dataset``, on the tokenizer's device."""
    device = next(tokenizer.parameters()).device
    codes, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        codes.append(tokenizer.encode(batch[input_key].to(device)).cpu())
        if "labels" in batch:
            labels.append(batch["labels"])
    if not codes:
        return torch.zeros(0, tokenizer.spec.num_codebooks, tokenizer.spec.num_positions, dtype=torch.long), None
    return torch.cat(codes), torch.cat(labels) if labels else None
