"""A callback for the DDP tests: each rank writes what it holds at the end of fit, so a test can
compare the ranks (Lightning itself saves rank 0's copy only)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning as L
from safetensors.torch import save_file


class RankStates(L.Callback):
    """On every rank: ``directory/rank{r}.safetensors`` with the module's whole state (weights and
    buffers: codebooks, EMA counts); its metadata holds the stat (inode, mtime) of ``watch``, a
    file the DataModule's setup read, taken when fit starts."""

    def __init__(self, directory: str, watch: str | None = None):
        self.directory, self.watch, self.seen = Path(directory), watch, None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.watch is not None:
            stat = os.stat(self.watch)
            self.seen = [stat.st_ino, stat.st_mtime_ns]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        path = self.directory / f"rank{trainer.global_rank}.safetensors"
        save_file(state, path, metadata={"watch": json.dumps(self.seen), "world": str(trainer.world_size)})
