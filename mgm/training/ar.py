"""Autoregressive training: next-token cross-entropy for an ARTransformer on the same codes files.

Codes [B, K, N] are flattened frame-major (all K codebooks of position 0, then position 1, ...;
raster order for images, K = 1) by ``mgm.tokens.flatten_codes``; ``unflatten_codes`` undoes it. The
condition is dropped (null label) with ``cond_drop_prob`` so classifier-free guidance works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mgm.models.ar_transformer import ARTransformer
from mgm.tokens import flatten_codes
from mgm.training.masked import check_cond_drop_prob, condition_from_batch
from mgm.training.optim import adamw_with_warmup_cosine
from mgm.training.resume import SeededTraining


class ARTraining(SeededTraining):
    """Args: model (an ARTransformer), AdamW with warm-up + cosine decay, label smoothing and
    condition dropout as in MaskedTokenTraining."""

    def __init__(
        self,
        model: ARTransformer,
        lr: float = 3e-4,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        label_smoothing: float = 0.0,
        cond_drop_prob: float = 0.1,
    ):
        super().__init__()
        check_cond_drop_prob(cond_drop_prob)
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def setup(self, stage: str) -> None:
        spec = getattr(getattr(self.trainer, "datamodule", None), "spec", None)
        if spec is None:
            return
        length = spec.num_codebooks * spec.num_positions
        if max(spec.codebook_sizes) > self.model.vocab_size or length > self.model.max_length:
            raise ValueError(
                f"the data's tokens (codebooks {spec.codebook_sizes}, {length} per example) do not fit the model "
                f"(vocab_size={self.model.vocab_size}, max_length={self.model.max_length})"
            )

    def loss(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = flatten_codes(batch["codes"])
        cond = condition_from_batch(batch)
        if train and cond is not None and self.hparams.cond_drop_prob > 0:
            cond = cond.with_drop(torch.rand(tokens.shape[0], device=tokens.device) < self.hparams.cond_drop_prob)
        logits = self.model(tokens[:, :-1], cond)  # (B, L, V): token i given tokens[:i]
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(), tokens.flatten(), label_smoothing=self.hparams.label_smoothing
        )
        return loss, (logits.argmax(-1) == tokens).float().mean()

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        loss, accuracy = self.loss(batch, stage == "train")
        size = batch["codes"].shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=size, sync_dist=stage != "train")
        self.log(f"{stage}/accuracy", accuracy, batch_size=size, sync_dist=stage != "train")
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> dict:
        h = self.hparams
        total = int(self.trainer.estimated_stepping_batches)
        return adamw_with_warmup_cosine(
            self.model, h.lr, h.weight_decay, tuple(h.betas), h.warmup_steps, total, h.min_lr_ratio
        )
