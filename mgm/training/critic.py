"""Training a token critic (``mgm.models.TokenCritic``) on a frozen masked transformer.

Each step: mask a schedule-drawn share of each example's tokens (as masked training does), let
the frozen transformer sample every masked token (at the pipeline's temperature and guidance),
and train the critic, reading the transformer's hidden states of that completed sequence, to
tell which tokens were sampled: binary cross-entropy over every position (Lezama et al.,
Token-Critic). Only the critic learns; the transformer and its text encoder stay as loaded.
"""

from __future__ import annotations

import copy
import importlib

import torch
import torch.nn.functional as F

from mgm.decoding.guidance import GuidedModel
from mgm.decoding.sampling import sample_tokens
from mgm.models.critic import TokenCritic
from mgm.schedules import get_mask_schedule, random_mask
from mgm.training.masked import batch_condition
from mgm.training.optim import adamw_with_warmup_cosine
from mgm.training.resume import SeededTraining


def load_pipeline(pipeline: str, pipeline_class: str):
    """The pipeline saved in folder ``pipeline``, of the dotted class ``pipeline_class``."""
    module_name, _, class_name = pipeline_class.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name).from_pretrained(pipeline)


class TokenCriticTraining(SeededTraining):
    """Args:
    pipeline: folder of the saved pipeline whose transformer the critic judges.
    pipeline_class: its dotted class, e.g. ``mgm.pipelines.ImagePipeline``.
    save_to: the pipeline folder written at the end of fit: the same pipeline with its critic.
    depth, num_heads: the critic's size (``TokenCritic``).
    schedule: mask schedule of the resampled share.
    temperature, guidance_scale: how the transformer samples the masked tokens (the decode
        settings the critic will meet).
    lr, weight_decay, warmup_steps: AdamW with warm-up and cosine decay.
    """

    def __init__(
        self,
        pipeline: str,
        pipeline_class: str,
        save_to: str | None = None,
        depth: int = 1,
        num_heads: int = 4,
        schedule: str = "cosine",
        temperature: float = 1.0,
        guidance_scale: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 100,
    ):
        super().__init__()
        get_mask_schedule(schedule)
        self.save_hyperparameters()
        pipe = load_pipeline(pipeline, pipeline_class)
        self.transformer = pipe.transformer.requires_grad_(False)
        self.text_encoder = getattr(pipe, "text_encoder", None)
        if self.text_encoder is not None:
            self.text_encoder.requires_grad_(False)
        self.critic = TokenCritic(pipe.transformer.config["dim"], pipe.spec.num_codebooks, depth, num_heads)
        self._pipeline = [pipe]  # outside the module tree: saved whole at the end, not checkpointed twice

    def train(self, mode: bool = True):
        super().train(mode)
        self.transformer.eval()  # frozen: dropout stays off
        if self.text_encoder is not None:
            self.text_encoder.eval()
        return self

    def critic_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(binary cross-entropy over all positions, accuracy of the sampled / given call)."""
        h = self.hparams
        codes = batch["codes"]
        spec = self.transformer.spec
        with torch.no_grad():
            cond = batch_condition(batch, self.transformer, self.text_encoder)
            mask, _ = random_mask(tuple(codes.shape), h.schedule, device=codes.device)
            inputs = torch.where(mask, spec.mask_tensor(codes.device), codes)
            scale = h.guidance_scale if cond is not None and cond.batch_size is not None else 0.0
            logits = GuidedModel(self.transformer, cond)(inputs, scale)
            sampled = torch.where(mask, sample_tokens(logits, h.temperature), codes)
            hidden = self.transformer.hidden(sampled, cond)
        scores = self.critic(hidden)  # (B, K, N)
        target = mask.float()
        loss = F.binary_cross_entropy_with_logits(scores.float(), target)
        accuracy = ((scores > 0) == mask).float().mean()
        return loss, accuracy

    def _common_step(self, batch: dict, stage: str) -> torch.Tensor:
        loss, accuracy = self.critic_loss(batch)
        size = batch["codes"].shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=size, sync_dist=stage != "train")
        self.log(f"{stage}/accuracy", accuracy, batch_size=size, sync_dist=stage != "train")
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def on_fit_end(self) -> None:
        if self.hparams.save_to is None or not self.trainer.is_global_zero:
            return
        pipe = self._pipeline[0]
        device = pipe.device
        pipe.to("cpu")
        pipe.critic = copy.deepcopy(self.critic)
        pipe.save_pretrained(self.hparams.save_to, overwrite=True)
        pipe.to(device)

    def configure_optimizers(self) -> dict:
        h = self.hparams
        return adamw_with_warmup_cosine(
            self.critic, h.lr, h.weight_decay, (0.9, 0.99), h.warmup_steps, int(self.trainer.estimated_stepping_batches)
        )
