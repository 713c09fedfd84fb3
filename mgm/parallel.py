"""Sampling and evaluation across processes, launched by Lightning Fabric.

``launch(devices, device)`` returns this process's ``Ranks``: one process when ``devices`` is 1
and no launcher started us; else Fabric's DDP strategy, which starts the other processes the way
Lightning documents (re-running the command here, or joining a torchrun / SLURM launch), on gloo
for CPUs and NCCL for GPUs. Work is split in whole batches (``Ranks.blocks``): rank r takes a
contiguous block of the run's batches, so every batch holds the same samples as in one process and,
with the per-sample seeds of the pipelines (``first_index``), every sample is the same whatever
the number of processes. Results come back to rank 0 with ``gather``; only rank 0 writes a report.

Run from the command line (``--devices N``) or a script: the launcher re-runs the command, so a
multi-process call does not work from an interactive session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from mgm.checks import check_int


@dataclass
class Ranks:
    """This process's place in a run: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def blocks(self, num: int, batch_size: int) -> range:
        """The samples this rank generates: a contiguous run of whole batches of ``batch_size``."""
        batches = -(-num // batch_size)
        first = batches * self.rank // self.world_size
        last = batches * (self.rank + 1) // self.world_size
        return range(min(num, first * batch_size), min(num, last * batch_size))

    @classmethod
    def current(cls) -> Ranks:
        """The ranks of the process group this process is in (a Lightning Trainer's, a Fabric
        launch's, torchrun's), one process when there is none."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return cls(torch.distributed.get_rank(), torch.distributed.get_world_size())
        return cls()

    def gather(self, value) -> list:
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        if self.world_size == 1:
            return [value]
        values = [None] * self.world_size
        torch.distributed.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()


def launched_externally() -> bool:
    """A launcher (torchrun, SLURM, Lightning's own) has already started this process as one of many."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch(devices: int, device: str) -> Ranks:
    """This process's Ranks for a run on ``devices`` processes of ``device``'s kind (module doc)."""
    check_int(devices, "devices")
    if devices == 1 and not launched_externally():
        return Ranks(device=device)
    from lightning.fabric import Fabric

    accelerator = "cuda" if str(device).startswith("cuda") else "cpu"
    if accelerator == "cuda" and devices > torch.cuda.device_count():
        raise ValueError(f"--devices {devices}: this machine has {torch.cuda.device_count()} CUDA devices")
    fabric = Fabric(accelerator=accelerator, devices=devices, strategy="ddp")
    fabric.launch()
    placed = str(fabric.device) if accelerator == "cuda" else "cpu"
    return Ranks(rank=fabric.global_rank, world_size=fabric.world_size, device=placed)
