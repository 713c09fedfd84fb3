"""Callbacks: export the trained network as a self-describing folder (config.json + safetensors)."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class SavePretrained(L.Callback):
    """At the end of fit, ``pl_module.model.save_pretrained(directory)`` on the main process."""

    def __init__(self, directory: str, overwrite: bool = False):
        self.directory = Path(directory)
        self.overwrite = overwrite

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Fail before training, not after it, when the target is taken.
        if (self.directory / "config.json").exists() and not self.overwrite:
            raise FileExistsError(f"{self.directory} already holds a model; set overwrite: true to replace it")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            pl_module.model.save_pretrained(self.directory, overwrite=self.overwrite)
