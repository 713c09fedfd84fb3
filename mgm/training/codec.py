"""Training an EnCodec audio tokenizer (mgm.tokenizers.EncodecTokenizer).

Loss = l1_weight * |x - x'|_1 (time domain)
     + mel_weight * multi-scale mel loss (L1 on linear and on log mel spectrograms, several FFT sizes)
     + optional stft_weight * spectral convergence of one long linear-frequency STFT
     + commitment_weight * the residual VQ's commitment penalty (EnCodec's quantizer)
     + optional adversarial_weight * hinge loss against EnCodec's multi-scale STFT discriminator.

Codebooks are not trained by gradients: in training mode EnCodec's quantizer moves each code to
the exponential moving average of the latents assigned to it. EnCodec's own dead-code expiry has
no effect (it replaces codes in ``embed`` just before the EMA step recomputes ``embed`` from
``embed_avg``), so this system restarts dead codes itself, with consistent EMA state.
Measured on the small codec over its first 100 steps: the random encoder's latents share a common
offset that moves by more than their spread (about 0.03) at each optimiser step, so a few codes
take every frame. A code is re-seeded ln(threshold) / ln(0.99) steps after its last use (0.99 is
EnCodec's EMA decay; about 230 steps at the defaults). Watch ``train/perplexity_k``.

Codebook start (``codebook_init``): "data" (default) sets every code to a latent of the first
training batch (residuals, level by level), which costs one extra quantisation. "kmeans" lets
EnCodec's k-means (50 iterations) run on the first batch: measured about 8 s per codebook for the
small codec on 2 CPU cores (800 latents, 256 codes), little gain over "data" since the encoder is
random then. "keep" trains the codebooks as they are (fine-tuning a trained codec).

Dimension legend: B batch, C audio channels, T samples, K codebooks, N frames, D latent dimension.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from encodec.msstftd import MultiScaleSTFTDiscriminator
from encodec.quantization.core_vq import laplace_smoothing
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from mgm.tokenizers.audio_encodec import EncodecTokenizer
from mgm.training.codebooks import code_usage
from mgm.training.distributed import broadcast_from_first_, mean_over_ranks_, world_size
from mgm.training.optim import adamw_with_warmup_cosine
from mgm.training.resume import SeededTraining

CODEBOOK_INITS = ("data", "kmeans", "keep")
LOG_MEL_FLOOR = 1e-5  # log(mel) is taken of max(mel, floor): silence must not give -inf


class MultiScaleMelLoss(nn.Module):
    """Mean over FFT sizes of L1(mel) + L1(log mel), mel = magnitude mel spectrogram (EnCodec's
    frequency loss). Hop = n_fft / 4; ``n_mels`` is capped at n_fft / 4 so no mel band is empty."""

    def __init__(self, sample_rate: int, n_ffts: tuple[int, ...] = (256, 512, 1024), n_mels: int = 64):
        super().__init__()
        if not n_ffts:
            raise ValueError("n_ffts: expected one or more FFT sizes")
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate, n_fft=n, hop_length=n // 4, n_mels=min(n_mels, n // 4), power=1.0
            )
            for n in n_ffts
        )

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """prediction, target: [B, C, T] -> scalar."""
        loss = prediction.new_zeros(())
        for mel in self.mels:
            a, b = mel(prediction), mel(target)  # (B, C, n_mels, frames)
            log_a, log_b = a.clamp_min(LOG_MEL_FLOOR).log(), b.clamp_min(LOG_MEL_FLOOR).log()
            loss = loss + F.l1_loss(a, b) + F.l1_loss(log_a, log_b)
        return loss / len(self.mels)


class STFTLoss(nn.Module):
    """Spectral convergence of one long STFT (Hann window, hop n_fft / 4): the Frobenius norm of the
    magnitude error over the target's, as in Parallel WaveGAN's multi-resolution STFT loss.

    Mel bands are tens of Hz wide at low frequencies (about 56 Hz around 250 Hz with 64 bands at
    8 kHz), so the mel loss cannot tell a 261.6 Hz fundamental from a 250 Hz one; linear bins of
    sample_rate / n_fft Hz can (about 2 Hz for 4096 points at 8 kHz). Linear magnitudes weigh the
    strong partials, not the noise floor that dominates a log-magnitude distance.
    """

    def __init__(self, n_fft: int = 4096):
        super().__init__()
        if n_fft < 16:
            raise ValueError(f"stft_n_fft={n_fft}: expected at least 16")
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """prediction, target: [B, C, T] -> scalar."""

        def magnitude(x: torch.Tensor) -> torch.Tensor:
            x = x.reshape(-1, x.shape[-1])
            return torch.stft(x, self.n_fft, self.n_fft // 4, window=self.window, return_complex=True).abs()

        a, b = magnitude(prediction), magnitude(target)
        return (a - b).norm() / b.norm().clamp_min(1e-8)


class CodecTraining(SeededTraining):
    """Args:
    tokenizer: the EncodecTokenizer to train (all of its ``num_codebooks`` codebooks, or a random
        number per batch with ``quantizer_dropout``).
    l1_weight, mel_weight, commitment_weight: the loss terms above (EnCodec: 0.1, 1, 1).
    mel_n_ffts, n_mels: the mel loss's FFT sizes and mel bands (the discriminator uses the same FFT sizes).
    stft_weight, stft_n_fft: the long linear-STFT term (``STFTLoss``; 0 = off), for pitch accuracy
        at low frequencies.
    adversarial_weight: hinge loss of an MS-STFT discriminator (0 = off, no discriminator is built).
    adversarial_start: step at which the adversarial term switches on.
    discriminator_filters: width of each discriminator scale.
    quantizer_dropout: quantise each batch with 1..K codebooks (uniform), as EnCodec trains for
        several bandwidths; off by default (the codes then serve one bandwidth best).
    codebook_init: "data", "kmeans" or "keep" (see the module doc).
    quantize_after: train the first steps as a plain autoencoder (no quantiser) and start the
        codebooks on the latents it has learned. From a random encoder the latents barely differ
        between frames (a shared offset dwarfs their spread), so every frame lands on one code and
        the straight-through gradient cannot spread them again: measured here on Tones8, all four
        levels collapsed to perplexity ~1 within 50 steps without it.
    dead_code_threshold: a code whose EMA count is below threshold x the count of a uniformly used
        code is dead and is restarted on a latent of the batch, every step (0 = never).
    lr, weight_decay, betas, warmup_steps: AdamW, linear warm-up then cosine decay (EnCodec's lr and betas).
    num_audio_samples: validation reconstructions written as WAV (the first batch's first clips).
    sample_dir: where they go (default: the trainer's log dir; nothing is written without one).
    init_from: a saved EncodecTokenizer folder whose weights (codebooks included) replace the
        tokenizer's before training: fine-tuning (use with codebook_init="keep", quantize_after=0).
    decoder_only: train the decoder alone; the encoder and codebooks stay as ``init_from`` left
        them (frozen, codebooks without EMA updates), so every clip keeps its codes and a
        transformer trained on them keeps working with the fine-tuned codec. Needs ``init_from``,
        codebook_init="keep" and quantize_after=0; dead codes are not restarted.
    """

    def __init__(
        self,
        tokenizer: EncodecTokenizer,
        l1_weight: float = 0.1,
        mel_weight: float = 1.0,
        commitment_weight: float = 1.0,
        mel_n_ffts: tuple[int, ...] = (256, 512, 1024),
        n_mels: int = 64,
        stft_weight: float = 0.0,
        stft_n_fft: int = 4096,
        adversarial_weight: float = 0.0,
        adversarial_start: int = 0,
        discriminator_filters: int = 16,
        quantizer_dropout: bool = False,
        codebook_init: str = "data",
        quantize_after: int = 0,
        dead_code_threshold: float = 0.1,
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.5, 0.9),
        warmup_steps: int = 100,
        num_audio_samples: int = 4,
        sample_dir: str | None = None,
        init_from: str | None = None,
        decoder_only: bool = False,
    ):
        super().__init__()
        if codebook_init not in CODEBOOK_INITS:
            raise ValueError(f"codebook_init={codebook_init!r}: expected one of {CODEBOOK_INITS}")
        if decoder_only and (init_from is None or codebook_init != "keep" or quantize_after != 0):
            raise ValueError(
                f"decoder_only=True with init_from={init_from!r}, codebook_init={codebook_init!r}, "
                f"quantize_after={quantize_after}: expected a trained codec to start from (init_from), "
                "codebook_init='keep' and quantize_after=0"
            )
        self.save_hyperparameters(ignore=["tokenizer"])
        self.automatic_optimization = False  # generator and discriminator steps alternate
        self.tokenizer = tokenizer
        self.mel_loss = MultiScaleMelLoss(tokenizer.sample_rate, tuple(mel_n_ffts), n_mels)
        self.stft_loss = STFTLoss(stft_n_fft) if stft_weight > 0 else None
        self.discriminator = None
        if adversarial_weight > 0:
            with warnings.catch_warnings():  # EnCodec builds on torch's legacy (deprecated) weight_norm
                warnings.filterwarnings("ignore", r".*weight_norm.*deprecated", FutureWarning)
                self.discriminator = MultiScaleSTFTDiscriminator(
                    discriminator_filters, in_channels=tokenizer.channels, n_ffts=list(mel_n_ffts),
                    hop_lengths=[n // 4 for n in mel_n_ffts], win_lengths=list(mel_n_ffts),
                )  # fmt: skip
        if codebook_init == "kmeans":  # EnCodec runs k-means in the quantizer's next forward
            for book in self._codebooks():
                book.inited.fill_(0.0)
        # Decided at the first training step, so a run resumed from a checkpoint keeps its codebooks.
        if init_from is not None:
            saved = EncodecTokenizer.from_pretrained(init_from)
            if saved.config != tokenizer.config:
                raise ValueError(
                    f"init_from={init_from!r}: its codec config {saved.config} differs from {tokenizer.config}"
                )
            tokenizer.load_state_dict(saved.state_dict())
        if decoder_only:
            for part in (tokenizer.model.encoder, tokenizer.model.quantizer):
                part.requires_grad_(False)
        self._data_init_pending = codebook_init == "data"
        self._originals_written = False

    def _codebooks(self, num_codebooks: int | None = None) -> list[nn.Module]:
        """EnCodec's EuclideanCodebook of each quantiser level (buffers embed, embed_avg, cluster_size, inited)."""
        layers = self.tokenizer.model.quantizer.vq.layers
        return [layer._codebook for layer in layers[: num_codebooks or len(layers)]]

    # -- the step -------------------------------------------------------------------------------

    def _audio(self, batch: dict) -> torch.Tensor:
        audio = self.tokenizer.prepare(batch["audio"])  # checks shape and range, matches channels
        if self.tokenizer.model.normalize:  # as EncodecModel._encode_frame: the codec sees unit-RMS clips
            audio = audio / (1e-8 + audio.mean(1, keepdim=True).pow(2).mean(2, keepdim=True).sqrt())
        return audio

    def warming_up(self) -> bool:
        """Whether this training step is one of the first ``quantize_after``, trained without quantisation."""
        return self.training and self.global_step < self.hparams.quantize_after

    def forward(self, audio: torch.Tensor, num_codebooks: int | None = None) -> tuple[torch.Tensor, dict]:
        """audio [B, C, T] -> (reconstruction [B, C, T], loss terms and the codes [K, B, N] or None)."""
        if self.hparams.decoder_only:  # frozen parts in eval mode, whatever the trainer set: no codebook EMA
            self.tokenizer.model.encoder.eval()
            self.tokenizer.model.quantizer.eval()
        latents = self.tokenizer.encode_latents(audio)  # (B, D, N)
        if self.warming_up():
            recon = self.tokenizer.decode_latents(latents)[..., : audio.shape[-1]]
            terms = {"l1": F.l1_loss(recon, audio), "mel": self.mel_loss(recon, audio)}
            return recon, {**terms, "commitment": latents.new_zeros(()), "codes": None, "latents": latents}
        if self.training and self._data_init_pending:
            if self.global_step == self.hparams.quantize_after:
                self.restart_codes(latents, everything=True)
            self._data_init_pending = False
        result = self.tokenizer.quantize(latents, num_codebooks)
        if self.training and not self.hparams.decoder_only:
            self._sync_codebooks(num_codebooks)
        recon = self.tokenizer.decode_latents(result.quantized)[..., : audio.shape[-1]]
        terms = {
            "l1": F.l1_loss(recon, audio),
            "mel": self.mel_loss(recon, audio),
            **({"stft": self.stft_loss(recon, audio)} if self.stft_loss is not None else {}),
            "commitment": result.penalty,
            "codes": result.codes,
            "latents": latents,
        }
        return recon, terms

    def _generator_loss(self, recon: torch.Tensor, terms: dict) -> torch.Tensor:
        h = self.hparams
        loss = h.l1_weight * terms["l1"] + h.mel_weight * terms["mel"] + h.commitment_weight * terms["commitment"]
        if "stft" in terms:
            loss = loss + h.stft_weight * terms["stft"]
        if self.discriminator is not None and self.global_step >= h.adversarial_start:
            logits, _ = self.discriminator(recon)
            terms["adversarial"] = sum(F.relu(1 - logit).mean() for logit in logits) / len(logits)
            loss = loss + h.adversarial_weight * terms["adversarial"]
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        audio = self._audio(batch)
        optimizers = self.optimizers()
        opt_g, opt_d = optimizers if isinstance(optimizers, list) else (optimizers, None)
        num_codebooks = self.tokenizer.num_codebooks
        if self.hparams.quantizer_dropout:  # drawn alike on every rank: their codebook EMAs are averaged
            num_codebooks = int(torch.randint(1, num_codebooks + 1, (), generator=self.shared_generator()))
        recon, terms = self(audio, num_codebooks)
        loss = self._generator_loss(recon, terms)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        if opt_d is not None and self.global_step >= self.hparams.adversarial_start:
            real, _ = self.discriminator(audio)
            fake, _ = self.discriminator(recon.detach())
            d_loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake)) / len(real)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
            self.log("train/discriminator", d_loss, batch_size=audio.shape[0])
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
        self._log_terms("train", loss, terms, audio.shape[0])
        if terms["codes"] is None:  # warming up without quantisation
            return loss
        self._log_codebooks(terms["codes"], terms["latents"])
        self.log("train/num_codebooks", float(num_codebooks), batch_size=audio.shape[0])
        if self.hparams.dead_code_threshold > 0 and not self.hparams.decoder_only:
            restarted = self.restart_codes(terms["latents"], num_codebooks)
            self.log("train/restarted_codes", float(restarted), batch_size=audio.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        audio = self._audio(batch)
        recon, terms = self(audio)
        h = self.hparams
        loss = h.l1_weight * terms["l1"] + h.mel_weight * terms["mel"] + h.stft_weight * terms.get("stft", 0.0)
        self._log_terms("val", loss, terms, audio.shape[0])
        if batch_idx == 0 and self.hparams.num_audio_samples > 0:
            count = self.hparams.num_audio_samples
            self._write_audio(audio[:count], recon[:count])

    def _log_terms(self, stage: str, loss: torch.Tensor, terms: dict, batch_size: int) -> None:
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=batch_size, sync_dist=stage != "train")
        for name in ("l1", "mel", "stft", "commitment", "adversarial"):
            if name in terms and not (stage == "val" and name == "commitment"):  # zero outside training
                self.log(f"{stage}/{name}", terms[name], batch_size=batch_size, sync_dist=stage != "train")

    # -- codebooks ------------------------------------------------------------------------------

    @torch.no_grad()
    def _log_codebooks(self, codes: torch.Tensor, latents: torch.Tensor) -> None:
        """Per codebook k: perplexity of this batch's codes and the share of the codebook they use;
        and the share of dead codes (by the EMA counts) over the codebooks in use."""
        bins = self.tokenizer.bins
        for k, level in enumerate(codes):  # codes: (K, B, N)
            share, perplexity = code_usage(level, bins)
            self.log(f"train/perplexity_{k}", perplexity, batch_size=latents.shape[0])
            self.log(f"train/usage_{k}", (share > 0).float().mean(), batch_size=latents.shape[0])
        dead = torch.stack([self._dead(book, latents) for book in self._codebooks(len(codes))])
        self.log("train/dead_codes", dead.float().mean(), batch_size=latents.shape[0])

    def _dead(self, book: nn.Module, latents: torch.Tensor) -> torch.Tensor:
        uniform = latents.shape[0] * latents.shape[2] / self.tokenizer.bins  # EMA count of an evenly used code
        return book.cluster_size < self.hparams.dead_code_threshold * uniform

    @torch.no_grad()
    def restart_codes(self, latents: torch.Tensor, num_codebooks: int | None = None, everything: bool = False) -> int:
        """Move dead codes (all codes with ``everything``) onto latents of the batch; returns how many.

        Level by level: level k's candidates are the batch's residuals after levels < k. Dead codes
        go to residuals drawn with probability proportional to their squared distance from the
        codebook (as in k-means++ seeding, where the codebook fits worst); ``everything`` draws
        uniformly. A restarted code gets the EMA count of an evenly used code, with ``embed_avg``
        to match, so EnCodec's next EMA step keeps it where it was put.
        """
        residual = latents.detach().transpose(1, 2).reshape(-1, latents.shape[1])  # (B * N, D)
        uniform = len(residual) / self.tokenizer.bins
        moved = 0
        for book in self._codebooks(num_codebooks or self.tokenizer.num_codebooks):
            dead = torch.ones_like(book.cluster_size, dtype=torch.bool) if everything else self._dead(book, latents)
            count = int(dead.sum())
            if count:
                weights = torch.ones(len(residual), device=residual.device)
                if not everything:
                    error = torch.cdist(residual, book.embed).amin(1).square()
                    weights = error if error.sum() > 0 else weights
                picks = residual[torch.multinomial(weights, count, replacement=count > len(residual))]
                book.embed[dead] = picks
                book.embed_avg[dead] = picks * uniform
                book.cluster_size[dead] = uniform
                book.inited.fill_(1.0)
                moved += count
            residual = residual - book.decode(book.encode(residual))
        # Under DDP each rank restarted on its own latents: rank 0's codebooks are kept.
        for book in self._codebooks(num_codebooks or self.tokenizer.num_codebooks):
            broadcast_from_first_(book.embed, book.embed_avg, book.cluster_size, book.inited)
        return moved

    @torch.no_grad()
    def _sync_codebooks(self, num_codebooks: int | None) -> None:
        """Average the EMA step EnCodec's quantiser just took over the ranks (a no-op in one process).

        Each rank moved ``cluster_size`` and ``embed_avg`` from the same values by its own batch's
        statistics; the EMA is linear, so their mean is the step taken on the ranks' mean statistics.
        ``embed`` is then recomputed from them as EnCodec's EuclideanCodebook does.
        """
        if world_size() == 1:
            return
        for book in self._codebooks(num_codebooks):
            mean_over_ranks_(book.cluster_size)
            mean_over_ranks_(book.embed_avg)
            smoothed = laplace_smoothing(book.cluster_size, book.codebook_size, book.epsilon) * book.cluster_size.sum()
            book.embed.copy_(book.embed_avg / smoothed.unsqueeze(1))

    # -- audio samples --------------------------------------------------------------------------

    def _write_audio(self, audio: torch.Tensor, recon: torch.Tensor) -> None:
        """reconstructions/step_XXXXXXX_i.wav (and original_i.wav once) in the sample or log dir."""
        trainer = self._trainer
        directory = self.hparams.sample_dir or (trainer.log_dir if trainer is not None else None)
        if directory is None or (trainer is not None and not trainer.is_global_zero):
            return
        from mgm.data.audio_io import write_wavs

        folder = Path(directory) / "reconstructions"
        wavs = {f"step_{self.global_step:07d}_{i}.wav": clip for i, clip in enumerate(recon)}
        if not self._originals_written:
            wavs.update({f"original_{i}.wav": clip for i, clip in enumerate(audio)})
        try:
            write_wavs(wavs, self.tokenizer.sample_rate, folder, overwrite=True)
        except OSError as e:  # a full disk or a read-only folder must not stop training
            rank_zero_warn(f"could not write reconstructions to {folder}: {e}")
            return
        self._originals_written = True

    def configure_optimizers(self):
        h = self.hparams
        total = self.trainer.estimated_stepping_batches  # inf without max_steps / max_epochs
        total = int(total) if math.isfinite(total) else h.warmup_steps + 1
        gen = adamw_with_warmup_cosine(self.tokenizer, h.lr, h.weight_decay, tuple(h.betas), h.warmup_steps, total)
        if self.discriminator is None:
            return gen
        disc = adamw_with_warmup_cosine(self.discriminator, h.lr, h.weight_decay, tuple(h.betas), h.warmup_steps, total)
        return [gen["optimizer"], disc["optimizer"]], [gen["lr_scheduler"], disc["lr_scheduler"]]
