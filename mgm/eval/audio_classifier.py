"""A small audio classifier on log-mel spectrograms: the embedded audio data's judge and its
feature extractor for Frechet audio distances (penultimate-layer features, as VGGish for FAD)."""

from __future__ import annotations

import numbers

import torch
import torchaudio
from torch import nn

from mgm.eval.classifier import conv_stages, pooled_features
from mgm.io import PretrainedMixin


class AudioClassifier(PretrainedMixin, nn.Module):
    """Conv net on mono clips [B, C, T] in [-1, 1] at ``sample_rate``: ``forward`` gives logits
    [B, num_classes], ``features`` the pooled penultimate activations [B, width * 4].

    Stereo is averaged to mono; clips at another rate are resampled when ``sample_rate`` is passed
    to ``features`` / ``forward``. Any length of at least one FFT window works (features are
    averaged over time).
    """

    def __init__(
        self,
        num_classes: int = 8,
        sample_rate: int = 8000,
        n_fft: int = 512,
        hop_length: int = 160,
        n_mels: int = 64,
        width: int = 32,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.config = {
            "num_classes": num_classes, "sample_rate": sample_rate, "n_fft": n_fft, "hop_length": hop_length,
            "n_mels": n_mels, "width": width, "dropout": dropout,
        }  # fmt: skip
        self.sample_rate, self.n_fft = sample_rate, n_fft
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        self.stages = conv_stages(1, width)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width * 4, num_classes)

    def _check(self, audio: torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        if not isinstance(audio, torch.Tensor) or audio.dim() != 3 or not audio.is_floating_point():
            raise ValueError(f"audio: expected a float tensor [B, C, T], got {getattr(audio, 'shape', type(audio))}")
        if sample_rate is not None and (
            isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0
        ):
            raise ValueError(f"sample_rate={sample_rate!r}: expected a positive integer (Hz)")
        audio = audio.mean(1)  # (B, T): mono
        if sample_rate is not None and sample_rate != self.sample_rate:
            audio = torchaudio.functional.resample(audio, sample_rate, self.sample_rate)
        if audio.shape[-1] < self.n_fft:
            raise ValueError(f"audio: {audio.shape[-1]} samples at {self.sample_rate} Hz; expected >= {self.n_fft}")
        return audio

    def features(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """audio [B, C, T] -> features [B, width * 4]."""
        audio = self._check(audio, sample_rate)
        log_mel = torch.log(self.mel(audio) + 1e-5)[:, None]  # (B, 1, n_mels, frames)
        return pooled_features(self.stages, log_mel)

    def forward(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        return self.head(self.dropout(self.features(audio, sample_rate)))
