"""Feature extractors for Frechet distances beyond the embedded-data judges.

- ``EncodecEmbedder``: frame embeddings of an EnCodec encoder (the pre-quantisation latents), the
  embedding fadtk calls "encodec-emb". Each frame is one sample of the statistics, as in fadtk.
- ``InceptionFID``: FID through torchmetrics' ``FrechetInceptionDistance`` (its Inception weights
  come with the ``eval`` extra's torch-fidelity and are fetched on first use), or through any
  feature module passed in, with mgm's image convention (float in [0, 1]) checked on the way in.
"""

from __future__ import annotations

import torch
from torch import nn

from mgm.tokenizers.audio_encodec import EncodecTokenizer


class EncodecEmbedder:
    """clips [B, C, T] in [-1, 1] -> frame embeddings [B * N, D] from ``tokenizer``'s encoder.

    Clips at another ``sample_rate`` are resampled and channels matched by the tokenizer's rules
    (``EncodecTokenizer.prepare``). The 48 kHz model's per-clip RMS normalisation is applied first,
    as its encoder expects.
    """

    def __init__(self, tokenizer: EncodecTokenizer):
        if not isinstance(tokenizer, EncodecTokenizer):
            raise ValueError(f"tokenizer: expected an EncodecTokenizer, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer.eval()

    @classmethod
    def pretrained(cls, name: str = "24khz", repository=None) -> EncodecEmbedder:
        """Meta's EnCodec encoder (``EncodecTokenizer.pretrained``: fetched, or read from ``repository``)."""
        return cls(EncodecTokenizer.pretrained(name, repository=repository))

    @property
    def sample_rate(self) -> int:
        return self.tokenizer.sample_rate

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        wav = self.tokenizer.prepare(audio, sample_rate)
        if self.tokenizer.model.normalize:
            wav = wav / wav.pow(2).mean((1, 2), keepdim=True).sqrt().clamp_min(1e-8)
        latents = self.tokenizer.encode_latents(wav)  # (B, D, N)
        return latents.transpose(1, 2).flatten(0, 1)


class JudgeFeatures(nn.Module):
    """A classifier's ``features`` as a feature module for ``InceptionFID`` (uint8 probes -> [0, 1])."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not images.is_floating_point():
            images = images.float() / 255
        return self.classifier.features(images)


class InceptionFID:
    """FID of images [B, 3, H, W] (float in [0, 1]) against reference images or statistics.

    ``feature``: 2048 (or 64 / 192 / 768) for torchmetrics' FID Inception-v3, fetched on first use
    (it takes the images as uint8 and resizes them to 299 x 299 itself); or any ``nn.Module``
    mapping float images in [0, 1] to features [B, F] (e.g. ``JudgeFeatures(ImageClassifier)``),
    with ``input_size`` (C, H, W) the size it takes (torchmetrics probes it once with a uint8 image).
    """

    def __init__(self, feature: int | nn.Module = 2048, input_size: tuple[int, int, int] = (3, 299, 299)):
        try:
            from torchmetrics.image.fid import FrechetInceptionDistance
        except ImportError as e:  # pragma: no cover - torchmetrics is a core dependency
            raise ImportError("FID needs torchmetrics: pip install 'mgm[eval]'") from e
        try:
            self.metric = FrechetInceptionDistance(
                feature=feature, normalize=True, reset_real_features=False, input_img_size=tuple(input_size)
            )
        except (ModuleNotFoundError, ImportError) as e:
            raise ImportError(
                f"torchmetrics' Inception FID needs torch-fidelity ({e}); install it with pip install 'mgm[eval]', "
                "or pass feature=<your nn.Module>"
            ) from e
        except Exception as e:  # the weights download failed (offline)
            raise RuntimeError(
                f"could not fetch the FID Inception weights ({type(e).__name__}: {e}); they are downloaded on "
                "first use, or pass feature=<your nn.Module> (e.g. the shipped Shapes10 judge's features)"
            ) from e

    @staticmethod
    def _check(images: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"{name}: expected float images [B, 3, H, W], got {getattr(images, 'shape', images)}")
        if not images.is_floating_point():
            raise ValueError(f"{name}: dtype {images.dtype}; mgm images are float in [0, 1]")
        low, high = float(images.min()), float(images.max())
        if low < 0 or high > 1:
            raise ValueError(f"{name}: values span [{low:.3f}, {high:.3f}]; mgm images are float in [0, 1]")
        return images.float()

    def update(self, images: torch.Tensor, real: bool) -> InceptionFID:
        self.metric.update(self._check(images, "real images" if real else "images"), real=real)
        return self

    def compute(self) -> float:
        return float(self.metric.compute())
