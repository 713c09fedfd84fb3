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


class ClipClassifierTraining(ClassifierTraining):
    """A ``ClipClassifier`` on ``{"videos", "labels"}``: cross-entropy on the class, and for
    ``order_weight`` > 0 a binary cross-entropy on the order head, half of each batch's clips
    having their frames shuffled (``mgm.eval.clip_classifier``)."""

    def __init__(self, classifier: nn.Module, lr: float = 2e-3, weight_decay: float = 0.01, warmup_steps: int = 50,
                 order_weight: float = 1.0):  # fmt: skip
        super().__init__(classifier, lr, weight_decay, warmup_steps, input_key="videos")
        self.save_hyperparameters(ignore=["classifier"])

    def _common_step(self, batch: dict, stage: str) -> torch.Tensor:
        clips, labels = batch["videos"], batch["labels"]
        b, t = clips.shape[:2]
        shuffled = torch.arange(b, device=clips.device) % 2 == 1
        order = torch.stack([torch.randperm(t, device=clips.device) for _ in range(b)])
        order = torch.where(shuffled[:, None], order, torch.arange(t, device=clips.device))
        clips = clips[torch.arange(b, device=clips.device)[:, None], order]
        features = self.classifier.features(clips)
        logits = self.classifier.head(self.classifier.dropout(features))
        in_order = self.classifier.order_head(self.classifier.dropout(features))[:, 0]
        class_loss = F.cross_entropy(logits, labels)
        order_loss = F.binary_cross_entropy_with_logits(in_order, (~shuffled).float())
        loss = class_loss + self.hparams.order_weight * order_loss
        sync = stage != "train"
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=b, sync_dist=sync)
        self.log(f"{stage}/accuracy", (logits.argmax(-1) == labels).float().mean(), prog_bar=True, batch_size=b,
                 sync_dist=sync)  # fmt: skip
        self.log(f"{stage}/order_accuracy", ((in_order > 0) == ~shuffled).float().mean(), batch_size=b, sync_dist=sync)
        return loss
