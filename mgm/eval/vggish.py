"""VGGish (Hershey et al., ICASSP 2017, as released with AudioSet), written for mgm: the embedder of
the original Frechet Audio Distance (Kilgour et al. 2019).

- Front end (``log_mel_examples``): mono 16 kHz audio -> |rfft| (512 points) of 25 ms periodic-Hann
  frames every 10 ms, no centring padding -> 64 mel bands over 125-7500 Hz (HTK mel formula,
  triangles linear in mel, DC bin dropped) -> log(mel + 0.01) -> non-overlapping 0.96 s examples of
  96 frames x 64 bands; a tail too short for a whole example is dropped, as in the original.
- ``VGGish``: conv3x3 stacks 64 | 128 | 256, 256 | 512, 512 with ReLU and 2x2 max-pooling after
  each -> [N, 512, 6, 4] -> flattened in TensorFlow's (frames, bands, channels) order -> Linear
  4096, ReLU, Linear 4096, ReLU, Linear 128, ReLU: one 128-d embedding per example. The attribute
  names are the widely used PyTorch port's (torchvggish), so its state dict (``features.0.weight``
  ... ``embeddings.4.bias``) loads as it is.
- ``VGGishPCA``: the AudioSet release's postprocessing (PCA with whitening, clip to [-2, 2],
  quantise to 0..255); its ``pca_eigen_vectors`` / ``pca_means`` are the keys of the port's PCA file.
- ``VGGishEmbedder``: the extractor ``AudioEvaluation`` plugs in: clips [B, C, T] -> [B, 128].

No weights are shipped or fetched: ``VGGishEmbedder.from_checkpoint`` reads a state dict the user
provides, with ``torch.load(..., weights_only=True)`` only.

Dimension legend: B clips, C channels, T samples (16 kHz), S frames, E examples per clip,
N = B * E examples, F = 96 frames per example, M = 64 mel bands, D = 128 embedding size.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from einops import rearrange, reduce
from torch import nn

from mgm.io import weights_fingerprint
from mgm.tokenizers.audio_encodec import check_waveform

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
FFT_SIZE = 512  # the power of two at or above the window
NUM_BANDS = 64
LOWEST_HZ, HIGHEST_HZ = 125.0, 7500.0
MEL_BREAK_HZ, MEL_HIGH_Q = 700.0, 1127.0  # HTK: mel = 1127 ln(1 + hz / 700)
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames; examples do not overlap
EXAMPLE_SAMPLES = WINDOW_SAMPLES + (EXAMPLE_FRAMES - 1) * HOP_SAMPLES  # 15,600: the shortest clip with one example
EMBEDDING_SIZE = 128
QUANTIZE_LOW, QUANTIZE_HIGH = -2.0, 2.0
EXAMPLES_PER_PASS = 64  # bounds activation memory (the first conv's output is 1.5 MB per example)
CONV_LAYOUT = (64, "pool", 128, "pool", 256, 256, "pool", 512, 512, "pool")  # the port's nn.Sequential order


def hertz_to_mel(hertz: torch.Tensor | float) -> torch.Tensor:
    """The HTK mel scale: 1127 ln(1 + hz / 700)."""
    return MEL_HIGH_Q * torch.log1p(torch.as_tensor(hertz, dtype=torch.float64) / MEL_BREAK_HZ)


def mel_filterbank() -> torch.Tensor:
    """The spectrogram -> mel matrix [FFT_SIZE // 2 + 1, M] = [257, 64] (float64): band i rises from
    edge i to edge i + 1 and falls to edge i + 2 of 66 edges equally spaced in mel from 125 to
    7500 Hz, linearly in mel; the DC bin gets no weight."""
    bins_mel = hertz_to_mel(torch.linspace(0, SAMPLE_RATE / 2, FFT_SIZE // 2 + 1, dtype=torch.float64))
    edges = torch.linspace(hertz_to_mel(LOWEST_HZ), hertz_to_mel(HIGHEST_HZ), NUM_BANDS + 2, dtype=torch.float64)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]  # [M] each
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = torch.minimum(rising, falling).clamp_min(0)
    weights[0] = 0
    return weights


def log_mel_spectrogram(wav: torch.Tensor) -> torch.Tensor:
    """wav [B, T] at 16 kHz (T >= 400) -> log-mel frames [B, S, M], S = 1 + (T - 400) // 160."""
    frames = wav.unfold(-1, WINDOW_SAMPLES, HOP_SAMPLES)  # (B, S, 400)
    window = torch.hann_window(WINDOW_SAMPLES, periodic=True, dtype=wav.dtype, device=wav.device)
    magnitude = torch.fft.rfft(frames * window, n=FFT_SIZE).abs()  # (B, S, 257)
    return torch.log(magnitude @ mel_filterbank().to(wav) + LOG_OFFSET)


def log_mel_examples(wav: torch.Tensor) -> torch.Tensor:
    """wav [B, T] at 16 kHz -> examples [B, E, F, M] = [B, E, 96, 64].

    A clip shorter than one example (15,600 samples: 0.96 s of frames plus the last window) is
    padded with zeros (silence) to one; after the last whole example the rest is dropped.
    """
    if wav.shape[-1] < EXAMPLE_SAMPLES:
        wav = F.pad(wav, (0, EXAMPLE_SAMPLES - wav.shape[-1]))
    log_mel = log_mel_spectrogram(wav)
    num_examples = log_mel.shape[1] // EXAMPLE_FRAMES
    return rearrange(log_mel[:, : num_examples * EXAMPLE_FRAMES], "b (e f) m -> b e f m", f=EXAMPLE_FRAMES)


class VGGish(nn.Module):
    """examples [N, 1, 96, 64] (log-mel) -> embeddings [N, 128] (after the last ReLU, before PCA).

    ``features`` (the conv stack) and ``embeddings`` (the FC stack) are ``nn.Sequential`` in the
    port's order, so its state dict keys fit. Weights start He-initialised with zero biases, so a
    random VGGish still passes its input through all nine layers (tests); real use loads weights.
    """

    def __init__(self):
        super().__init__()
        layers, channels = [], 1
        for item in CONV_LAYOUT:
            if item == "pool":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        pooled = (EXAMPLE_FRAMES // 16) * (NUM_BANDS // 16)  # four 2x2 poolings: 6 x 4
        self.embeddings = nn.Sequential(
            nn.Linear(channels * pooled, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_SIZE),
            nn.ReLU(inplace=True),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        if examples.dim() != 4 or tuple(examples.shape[1:]) != (1, EXAMPLE_FRAMES, NUM_BANDS):
            raise ValueError(
                f"examples: shape {tuple(examples.shape)}; expected [N, 1, {EXAMPLE_FRAMES}, {NUM_BANDS}] log-mel"
            )
        x = self.features(examples)  # (N, 512, 6, 4)
        # The FC weights were converted from TensorFlow, which flattens (frames, bands, channels).
        return self.embeddings(rearrange(x, "n c f m -> n (f m c)"))


class VGGishPCA(nn.Module):
    """The AudioSet release's postprocessing: embeddings [N, 128] -> PCA (with whitening) -> clipped
    to [-2, 2] -> quantised to the integers 0..255 (as floats) [N, 128].

    ``pca_eigen_vectors`` [128, 128] (rows: components) and ``pca_means`` [128] are the identity
    and zeros until loaded. Frechet distances use the embeddings before this step.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("pca_eigen_vectors", torch.eye(EMBEDDING_SIZE))
        self.register_buffer("pca_means", torch.zeros(EMBEDDING_SIZE))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        whitened = (embeddings - self.pca_means) @ self.pca_eigen_vectors.T
        scale = 255 / (QUANTIZE_HIGH - QUANTIZE_LOW)
        return torch.round((whitened.clamp(QUANTIZE_LOW, QUANTIZE_HIGH) - QUANTIZE_LOW) * scale)


def _read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a state dict of {what})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path}: holds objects beyond tensors and plain containers; refused. A file of numpy arrays "
            "(as torchvggish's PCA file is) must be saved once as tensors: "
            "torch.save({k: torch.as_tensor(v) for k, v in <its dict>.items()}, new_path)"
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable torch checkpoint ({e})") from e
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}; expected a state dict of {what}")
    odd = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if odd:
        raise ValueError(
            f"{path}: {odd[0]!r} holds a {type(state[odd[0]]).__name__}; expected a state dict of {what} "
            "(name -> tensor)"
        )
    return state


def _short(keys: list[str]) -> str:
    return f"{keys[:4]}" + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


def _load_checked(module: nn.Module, state: dict[str, torch.Tensor], path, what: str) -> None:
    """Load ``state`` into ``module`` (possibly on the meta device: tensors are assigned), or raise a
    ValueError naming the keys of the wrong shape and the missing / unexpected keys (four of each)."""
    expected = module.state_dict()
    problems = []
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong = [
        f"{key!r} is {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if wrong:
        problems.append("; ".join(wrong))
    if missing:
        problems.append(f"missing keys {_short(missing)}")
    if unexpected:
        pproc = any(key.startswith("pproc.") for key in unexpected)
        hint = " (torchvggish's PCA, under 'pproc.': save it apart and pass it as pca_path)" if pproc else ""
        problems.append(f"unexpected keys {_short(unexpected)}{hint}")
    if problems:
        raise ValueError(f"{path}: not a state dict of {what}: " + "; ".join(problems))
    module.load_state_dict({key: value.float() for key, value in state.items()}, assign=True)


class VGGishEmbedder:
    """clips [B, C, T] in [-1, 1] -> VGGish features [B, 128]: the mean of the embeddings of each
    clip's 0.96 s examples.

    Channels are averaged to mono; clips at another ``sample_rate`` are resampled to 16 kHz
    (torchaudio's windowed-sinc ``resample``; the original used resampy), the way ``AudioEvaluation``
    passes its rate, as for ``EncodecEmbedder``. A clip shorter than one example is padded with
    zeros to one (``log_mel_examples``); all clips of a batch share their length, so each clip has
    the same number E of examples. Averaging per clip gives one sample of the statistics per clip;
    the original FAD (and fadtk) counts every example instead: the two agree for clips of one example (under 1.935 s).

    ``postprocess=False`` (the default) gives the raw embeddings, the ones FAD is computed on;
    ``postprocess=True`` applies ``pca`` per example first (the AudioSet release's quantised
    features, 0..255), then averages.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, model: VGGish, pca: VGGishPCA | None = None, postprocess: bool = False):
        if not isinstance(model, VGGish):
            raise ValueError(f"model: expected a VGGish, got {type(model).__name__}")
        if postprocess and pca is None:
            raise ValueError("postprocess=True needs pca (a VGGishPCA, e.g. from pca_path); got pca=None")
        self.model, self.pca, self.postprocess = model.eval(), pca, postprocess

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, pca_path: str | os.PathLike | None = None, postprocess: bool = False
    ) -> VGGishEmbedder:
        """VGGish weights from ``path``: a state dict with the port's keys (e.g. torchvggish's
        ``vggish-10086976.pth``), read with ``torch.load(path, map_location="cpu", weights_only=True)``;
        the PCA from ``pca_path`` (``pca_eigen_vectors`` [128, 128], ``pca_means`` [128] or [128, 1]).
        On the CPU; move it with ``to``. Raises FileNotFoundError for a missing file and ValueError
        naming the keys that are missing, unexpected or of the wrong shape."""
        with torch.device("meta"):  # no random init of 72M weights that are about to be replaced
            model, pca = VGGish(), VGGishPCA()
        _load_checked(model, _read_state_dict(path, "VGGish weights"), path, "VGGish weights")
        if pca_path is None:
            pca = None
        else:
            state = _read_state_dict(pca_path, "VGGish PCA parameters")
            if "pca_means" in state and tuple(state["pca_means"].shape) == (EMBEDDING_SIZE, 1):
                state["pca_means"] = state["pca_means"].flatten()  # the port's column vector
            _load_checked(pca, state, pca_path, "VGGish PCA parameters")
        return cls(model, pca, postprocess)

    def to(self, device: str | torch.device) -> VGGishEmbedder:
        self.model.to(device)
        if self.pca is not None:
            self.pca.to(device)
        return self

    def fingerprint(self) -> str:
        """SHA-256 of what the features depend on: the weights, and the PCA when it is applied."""
        if not self.postprocess:
            return weights_fingerprint(self.model)
        both = weights_fingerprint(self.model) + weights_fingerprint(self.pca)
        return hashlib.sha256(both.encode()).hexdigest()

    def _mono_16k(self, audio: torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        """Check ``audio`` [B, C, T] and bring it to mono 16 kHz [B, T'] on the model's device."""
        check_waveform(audio, "audio")
        if sample_rate is not None and (
            isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0
        ):
            raise ValueError(f"sample_rate={sample_rate!r}: expected a positive integer (Hz)")
        wav = audio.to(next(self.model.parameters()).device, torch.float32).mean(1)  # (B, T)
        if sample_rate is not None and sample_rate != SAMPLE_RATE:
            wav = torchaudio.functional.resample(wav, sample_rate, SAMPLE_RATE)
        return wav

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """audio [B, C, T] at ``sample_rate`` (None: 16 kHz) -> features [B, 128] on the model's device."""
        wav = self._mono_16k(audio, sample_rate)
        examples = rearrange(log_mel_examples(wav), "b e f m -> (b e) 1 f m")
        embeddings = torch.cat([self.model(chunk) for chunk in examples.split(EXAMPLES_PER_PASS)])
        if self.postprocess:
            embeddings = self.pca(embeddings)
        return reduce(embeddings, "(b e) d -> b d", "mean", b=len(wav))


__all__ = [
    "SAMPLE_RATE",
    "VGGish",
    "VGGishEmbedder",
    "VGGishPCA",
    "hertz_to_mel",
    "log_mel_examples",
    "log_mel_spectrogram",
    "mel_filterbank",
]
