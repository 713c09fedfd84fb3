"""Training that a kill and ``--ckpt_path`` resume leave bit-identical to an uninterrupted run.

Nothing random in mgm's training keeps a state that a checkpoint would have to hold:

- ``SeededTraining`` (the base of every mgm training system) seeds torch's global generators at
  the start of every training step from (seed, rank, step), so the step's draws (masks,
  condition dropout, dead-code restarts, quantizer dropout, dropout layers) are the same whether
  the run was resumed or not. The seed is ``seed_everything``'s, kept in the checkpoint.
  Validation is seeded the same way from (seed, "validation"), so its masked losses are
  comparable from one validation to the next and never touch the training stream.
- ``EpochSampler`` deals an epoch's order as a function of (seed, epoch) alone, one share per
  rank, and can start part-way through an epoch; each item comes with its own seed
  (``SeededItems``) for random crops, so an item's crop does not depend on which worker read it
  or what it read before.
- ``ResumableData`` (the DataModules' base) puts the epoch and the batches done in it into the
  checkpoint, and starts the sampler there on resume.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from mgm.seeds import mix_seed

_VALIDATION = 0x5A11D  # the part that tells validation's stream from the training steps'
_SHARED = 0x5EED5  # the part of the draws shared by all ranks


def global_seed() -> int:
    """The seed ``lightning.seed_everything`` set (``PL_GLOBAL_SEED``), else torch's initial seed."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    return int(seed) if seed is not None else torch.initial_seed()


class SeededTraining(L.LightningModule):
    """A LightningModule whose every training step draws from generators seeded by
    (seed, global rank, global step); see the module doc. Subclasses that override a hook below
    call ``super()``'s."""

    _training_seed: int | None = None

    @property
    def training_seed(self) -> int:
        if self._training_seed is None:
            self._training_seed = global_seed()
        return self._training_seed

    def shared_generator(self) -> torch.Generator:
        """A CPU generator seeded by (seed, global step) alone, the same on every rank: for a draw
        that all ranks must make alike (how many codebooks a step trains)."""
        return torch.Generator().manual_seed(mix_seed(self.training_seed, _SHARED, self.global_step))

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        torch.manual_seed(mix_seed(self.training_seed, self.global_rank, self.global_step))

    def on_validation_epoch_start(self) -> None:
        torch.manual_seed(mix_seed(self.training_seed, _VALIDATION, self.global_rank))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mgm_training_seed"] = self.training_seed

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "mgm_training_seed" in checkpoint:
            self._training_seed = int(checkpoint["mgm_training_seed"])


class EpochSampler(DistributedSampler):
    """One rank's share of an epoch: indices into a dataset of ``size`` items, each paired with
    its own seed, as ``(index, seed)``, for ``SeededItems``.

    The order is a permutation seeded by (seed, epoch) (or 0..size-1 without ``shuffle``); with
    ``num_replicas`` ranks it is cut to a multiple of the ranks and dealt round-robin, so ranks
    never share an item. ``skip_batches`` batches of ``epoch`` are left out (a resumed epoch);
    ``len()`` stays the whole epoch's, which is what Lightning counts the resumed epoch against.
    A DistributedSampler so that Lightning uses it as it is under DDP.
    """

    def __init__(
        self,
        size: int,
        *,
        seed: int,
        batch_size: int,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        epoch: int = 0,
        skip_batches: int = 0,
    ):
        # DistributedSampler.__init__ is not called: it wants a process group; these are its fields.
        self.size, self.seed, self.batch_size, self.shuffle = size, seed, batch_size, shuffle
        self.num_replicas, self.rank, self.epoch, self.skip_batches = num_replicas, rank, epoch, skip_batches
        self.num_samples = size // num_replicas if num_replicas > 1 else size
        self.total_size = self.num_samples * num_replicas

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.skip_batches = epoch, 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # Read when the first index is asked for: Lightning may call set_epoch after iter().
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(mix_seed(self.seed, self.epoch)))
        else:
            order = torch.arange(self.size)
        order = order[: self.total_size].tolist()
        for position in range(
            self.rank + self.skip_batches * self.batch_size * self.num_replicas, self.total_size, self.num_replicas
        ):
            yield order[position], mix_seed(self.seed, self.epoch, position)


def draw_item(dataset: Dataset, index: int, generator: torch.Generator | None):
    """``dataset[index]``, its random choices drawn from ``generator``: datasets with random
    augmentation define ``draw(index, generator)``; Subsets are looked through."""
    while isinstance(dataset, Subset):
        dataset, index = dataset.dataset, dataset.indices[index]
    draw = getattr(dataset, "draw", None)
    return draw(index, generator) if draw is not None else dataset[index]


class SeededItems(Dataset):
    """A dataset read by ``(index, seed)`` keys (``EpochSampler``): the item drawn with its seed."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        return draw_item(self.dataset, index, torch.Generator().manual_seed(seed))


class ResumableLoader(DataLoader):
    """A DataLoader that Lightning treats as resumable (it has ``state_dict``); where it stands is
    kept by its DataModule (``ResumableData``), which builds it already started there."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ResumableData(L.LightningDataModule):
    """A DataModule whose checkpointed state is where the training data stand: the epoch and
    the batches done in it. ``start()`` says where a resumed run's training loader starts."""

    _resume_at: tuple[int, int] = (0, 0)

    def state_dict(self) -> dict:
        trainer = self.trainer
        if trainer is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        return {"epoch": trainer.current_epoch, "batches": done}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self._resume_at = (int(state["epoch"]), int(state["batches"]))

    def start(self, batches_per_epoch: int) -> tuple[int, int]:
        """(epoch, batches to skip in it) for the training loader: where the checkpoint left off,
        the next epoch when it was saved at the end of one."""
        epoch, done = self._resume_at
        return (epoch + 1, 0) if done >= batches_per_epoch else (epoch, done)

    def ranks(self) -> tuple[int, int]:
        """(number of ranks, this rank) of the trainer (1, 0 without one)."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def epoch_sampler(self, size: int, batch_size: int, seed: int, drop_last: bool = True) -> EpochSampler:
        """The training sampler over ``size`` items, started where a resumed run left off."""
        num_replicas, rank = self.ranks()
        per_rank = size // num_replicas if num_replicas > 1 else size
        batches = per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
        epoch, skip = self.start(max(batches, 1))
        return EpochSampler(
            size, seed=seed, batch_size=batch_size, num_replicas=num_replicas, rank=rank, epoch=epoch, skip_batches=skip
        )
