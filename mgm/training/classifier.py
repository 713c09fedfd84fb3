"""Training the embedded data's judges (image and audio classifiers): cross-entropy, accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mgm.training.optim import adamw_with_warmup_cosine
from mgm.training.resume import SeededTraining


class ClassifierTraining(SeededTraining):
    """``classifier(batch[input_key]) -> logits``; ``input_key`` is "images" or "audio"."""

    def __init__(
        self,
        classifier: nn.Module,
        lr: float = 2e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        input_key: str = "images",
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["classifier"])
        self.classifier = classifier

    def _common_step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self.classifier(batch[self.hparams.input_key])
        loss = F.cross_entropy(logits, batch["labels"])
        accuracy = (logits.argmax(-1) == batch["labels"]).float().mean()
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(logits), sync_dist=stage != "train")
        self.log(f"{stage}/accuracy", accuracy, prog_bar=True, batch_size=len(logits), sync_dist=stage != "train")
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def configure_optimizers(self) -> dict:
        h = self.hparams
        return adamw_with_warmup_cosine(
            self.classifier,
            h.lr,
            h.weight_decay,
            (0.9, 0.99),
            h.warmup_steps,
            int(self.trainer.estimated_stepping_batches),
        )
