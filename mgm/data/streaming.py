"""Codes datasets larger than memory: webdataset tar shards, written across ranks, streamed back.

A folder of shards holds ``codes-r<rank>-<n>.tar`` files (webdataset's format: one sample per
item, ``<key>.codes.npy`` with the [K, N] codes and ``<key>.cls`` with the label where there is
one) and ``index.json``: the TokenSpec, the shards with their item counts, and the fingerprint
of what made them (tokenizer weights and data source). ``pretokenize_to_shards`` encodes a dataset
into such a folder, each rank its share, batch by batch (memory: one batch), and is skipped when
the index's fingerprint matches; ``StreamingCodes`` reads one back as an iterable dataset.

Order: an epoch's shard order is a permutation seeded by (seed, epoch); rank r of R takes every
R-th shard of it, and its dataloader workers split those again; a shuffle buffer mixes the items
of neighbouring shards. Every rank yields the same number of items per epoch (``items_per_rank``:
the total over R, rounded down), cycling its shards when they hold fewer, so DDP ranks never wait
on one another.
"""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, get_worker_info

from mgm.data.pretokenize import codes_fingerprint
from mgm.io import atomic_write
from mgm.parallel import Ranks
from mgm.tokens import TokenSpec

INDEX_FILE = "index.json"


def _webdataset():
    try:
        import webdataset
    except ImportError as e:  # pragma: no cover - the dev extra installs it
        raise ImportError("streaming codes need webdataset: pip install 'mgm[stream]'") from e
    return webdataset


def read_index(folder: str | os.PathLike) -> dict:
    """The folder's ``index.json`` (spec, shards, counts, fingerprint)."""
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {INDEX_FILE} (not a folder of mgm code shards)")
    return json.loads(path.read_text())


@torch.no_grad()
def pretokenize_to_shards(
    tokenizer,
    dataset: Dataset,
    folder: str | os.PathLike,
    source: str,
    input_key: str = "images",
    batch_size: int = 256,
    shard_size: int = 10_000,
    ranks: Ranks | None = None,
) -> dict:
    """Encode ``dataset[i][input_key]`` into webdataset shards in ``folder`` (module doc) -> the index."""
    wds = _webdataset()
    folder = Path(folder)
    ranks = Ranks.current() if ranks is None else ranks
    fingerprint = codes_fingerprint(tokenizer, source)
    if (folder / INDEX_FILE).is_file() and read_index(folder).get("fingerprint") == fingerprint:
        return read_index(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ranks.barrier()  # every rank has checked the old index before rank 0 replaces it
    share = ranks.blocks(len(dataset), batch_size)
    device = next(tokenizer.parameters()).device
    pattern = str(folder / f"codes-r{ranks.rank:03d}-%06d.tar")
    for stale in folder.glob(f"codes-r{ranks.rank:03d}-*.tar"):
        stale.unlink()
    counts: dict[str, int] = {}
    with wds.ShardWriter(pattern, maxcount=shard_size, verbose=0) as sink:
        for batch in DataLoader(Subset(dataset, share), batch_size=batch_size):
            codes = tokenizer.encode(batch[input_key].to(device)).cpu()
            labels = batch.get("labels")
            for j in range(len(codes)):
                index = share.start + sum(counts.values())
                sample = {"__key__": f"{index:010d}", "codes.npy": _narrow(codes[j].numpy(), tokenizer.spec)}
                if labels is not None:
                    sample["cls"] = int(labels[j])
                sink.write(sample)
                name = Path(sink.fname).name
                counts[name] = counts.get(name, 0) + 1
    shards = [item for part in ranks.gather(counts) for item in part.items()]
    index = {"spec": tokenizer.spec.to_dict(), "shards": [{"name": n, "items": c} for n, c in shards],
             "items": sum(c for _, c in shards), "fingerprint": fingerprint}  # fmt: skip
    if ranks.is_main:
        atomic_write(folder / INDEX_FILE, lambda tmp: Path(tmp).write_text(json.dumps(index, indent=1)), True)
    ranks.barrier()
    return index


def _narrow(codes: np.ndarray, spec: TokenSpec) -> np.ndarray:
    """Codes in the smallest integer type that holds the vocabulary (as ``save_codes``)."""
    return codes.astype(np.int16 if spec.vocab_size <= np.iinfo(np.int16).max else np.int32)


class StreamingCodes(IterableDataset):
    """Items ``{"codes": LongTensor[K, N], "labels"?: 0-d LongTensor}`` of a shard folder (module doc).

    Args:
        folder: a folder written by ``pretokenize_to_shards``.
        rank, world_size: this process's share (default: the current process group's).
        seed, epoch: the epoch's shard order; ``set_epoch`` moves to another.
        shuffle_buffer: items mixed across neighbouring shards (0: shard order, items in order).
        items_per_rank: items each rank yields per epoch (default: all items over world_size);
        skip: items of the epoch's order to drop at its start (resuming mid-epoch; the same items as
            the interrupted epoch would have yielded next when num_workers <= 1).
    """

    def __init__(self, folder, rank: int | None = None, world_size: int | None = None, seed: int = 0,
                 epoch: int = 0, shuffle_buffer: int = 1000, items_per_rank: int | None = None,
                 skip: int = 0):  # fmt: skip
        self.folder = Path(folder)
        self.index = read_index(folder)
        self.spec = TokenSpec(**{k: tuple(v) for k, v in self.index["spec"].items()})
        current = Ranks.current()
        self.rank = current.rank if rank is None else rank
        self.world_size = current.world_size if world_size is None else world_size
        self.seed, self.epoch, self.shuffle_buffer, self.skip = seed, epoch, shuffle_buffer, skip
        self.items_per_rank = self.index["items"] // self.world_size if items_per_rank is None else items_per_rank
        if len(self.index["shards"]) < self.world_size:
            raise ValueError(
                f"{folder}: {len(self.index['shards'])} shards for {self.world_size} ranks; "
                "expected at least one shard per rank (write smaller shards)"
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.items_per_rank

    def shards(self) -> list[str]:
        """This rank's shard files in this epoch's order."""
        names = [s["name"] for s in self.index["shards"]]
        order = torch.randperm(len(names), generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        return [str(self.folder / names[i]) for i in order.tolist()][self.rank :: self.world_size]

    def _items(self, shards: list[str]):
        wds = _webdataset()
        while True:  # cycle: a rank whose shards hold fewer items than its share reads them again
            for sample in wds.DataPipeline(wds.SimpleShardList(shards), wds.tarfile_to_samples()):
                item = {"codes": torch.from_numpy(np.load(io.BytesIO(sample["codes.npy"]))).long()}
                if "cls" in sample:
                    item["labels"] = torch.tensor(int(sample["cls"]))
                yield item

    def __iter__(self):
        shards, limit, skip = self.shards(), self.items_per_rank, self.skip
        worker = get_worker_info()
        if worker is not None and worker.num_workers > 1:  # each worker its shards and its part of the items
            shards = shards[worker.id :: worker.num_workers] or shards[:1]
            share = lambda n: n // worker.num_workers + (worker.id < n % worker.num_workers)  # noqa: E731
            limit, skip = share(limit), share(skip)
        for position, item in enumerate(self._shuffled(shards, limit, worker)):
            if position >= skip:  # resuming: the epoch's own order, its first ``skip`` items dropped
                yield item

    def _shuffled(self, shards: list[str], limit: int, worker):
        items = self._items(shards)
        rng = random.Random(self.seed * 100_003 + self.epoch * 1009 + (0 if worker is None else worker.id))
        buffer = []
        for _ in range(limit):
            buffer.append(next(items))
            if len(buffer) > self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer
