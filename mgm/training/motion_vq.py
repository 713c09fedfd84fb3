"""Training the part-aware motion tokenizer (mgm.tokenizers.MotionVQ).

Loss, on normalised features and over the real frames of each clip only (padding is masked out):
      smooth L1(x', x)                                   (all 263 dims)
    + position_weight * smooth L1 on the RIC dims        (joint positions about the root)
    + velocity_weight * smooth L1(x'[t+1] - x'[t], x[t+1] - x[t])
    + commitment_weight * ||z - sg(q)||^2                (over the real tokens)
with the straight-through estimator from decoder to encoder. Codebooks follow EMAs of their
assignments (``ema_decay``); before each training step's quantisation, every code whose EMA count
is below ``dead_code_threshold`` x the count of an evenly used code is restarted on a random
encoder output of the batch (a fresh codebook counts as all dead, so the first batch fills it).
Both use only the batch's real tokens (those with at least one real frame). A restarted code gets
the EMA count of a just-live code, so unless outputs are assigned to it at the next step it is
restarted again (T2M-GPT's reset rule). Measured on the recipe's first 40 steps: giving restarted
codes the count of an evenly used code instead let the perplexity fall from ~200 to ~5 by step 17
(~20 with this rule): the encoder's outputs move away from the codes the first batch set, and those
codes then take ln(threshold) / ln(decay), about 230 steps, to count as dead.

Logged per codebook (``lower``, ``upper``): perplexity of the batch's codes, the share of the
codebook they use, and the share of dead codes restarted. Validation also reports the
reconstruction's MPJPE in millimetres on joints recovered from the denormalised features
(``recover_joints``): ``val/mpjpe_mm`` with the recovered root trajectory, ``val/mpjpe_local_mm``
with each frame's root put back on the original's (the error of the pose alone).

Dimension legend: B batch, T frames, D = 263, K = 2 codebooks, C code dim, N = T / downsample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mgm.data.motion_features import RIC, recover_joints
from mgm.eval.motion_metrics import mpjpe
from mgm.tokenizers.motion_vq import MotionVQ
from mgm.training.codebooks import perplexity
from mgm.training.distributed import broadcast_from_first_, mean_over_ranks_
from mgm.training.optim import adamw_with_warmup_cosine
from mgm.training.resume import SeededTraining


def masked_scalar_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The scalar mean of every element of ``values`` [B, T, ...] at the positions where ``mask`` [B, T] is
    True (0 if none): one number over the batch, not a mean per sequence."""
    weights = mask.to(values.dtype).view(*mask.shape, *([1] * (values.dim() - mask.dim())))
    per_position = values[0, 0].numel()
    return (values * weights).sum() / (weights.sum() * per_position).clamp_min(1)


def frame_mask(lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """BoolTensor[B, num_frames]: True at frames before each clip's length."""
    return torch.arange(num_frames, device=lengths.device)[None, :] < lengths[:, None]


def mpjpe_mm(
    reconstruction: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor, tokenizer: MotionVQ
) -> tuple[torch.Tensor, torch.Tensor]:
    """(global, root-aligned) mean per-joint position error in mm between normalised features [B, T, 263],
    over the real frames. Joints come from ``recover_joints`` of the denormalised features."""
    joints = recover_joints(tokenizer.denormalise(reconstruction.float()))  # (B, T, 22, 3)
    truth = recover_joints(tokenizer.denormalise(target.float()))
    rooted = lambda j: j - j[..., :1, :]
    return (
        torch.tensor(mpjpe(joints, truth, lengths)),
        torch.tensor(mpjpe(rooted(joints), rooted(truth), lengths)),
    )


class MotionVQTraining(SeededTraining):
    """Args:
    tokenizer: the MotionVQ to train. Its normalisation statistics are replaced by the datamodule's
        (``mean``, ``std``) at setup, when the datamodule has them.
    position_weight, velocity_weight, commitment_weight: the loss terms above (T2M-GPT weights its
        RIC term by 0.5 and the commitment by 0.02).
    smooth_l1_beta: where the smooth L1 turns from quadratic to linear (normalised units).
    ema_decay: the codebooks' EMA decay.
    dead_code_threshold: a code whose EMA count is below this x the count of an evenly used code is
        dead and restarted, every training step (0 = never restart; a fresh codebook then keeps its
        random codes).
    lr, weight_decay, betas, warmup_steps: AdamW with linear warm-up then cosine decay.
    """

    def __init__(
        self,
        tokenizer: MotionVQ,
        position_weight: float = 0.5,
        velocity_weight: float = 0.0,
        commitment_weight: float = 0.02,
        smooth_l1_beta: float = 1.0,
        ema_decay: float = 0.99,
        dead_code_threshold: float = 0.1,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.99),
        warmup_steps: int = 100,
    ):
        super().__init__()
        if not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay={ema_decay}: expected a decay in (0, 1)")
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold={dead_code_threshold}: expected a share >= 0")
        self.save_hyperparameters(ignore=["tokenizer"])
        self.tokenizer = tokenizer

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        if mean is not None and std is not None:  # the data is normalised with these: decode must undo them
            self.tokenizer.set_statistics_(mean, std)

    # -- the step -------------------------------------------------------------------------------

    def _features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch -> (normalised features [B, T, 263] zero past each length, T padded up to a multiple of
        downsample; lengths [B])."""
        motion, lengths = batch["motion"], batch["length"]
        motion = F.pad(motion, (0, 0, 0, -motion.shape[1] % self.tokenizer.downsample))
        return self.tokenizer.prepare(motion, lengths), lengths

    def forward(self, features: torch.Tensor, lengths: torch.Tensor, train: bool = False) -> tuple[torch.Tensor, dict]:
        """features [B, T, 263] (T a multiple of downsample), lengths [B] -> (reconstruction [B, T, 263], terms).

        With ``train``, dead codes are restarted before quantising and the codebooks take an EMA step after.
        """
        tok, h = self.tokenizer, self.hparams
        latents = tok.encode_latents(features)  # (B, K, C, N)
        real_tokens = frame_mask(-(-lengths // tok.downsample), latents.shape[-1])  # (B, N): a real frame or more
        flat = [latents[:, k].transpose(1, 2)[real_tokens].detach() for k in range(tok.num_codebooks)]  # (M, C)
        restarted = [0] * tok.num_codebooks
        if train and h.dead_code_threshold > 0:
            for k, book in enumerate(tok.codebooks):
                # The counts are averaged over ranks (mgm.training.distributed), so is the batch's size.
                rows = float(mean_over_ranks_(torch.tensor(float(len(flat[k])))))
                alive = h.dead_code_threshold * rows / book.size  # the least EMA count of a live code
                dead = book.cluster_size < alive  # the same on every rank
                restarted[k] = book.restart_(flat[k], dead, alive)
                if dead.any():  # each rank restarted on its own latents: rank 0's codes are kept
                    broadcast_from_first_(book.embedding, book.embed_sum, book.cluster_size)
        codes = tok.nearest_codes(latents.detach())  # (B, K, N)
        quantized = tok.lookup(codes)
        # Straight-through: the decoder's gradient reaches the encoder as if there were no quantiser.
        recon = tok.decode_latents(latents + (quantized - latents).detach())
        if train:
            for k, book in enumerate(tok.codebooks):
                book.update_(flat[k], codes[:, k][real_tokens], h.ema_decay, reduce=mean_over_ranks_)
        real = frame_mask(lengths, features.shape[1])
        smooth_l1 = lambda a, b: F.smooth_l1_loss(a, b, reduction="none", beta=h.smooth_l1_beta)  # noqa: E731
        error = smooth_l1(recon, features)  # (B, T, D)
        velocity_error = smooth_l1(recon.diff(dim=1), features.diff(dim=1))  # (B, T - 1, D)
        commitment = (latents - quantized.detach()).pow(2).mean(2).transpose(1, 2)  # (B, N, K)
        terms = {
            "reconstruction": masked_scalar_mean(error, real),
            "position": masked_scalar_mean(error[..., RIC], real),
            "velocity": masked_scalar_mean(velocity_error, real[:, 1:] & real[:, :-1]),
            "commitment": masked_scalar_mean(commitment, real_tokens),
            "codes": codes,
            "real_tokens": real_tokens,
            "restarted": restarted,
        }
        return recon, terms

    def _loss(self, terms: dict) -> torch.Tensor:
        h = self.hparams
        return (
            terms["reconstruction"]
            + h.position_weight * terms["position"]
            + h.velocity_weight * terms["velocity"]
            + h.commitment_weight * terms["commitment"]
        )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        features, lengths = self._features(batch)
        _, terms = self(features, lengths, train=True)
        loss = self._loss(terms)
        self._log_terms("train", loss, terms, len(features))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        features, lengths = self._features(batch)
        recon, terms = self(features, lengths)
        self._log_terms("val", self._loss(terms), terms, len(features))
        error, local_error = mpjpe_mm(recon, features, lengths, self.tokenizer)
        self.log("val/mpjpe_mm", error, prog_bar=True, batch_size=len(features), sync_dist=True)
        self.log("val/mpjpe_local_mm", local_error, batch_size=len(features), sync_dist=True)

    def _log_terms(self, stage: str, loss: torch.Tensor, terms: dict, batch_size: int) -> None:
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=batch_size, sync_dist=stage != "train")
        for name in ("reconstruction", "position", "velocity", "commitment"):
            self.log(f"{stage}/{name}", terms[name], batch_size=batch_size, sync_dist=stage != "train")
        tok = self.tokenizer
        for k, (part, book) in enumerate(zip(tok.part_names, tok.codebooks)):
            codes = terms["codes"][:, k][terms["real_tokens"]]
            self.log(
                f"{stage}/perplexity_{part}",
                perplexity(codes, book.size),
                batch_size=batch_size,
                sync_dist=stage != "train",
            )
            self.log(
                f"{stage}/usage_{part}",
                codes.unique().numel() / book.size,
                batch_size=batch_size,
                sync_dist=stage != "train",
            )
            if stage == "train":
                self.log(f"train/dead_codes_{part}", terms["restarted"][k] / book.size, batch_size=batch_size)

    def configure_optimizers(self):
        h = self.hparams
        total = self.trainer.estimated_stepping_batches  # inf without max_steps / max_epochs
        total = int(total) if math.isfinite(total) else h.warmup_steps + 1
        return adamw_with_warmup_cosine(self.tokenizer, h.lr, h.weight_decay, tuple(h.betas), h.warmup_steps, total)
