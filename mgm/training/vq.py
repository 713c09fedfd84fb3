"""Training an image VQ tokenizer (diffusers VQModel through mgm.tokenizers.ImageVQ).

Loss = reconstruction (L1 or L2, in the VQModel's [-1, 1] space)
     + codebook_weight * ||sg(z) - q||^2 + commitment_weight * ||z - sg(q)||^2
     + optional perceptual (VGG16 features) and adversarial (PatchGAN, hinge) terms.
Codebook usage is tracked as an exponential moving average of code counts; perplexity and the
share of dead codes are logged, and dead codes are restarted on the worst-fit encoder outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from mgm.tokenizers.image_vq import ImageVQ
from mgm.training.codebooks import code_usage, share_perplexity
from mgm.training.distributed import broadcast_from_first_, mean_over_ranks_
from mgm.training.optim import adamw_with_warmup_cosine
from mgm.training.resume import SeededTraining


class PatchDiscriminator(nn.Module):
    """A small PatchGAN: one real/fake logit per receptive-field patch."""

    def __init__(self, channels: int = 64, num_layers: int = 3):
        super().__init__()
        layers, width = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2)], channels
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.GroupNorm(8, width * 2), nn.LeakyReLU(0.2)]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class VGGPerceptual(nn.Module):
    """Mean squared distance of VGG16 features; needs torchvision's ImageNet weights (a download)."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        try:
            weights = torchvision.models.VGG16_Weights.DEFAULT if pretrained else None
            features = torchvision.models.vgg16(weights=weights).features[:23].eval()
        except Exception as e:  # the weights come from the network
            raise RuntimeError(
                f"perceptual_weight > 0 needs torchvision's VGG16 ImageNet weights, which could not be loaded ({e}); "
                "set perceptual_weight: 0 on machines without access"
            ) from e
        self.features = features.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: images in [-1, 1]."""

        def norm(x):
            return ((x + 1) / 2 - self.mean) / self.std

        return F.mse_loss(self.features(norm(a)), self.features(norm(b)))


class ImageVQTraining(SeededTraining):
    """Args:
    tokenizer: the ImageVQ to train.
    reconstruction: "l1" or "l2".
    codebook_weight, commitment_weight: VQ-VAE codebook and commitment terms.
    perceptual_weight, adversarial_weight: optional terms, off (0) by default.
    adversarial_start: step at which the adversarial term switches on.
    dead_code_threshold: a code whose EMA share of assignments is below threshold / num_codes is dead.
    restart_every: steps between dead-code restarts (0 = never).
    usage_decay: EMA decay of the code-usage counts.
    sample_dir: where validation reconstruction grids are written (default: the trainer's log dir).
    """

    def __init__(
        self,
        tokenizer: ImageVQ,
        reconstruction: str = "l1",
        codebook_weight: float = 1.0,
        commitment_weight: float = 0.25,
        perceptual_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        adversarial_start: int = 0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.99),
        warmup_steps: int = 100,
        dead_code_threshold: float = 0.03,
        restart_every: int = 100,
        usage_decay: float = 0.99,
        sample_dir: str | None = None,
    ):
        super().__init__()
        if reconstruction not in ("l1", "l2"):
            raise ValueError(f"reconstruction={reconstruction!r}: expected 'l1' or 'l2'")
        self.save_hyperparameters(ignore=["tokenizer"])
        self.automatic_optimization = False  # generator and discriminator steps alternate
        self.tokenizer = tokenizer
        self.perceptual = VGGPerceptual() if perceptual_weight > 0 else None
        self.discriminator = PatchDiscriminator() if adversarial_weight > 0 else None
        # Usage starts at 0, so codes never chosen by the first restart are restarted there.
        self.register_buffer("usage", torch.zeros(tokenizer.spec.codebook_sizes[0]))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """images [B, 3, H, W] in [0, 1] -> (reconstruction in [-1, 1], loss terms)."""
        tok = self.tokenizer
        latents = tok.encode_latents(images)  # (B, C, h, w)
        indices = tok.nearest_codes(latents)  # (B, hw)
        quantized = tok.lookup(indices)
        terms = {
            "codebook": F.mse_loss(quantized, latents.detach()),
            "commitment": F.mse_loss(latents, quantized.detach()),
        }
        # Straight-through: the decoder's gradient reaches the encoder as if there were no quantiser.
        recon = tok.decode_latents(latents + (quantized - latents).detach())
        target = images * 2 - 1
        terms["reconstruction"] = (
            F.l1_loss(recon, target) if self.hparams.reconstruction == "l1" else F.mse_loss(recon, target)
        )
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(recon, target)
        terms["indices"] = indices
        return recon, terms

    def _generator_loss(self, recon: torch.Tensor, terms: dict) -> torch.Tensor:
        h = self.hparams
        loss = (
            terms["reconstruction"] + h.codebook_weight * terms["codebook"] + h.commitment_weight * terms["commitment"]
        )
        if self.perceptual is not None:
            loss = loss + h.perceptual_weight * terms["perceptual"]
        if self.discriminator is not None and self.global_step >= h.adversarial_start:
            terms["adversarial"] = -self.discriminator(recon).mean()
            loss = loss + h.adversarial_weight * terms["adversarial"]
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        images = batch["images"]
        optimizers = self.optimizers()
        opt_g, opt_d = optimizers if isinstance(optimizers, list) else (optimizers, None)
        recon, terms = self(images)
        loss = self._generator_loss(recon, terms)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        if opt_d is not None and self.global_step >= self.hparams.adversarial_start:
            real, fake = self.discriminator(images * 2 - 1), self.discriminator(recon.detach())
            d_loss = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
            self.log("train/discriminator", d_loss)
        for scheduler in self.lr_schedulers() if isinstance(self.lr_schedulers(), list) else [self.lr_schedulers()]:
            scheduler.step()
        self._track_usage(terms["indices"], terms)
        self._log_terms("train", loss, terms, images.shape[0])
        if self.hparams.restart_every and (self.global_step + 1) % self.hparams.restart_every == 0:
            self.restart_dead_codes(self.tokenizer.encode_latents(images).detach())
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        images = batch["images"]
        recon, terms = self(images)
        self._log_terms("val", terms["reconstruction"], terms, images.shape[0])
        if batch_idx == 0:
            self._save_grid(images[:8], ((recon[:8] + 1) / 2).clamp(0, 1))

    def _log_terms(self, stage: str, loss: torch.Tensor, terms: dict, batch_size: int) -> None:
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=batch_size, sync_dist=stage != "train")
        for name, value in terms.items():
            if name != "indices":
                self.log(f"{stage}/{name}", value, batch_size=batch_size, sync_dist=stage != "train")

    @torch.no_grad()
    def _track_usage(self, indices: torch.Tensor, terms: dict) -> None:
        share = mean_over_ranks_(code_usage(indices, self.usage.numel())[0])  # the same EMA step on every rank
        perplexity = share_perplexity(share)
        self.usage.mul_(self.hparams.usage_decay).add_(share, alpha=1 - self.hparams.usage_decay)
        self.log("train/perplexity", perplexity, prog_bar=True)
        self.log("train/dead_codes", self.dead_codes().float().mean())

    def dead_codes(self) -> torch.Tensor:
        """BoolTensor[num_codes]: codes whose recent share of assignments is below the threshold."""
        return self.usage < self.hparams.dead_code_threshold / self.usage.numel()

    @torch.no_grad()
    def restart_dead_codes(self, latents: torch.Tensor) -> int:
        """Move each dead code onto an encoder output of the batch; returns how many moved.

        Outputs are drawn with probability proportional to their squared distance from the
        codebook (as in k-means++ seeding), so restarts go where the codebook fits worst (edges,
        rare colours). Drawing them uniformly would put most restarts into the dense clusters of
        flat background and split them into near-duplicate codes, which makes the codes of equal
        patches vary with their surroundings and the tokens needlessly hard to predict.
        """
        dead = self.dead_codes().nonzero()[:, 0]
        if len(dead) == 0:
            return 0
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        error = torch.cdist(flat, self.tokenizer.codebook.data).amin(1).square()
        if error.sum() <= 0:  # every output sits on a code: nothing fits worse than anything else
            error = torch.ones_like(error)
        picks = torch.multinomial(error, len(dead), replacement=len(dead) > len(flat))
        self.tokenizer.codebook.data[dead] = flat[picks] + 1e-3 * torch.randn_like(flat[picks])
        self.usage[dead] = 1.0 / self.usage.numel()
        # Under DDP every rank finds the same dead codes (usage is averaged over ranks) but restarts
        # them on its own latents: rank 0's restart is kept, so the codebooks stay equal.
        broadcast_from_first_(self.tokenizer.codebook.data, self.usage)
        return len(dead)

    def _save_grid(self, images: torch.Tensor, recon: torch.Tensor) -> None:
        directory = self.hparams.sample_dir or (self.trainer.log_dir if self.trainer.log_dir else None)
        if directory is None or not self.trainer.is_global_zero:
            return
        path = Path(directory) / "reconstructions" / f"step_{self.global_step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        torchvision.utils.save_image(torch.cat([images, recon]), path, nrow=len(images))

    def configure_optimizers(self):
        h = self.hparams
        total = int(self.trainer.estimated_stepping_batches)
        gen = adamw_with_warmup_cosine(self.tokenizer, h.lr, h.weight_decay, tuple(h.betas), h.warmup_steps, total)
        if self.discriminator is None:
            return gen
        disc = adamw_with_warmup_cosine(self.discriminator, h.lr, 0.0, (0.5, 0.9), h.warmup_steps, total)
        return [gen["optimizer"], disc["optimizer"]], [gen["lr_scheduler"], disc["lr_scheduler"]]
