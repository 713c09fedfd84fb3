"""Training a text-motion evaluator (``mgm.eval.text_motion.TextMotionEvaluator``) contrastively.

The loss is the original T2M evaluator's margin-based contrastive loss (Hadsell et al.) on the
Euclidean distance d between a motion embedding and a text embedding:
    mean over matched pairs of d^2  +  mean over mismatched pairs of max(0, margin - d)^2,
so a motion ends up near its own caption and at least ``margin`` from others: the distance the
R-precision ranks by and MM-Dist averages. Mismatched pairs: the original pairs each motion with
one other caption of the batch (the batch shifted by a random offset); here every other caption
of the batch is used, except those with exactly the same text as the motion's own (Motions7's
captions come from templates, so identical captions of different clips are common, and pushing
them apart would be noise). Unlike the original, the movement encoder is trained together with
the rest (the original pre-trains it as part of a motion autoencoder and keeps it frozen).

Batches are ``collate_motions`` batches (``motion`` normalised [B, T, 263], ``length``, ``caption``);
the data module's ``mean`` / ``std`` become the evaluator's normalisation at setup. A "captions"
evaluator built without a vocabulary gets one from the training captions (``vocab_from_data``).
Logged: the loss, MM-Dist, and R-precision top-1 / top-3 within batches of 32.
"""

from __future__ import annotations

import math

import torch

from mgm.eval.motion_metrics import matching_score, r_precision
from mgm.eval.text_motion import TextMotionEvaluator
from mgm.models.text import WordTextEncoder
from mgm.training.optim import adamw_with_warmup_cosine
from mgm.training.resume import SeededTraining

R_PRECISION_BATCH = 32  # HumanML3D's batch for R-precision


def contrastive_margin_loss(
    text: torch.Tensor, motion: torch.Tensor, margin: float, same_text: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict]:
    """text, motion [B, E] (row i of each a pair); ``same_text`` [B, B] True where two rows' captions are
    identical (those mismatched pairs are left out) -> (loss, {"positive", "negative"})."""
    distance = torch.cdist(motion, text)  # (B motions, B texts)
    eye = torch.eye(len(text), dtype=torch.bool, device=text.device)
    negatives = ~eye if same_text is None else ~(eye | same_text)
    positive = distance.diagonal().pow(2).mean()
    negative = (margin - distance[negatives]).clamp_min(0).pow(2).mean() if negatives.any() else distance.new_zeros(())
    return positive + negative, {"positive": positive.detach(), "negative": negative.detach()}


class TextMotionTraining(SeededTraining):
    """Args:
    evaluator: the TextMotionEvaluator to train ("captions" text input; the batches hold captions).
    margin: the contrastive margin (the original's: 10).
    vocab_from_data: when the evaluator has no vocabulary (hashed words), rebuild it at setup with
        the words of the training captions (``WordTextEncoder.build_vocab``), before any training.
    lr, weight_decay, betas, warmup_steps: AdamW with linear warm-up then cosine decay.
    """

    def __init__(
        self,
        evaluator: TextMotionEvaluator,
        margin: float = 10.0,
        vocab_from_data: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.99),
        warmup_steps: int = 100,
    ):
        super().__init__()
        if evaluator.text_input != "captions":
            raise ValueError(
                f"evaluator: text_input={evaluator.text_input!r}; training reads captions, expected 'captions'"
            )
        if margin <= 0:
            raise ValueError(f"margin={margin}: expected a positive distance")
        self.save_hyperparameters(ignore=["evaluator"])
        self.evaluator = evaluator

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.hparams.vocab_from_data and self.evaluator.config["vocab"] is None and datamodule is not None:
            train_set = datamodule.train_set
            captions = [train_set[i]["caption"] for i in range(len(train_set))]
            config = {**self.evaluator.config, "vocab": WordTextEncoder.build_vocab(captions)}
            self.evaluator = TextMotionEvaluator(**config)  # before the optimiser is built
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        if mean is not None and std is not None:  # the batches are normalised with these
            self.evaluator.set_statistics_(mean, std)

    def _common_step(self, batch: dict, stage: str) -> torch.Tensor:
        captions = batch["caption"]
        text = self.evaluator.embed_text(captions)
        motion = self.evaluator.embed_normalised_motion(batch["motion"], batch["length"])
        ids = {caption: i for i, caption in enumerate(dict.fromkeys(captions))}
        caption_ids = torch.tensor([ids[c] for c in captions], device=text.device)
        same_text = caption_ids[:, None] == caption_ids[None, :]
        loss, terms = contrastive_margin_loss(text, motion, self.hparams.margin, same_text)
        size = len(captions)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=size, sync_dist=stage != "train")
        self.log(f"{stage}/positive", terms["positive"], batch_size=size, sync_dist=stage != "train")
        self.log(f"{stage}/negative", terms["negative"], batch_size=size, sync_dist=stage != "train")
        with torch.no_grad():
            self.log(
                f"{stage}/mm_dist",
                matching_score(text.detach(), motion.detach()),
                batch_size=size,
                sync_dist=stage != "train",
            )
            if size >= R_PRECISION_BATCH:
                top = r_precision(text.detach().cpu(), motion.detach().cpu(), 3, R_PRECISION_BATCH)
                self.log(
                    f"{stage}/r_precision_top1", top[0], prog_bar=True, batch_size=size, sync_dist=stage != "train"
                )
                self.log(f"{stage}/r_precision_top3", top[2], batch_size=size, sync_dist=stage != "train")
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def configure_optimizers(self):
        h = self.hparams
        total = self.trainer.estimated_stepping_batches  # inf without max_steps / max_epochs
        total = int(total) if math.isfinite(total) else h.warmup_steps + 1
        return adamw_with_warmup_cosine(self.evaluator, h.lr, h.weight_decay, tuple(h.betas), h.warmup_steps, total)
