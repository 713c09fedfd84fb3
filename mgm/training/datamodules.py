"""DataModules serving ``{"codes", "labels"?}`` batches to the token-model systems."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mgm.checks import check_int, check_number
from mgm.data.codes import CodesDataset, load_codes
from mgm.data.synthetic import SparseMarkovChain
from mgm.tokens import TokenSpec
from mgm.training.resume import ResumableData, ResumableLoader, SeededItems


class SplitDataModule(ResumableData):
    """A seeded train/val split of ``dataset()``; subclasses say where the items come from.

    The training order is a function of (seed, epoch) and resumes mid-epoch (``mgm.training.resume``)."""

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.05, num_workers: int = 0, seed: int = 0):
        super().__init__()
        check_int(batch_size, "batch_size")
        check_int(num_workers, "num_workers", minimum=0)
        check_int(seed, "seed", minimum=0)
        check_number(val_fraction, "val_fraction", minimum=0)
        if not val_fraction < 1:
            raise ValueError(f"val_fraction={val_fraction}: expected a number in [0, 1)")
        self.batch_size, self.val_fraction, self.num_workers, self.seed = batch_size, val_fraction, num_workers, seed
        self.train_set = self.val_set = None

    def dataset(self) -> Dataset:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        dataset = self.dataset()
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed)).tolist()
        num_val = max(1, round(len(dataset) * self.val_fraction)) if self.val_fraction > 0 else 0
        self.val_set, self.train_set = Subset(dataset, order[:num_val]), Subset(dataset, order[num_val:])

    def train_dataloader(self) -> DataLoader:
        return self.training_loader(self.train_set)

    def training_loader(self, dataset: Dataset, drop_last: bool = True, collate_fn=None) -> DataLoader:
        """Shuffled batches of ``dataset`` (each item drawn with its own seed), this rank's share."""
        sampler = self.epoch_sampler(len(dataset), self.batch_size, self.seed, drop_last)
        return ResumableLoader(
            SeededItems(dataset),
            self.batch_size,
            sampler=sampler,
            drop_last=drop_last,
            collate_fn=collate_fn,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),  # workers' seeds: not from the global stream
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.batch_size, num_workers=self.num_workers)


class CodesDataModule(SplitDataModule):
    """Batches ``{"codes", "labels"?, "captions"?}`` of a CodesDataset; subclasses say where the
    codes come from (``load``, which may also set ``captions``: one string per item)."""

    spec: TokenSpec | None = None
    captions: list[str] | None = None

    def load(self) -> tuple[torch.Tensor, torch.Tensor | None, TokenSpec]:
        raise NotImplementedError

    def dataset(self) -> Dataset:
        codes, labels, self.spec = self.load()
        self.spec.check_codes(codes, "codes")
        return CodesDataset(codes, labels, self.captions)


class CodesFileDataModule(CodesDataModule):
    """Codes from a file written by ``mgm.data.save_codes`` (the pre-tokenization output)."""

    def __init__(
        self, path: str, batch_size: int = 64, val_fraction: float = 0.05, num_workers: int = 0, seed: int = 0
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.path = path

    def load(self):
        return load_codes(self.path)


class MarkovCodesDataModule(CodesDataModule):
    """Sequences from fixed sparse Markov chains (one per class): a toy with checkable structure."""

    def __init__(
        self,
        vocab_size: int = 16,
        length: int = 32,
        branching: int = 2,
        num_classes: int = 1,
        num_sequences: int = 4096,
        chain_seed: int = 0,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.chain = SparseMarkovChain(vocab_size, branching, num_classes, chain_seed)
        self.length, self.num_sequences = length, num_sequences

    def load(self):
        g = torch.Generator().manual_seed(self.seed)
        labels = torch.randint(self.chain.num_classes, (self.num_sequences,), generator=g)
        seq = self.chain.sample(self.num_sequences, self.length, labels, g)
        spec = TokenSpec((self.chain.vocab_size,), (self.length,))
        return seq[:, None, :], labels if self.chain.num_classes > 1 else None, spec


class _EpochLoader(ResumableLoader):
    """A loader over a ``StreamingCodes`` that moves it to the next epoch's order at each pass."""

    def __init__(self, dataset, batch_size: int, epoch: int, **kwargs):
        super().__init__(dataset, batch_size, **kwargs)
        self._epoch = epoch

    def __iter__(self):
        self.dataset.set_epoch(self._epoch)  # workers get the dataset as it is now
        iterator = super().__iter__()
        self._epoch += 1
        self.dataset.skip = 0  # a resumed epoch skips once
        return iterator


class StreamingCodesDataModule(ResumableData):
    """Batches ``{"codes", "labels"?}`` streamed from webdataset shards (``mgm.data.streaming``):
    code sets larger than memory, behind the same interface as ``CodesFileDataModule``.

    ``folder``: written by ``pretokenize_to_shards``; ``val_folder``: another one for validation
    (none: no validation batches). Each rank streams its shards; an epoch is the items over the
    ranks in whole batches; a resumed run drops the batches its epoch had done (mgm.training.resume).
    """

    def __init__(self, folder: str, val_folder: str | None = None, batch_size: int = 64, shuffle_buffer: int = 1000,
                 num_workers: int = 0, seed: int = 0):  # fmt: skip
        super().__init__()
        check_int(batch_size, "batch_size")
        check_int(shuffle_buffer, "shuffle_buffer", minimum=0)
        check_int(num_workers, "num_workers", minimum=0)
        self.folder, self.val_folder = folder, val_folder
        self.batch_size, self.shuffle_buffer, self.num_workers, self.seed = (
            batch_size,
            shuffle_buffer,
            num_workers,
            seed,
        )
        self.spec = None

    def setup(self, stage: str | None = None) -> None:
        from mgm.data.streaming import StreamingCodes

        self.spec = StreamingCodes(self.folder, rank=0, world_size=1).spec

    def train_dataloader(self):
        from mgm.data.streaming import StreamingCodes

        num_replicas, rank = self.ranks()
        data = StreamingCodes(self.folder, rank, num_replicas, self.seed, shuffle_buffer=self.shuffle_buffer)
        epoch, skip = self.start(max(1, len(data) // self.batch_size))
        data.skip = skip * self.batch_size
        return _EpochLoader(data, self.batch_size, epoch, drop_last=True, num_workers=self.num_workers)

    def val_dataloader(self):
        from mgm.data.streaming import StreamingCodes

        if self.val_folder is None:
            return []
        num_replicas, rank = self.ranks()
        data = StreamingCodes(self.val_folder, rank, num_replicas, self.seed, shuffle_buffer=0)
        return DataLoader(data, self.batch_size, num_workers=self.num_workers)
