"""Audio tokenizer on Meta's EnCodec (``encodec.EncodecModel``): a SEANet encoder, a residual VQ of
K codebooks and a SEANet decoder.

Audio convention: mgm's audio API takes and returns FloatTensor[B, C, T] in [-1, 1] at the codec's
``sample_rate``; ``encode(wav, sample_rate=...)`` resamples other rates. Codes are
``codes[B, K, N]``: K residual codebooks (their number set by ``bandwidth``), N = ceil(T / downsample)
frames at ``frame_rate`` frames per second. ``decode`` returns N * downsample samples.

Dimension legend: B batch, C audio channels, T samples, K codebooks, N frames, D latent dimension.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from pathlib import Path

import torch
import torchaudio
from encodec import EncodecModel
from encodec.modules import SEANetDecoder, SEANetEncoder
from encodec.quantization import ResidualVectorQuantizer
from encodec.quantization.vq import QuantizedResult
from torch import nn

from mgm.io import PretrainedMixin
from mgm.tokens import TokenSpec

# The checkpoints EnCodec downloads (named here only to tell offline users which file to fetch) and
# the architecture of each, in this tokenizer's build arguments; ``pretrained`` loads EnCodec's
# weights strictly into a tokenizer built from these, so they are checked on every load.
PRETRAINED = {
    "24khz": {
        "checkpoint": "encodec_24khz-d7cc33bc.th",
        "factory": EncodecModel.encodec_model_24khz,
        "architecture": dict(
            sample_rate=24_000, channels=1, n_filters=32, dimension=128, ratios=(8, 5, 4, 2), lstm=2,
            bins=1024, num_codebooks=32, causal=True, norm="weight_norm", normalize=False,
            target_bandwidths=(1.5, 3.0, 6.0, 12.0, 24.0),
        ),
    },
    "48khz": {
        "checkpoint": "encodec_48khz-7e698e3e.th",
        "factory": EncodecModel.encodec_model_48khz,
        "architecture": dict(
            sample_rate=48_000, channels=2, n_filters=32, dimension=128, ratios=(8, 5, 4, 2), lstm=2,
            bins=1024, num_codebooks=16, causal=False, norm="time_group_norm", normalize=True,
            target_bandwidths=(3.0, 6.0, 12.0, 24.0),
        ),
    },
}  # fmt: skip

# A normalising codec (EnCodec 48 kHz) divides each clip by its RMS before encoding; that scale is
# not a token, so decode renders every clip at this RMS (-20 dBFS), which leaves headroom in [-1, 1].
NORMALISED_DECODE_RMS = 0.1
# Inputs may overshoot [-1, 1] by this much (float rounding after a gain or a resampler).
RANGE_TOLERANCE = 1e-3


def check_waveform(wav: torch.Tensor, name: str = "wav") -> None:
    """Raise ValueError unless ``wav`` is a finite FloatTensor[B, C, T] (B, C, T >= 1) in [-1, 1]
    (up to ``RANGE_TOLERANCE``): mgm's one waveform convention, checked before any work."""
    if not isinstance(wav, torch.Tensor) or not wav.is_floating_point() or wav.dim() != 3:
        got = f"shape {tuple(wav.shape)}, {wav.dtype}" if isinstance(wav, torch.Tensor) else type(wav).__name__
        raise ValueError(f"{name}: expected a float tensor [B, C, T] (C = 1 or 2 channels), got {got}")
    if 0 in wav.shape:
        raise ValueError(f"{name}: shape {tuple(wav.shape)}; expected [B, C, T] with B, C, T >= 1")
    if not bool(torch.isfinite(wav).all()):
        raise ValueError(f"{name}: holds NaN or infinite values")
    low, high = wav.min().item(), wav.max().item()
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(f"{name}: values span [{low:.3f}, {high:.3f}]; mgm audio is in [-1, 1]")


class EncodecTokenizer(PretrainedMixin, nn.Module):
    """EnCodec as an mgm tokenizer; the constructor builds a randomly initialised codec.

    Architecture (EnCodec's own arguments; the defaults are the small 8 kHz codec of ``small()``):
        sample_rate, channels: the audio the codec takes (mono or stereo).
        n_filters, dimension, ratios, lstm, causal, norm: SEANet encoder/decoder width, latent
            dimension D, down-sampling ratios (samples per frame = their product), LSTM layers
            (0 = none: LSTMs are slow on CPU), causal padding, and the convolutions' normalisation.
        bins, num_codebooks: codebook size (a power of two) and how many codebooks the residual
            quantiser holds (the most any bandwidth uses).
        normalize: divide each clip by its RMS before encoding (EnCodec 48 kHz); see decode().
        target_bandwidths: the bandwidths (kbps) the codec was trained for; None = one per number
            of codebooks, k * log2(bins) * frame_rate / 1000 for k = 1..num_codebooks.
    Tokens:
        bandwidth: kbps; picks K, the codebooks encode uses (None = all ``num_codebooks``).
        seconds: the clip length ``spec`` describes (N = ceil(seconds * sample_rate / downsample)).
            encode and decode take any length; ``spec_for_seconds(seconds)`` gives other lengths' specs.
        resample: resample inputs given at another ``sample_rate`` (else a ValueError).

    The codebooks of a fresh instance are filled by ``init_codebooks_`` (small random values), not
    left to EnCodec's k-means on the first training batch (zeros until then: every code 0).
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        channels: int = 1,
        n_filters: int = 16,
        dimension: int = 64,
        ratios: tuple[int, ...] = (8, 5, 4),
        lstm: int = 0,
        bins: int = 256,
        num_codebooks: int = 4,
        causal: bool = False,
        norm: str = "weight_norm",
        normalize: bool = False,
        target_bandwidths: tuple[float, ...] | None = None,
        bandwidth: float | None = None,
        seconds: float = 1.0,
        resample: bool = True,
    ):
        super().__init__()
        if channels not in (1, 2):
            raise ValueError(f"channels={channels}: EnCodec codecs are mono (1) or stereo (2)")
        if bins < 2 or bins & (bins - 1):
            raise ValueError(f"bins={bins}: EnCodec needs a power of two >= 2")
        if not seconds > 0:
            raise ValueError(f"seconds={seconds}: expected a positive clip length")
        self.config = dict(
            sample_rate=int(sample_rate), channels=int(channels), n_filters=int(n_filters), dimension=int(dimension),
            ratios=[int(r) for r in ratios], lstm=int(lstm), bins=int(bins), num_codebooks=int(num_codebooks),
            causal=bool(causal), norm=str(norm), normalize=bool(normalize),
            target_bandwidths=None if target_bandwidths is None else [float(b) for b in target_bandwidths],
            bandwidth=None if bandwidth is None else float(bandwidth), seconds=float(seconds), resample=bool(resample),
        )  # fmt: skip
        c = self.config
        with warnings.catch_warnings():  # EnCodec builds on torch's legacy (deprecated) weight_norm
            warnings.filterwarnings("ignore", r".*weight_norm.*deprecated", FutureWarning)
            build = dict(
                channels=c["channels"], dimension=c["dimension"], n_filters=c["n_filters"], ratios=c["ratios"],
                lstm=c["lstm"], norm=c["norm"], causal=c["causal"],
            )  # fmt: skip
            encoder, decoder = SEANetEncoder(**build), SEANetDecoder(**build)
        quantizer = ResidualVectorQuantizer(dimension=c["dimension"], n_q=c["num_codebooks"], bins=c["bins"])
        frame_rate = math.ceil(c["sample_rate"] / math.prod(c["ratios"]))
        per_codebook = quantizer.get_bandwidth_per_quantizer(frame_rate)
        bandwidths = c["target_bandwidths"] or [round(k * per_codebook, 6) for k in range(1, c["num_codebooks"] + 1)]
        # segment=None: a clip is encoded as one piece, so its codes are one [B, K, N] grid (EnCodec
        # 48 kHz cuts 1 s segments, each with its own volume scale, which codes cannot carry).
        self.model = EncodecModel(
            encoder, decoder, quantizer, bandwidths, c["sample_rate"], c["channels"], normalize=c["normalize"],
            segment=None,
        )  # fmt: skip
        self.sample_rate, self.channels, self.seconds, self.resample = (
            c["sample_rate"], c["channels"], c["seconds"], c["resample"]
        )  # fmt: skip
        self.downsample = int(math.prod(c["ratios"]))  # samples per frame
        self.frame_rate = int(self.model.frame_rate)  # frames per second: ceil(sample_rate / downsample)
        self.bandwidth = c["bandwidth"] if bandwidth is not None else round(c["num_codebooks"] * per_codebook, 6)
        self.num_codebooks = self._codebooks_for(bandwidth, per_codebook, bandwidths)
        self.bins = c["bins"]
        self.spec = self.spec_for_seconds(self.seconds)
        self.init_codebooks_()

    def _codebooks_for(self, bandwidth: float | None, per_codebook: float, bandwidths: list[float]) -> int:
        # Counted here, not by EnCodec's floor(bandwidth / per_codebook), which float rounding can
        # put one short (1.2 / 0.4 = 2.9999999999999996 -> 2 codebooks).
        if bandwidth is None:
            return self.config["num_codebooks"]
        if not any(math.isclose(bandwidth, b, rel_tol=1e-6) for b in bandwidths):
            raise ValueError(f"bandwidth={bandwidth}: this codec supports {bandwidths} kbps")
        k = round(bandwidth / per_codebook)
        if not (math.isclose(k * per_codebook, bandwidth, rel_tol=1e-6) and 1 <= k <= self.config["num_codebooks"]):
            raise ValueError(
                f"bandwidth={bandwidth}: not a whole number of codebooks of {per_codebook:g} kbps "
                f"(at most {self.config['num_codebooks']})"
            )
        return k

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def small(cls, **overrides) -> EncodecTokenizer:
        """The small 8 kHz codec for the embedded data, the demo and tests (the constructor defaults):
        hop 8 * 5 * 4 = 160 samples -> 50 frames/s, 4 codebooks of 256 codes (1.6 kbps), no LSTM,
        about 0.46 M parameters."""
        return cls(**overrides)

    @classmethod
    def pretrained(
        cls,
        name: str = "24khz",
        bandwidth: float = 6.0,
        repository: str | os.PathLike | None = None,
        seconds: float = 1.0,
        resample: bool = True,
        weights: bool = True,
    ) -> EncodecTokenizer:
        """Meta's EnCodec: ``"24khz"`` (mono, causal, 75 frames/s, 1.5/3/6/12/24 kbps = 2/4/8/16/32
        codebooks) or ``"48khz"`` (stereo, 150 frames/s, 3/6/12/24 kbps = 2/4/8/16 codebooks).

        EnCodec downloads the weights (``torch.hub`` cache); offline, put the checkpoint file in a
        folder and pass ``repository=`` that folder. ``weights=False`` gives the architecture with
        EnCodec's random initialisation (codebooks all zero until ``init_codebooks_``).

        The 48 kHz model normalises each clip to unit RMS before encoding. Here a clip is encoded
        whole (not in EnCodec's 1 s segments), so it has one scale, and the scale is dropped:
        decode returns every clip at ``NORMALISED_DECODE_RMS`` (-20 dBFS), not at its input level.
        """
        if name not in PRETRAINED:
            raise ValueError(f"name={name!r}: expected one of {sorted(PRETRAINED)}")
        entry = PRETRAINED[name]
        folder = None if repository is None or not weights else Path(repository)
        if folder is not None and not (folder / entry["checkpoint"]).is_file():
            raise FileNotFoundError(
                f"repository={str(folder)!r}: no {entry['checkpoint']} there (EnCodec's {name} checkpoint, "
                f"from https://dl.fbaipublicfiles.com/encodec/v0/{entry['checkpoint']})"
            )
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", r".*weight_norm.*deprecated", FutureWarning)
                model = entry["factory"](pretrained=weights, repository=folder)
        except Exception as e:  # a download: URLError, HTTPError, checksum RuntimeError, ...
            raise RuntimeError(
                f"could not fetch the pretrained EnCodec {name} weights ({type(e).__name__}: {e}); offline, "
                f"download {entry['checkpoint']} and pass repository=<the local folder holding it>"
            ) from e
        tokenizer = cls(**entry["architecture"], bandwidth=bandwidth, seconds=seconds, resample=resample)
        tokenizer.model.load_state_dict(model.state_dict())  # strict: the architecture table is right
        return tokenizer.eval()

    @torch.no_grad()
    def init_codebooks_(self, std: float = 0.01, generator: torch.Generator | None = None) -> EncodecTokenizer:
        """Fill every codebook with N(0, std^2) values and mark it initialised (in place).

        EnCodec starts its codebooks at zero and k-means them on the first training batch (minutes
        on CPU for the 24 kHz model); until then every code is 0. After this, codes vary and
        training never runs k-means. EMA state is consistent: ``embed_avg = embed * cluster_size``
        with ``cluster_size`` 1.
        """
        for layer in self.model.quantizer.vq.layers:
            book = layer._codebook
            book.embed.normal_(0.0, std, generator=generator)
            book.embed_avg.copy_(book.embed)
            book.cluster_size.fill_(1.0)
            book.inited.fill_(1.0)
        return self

    # -- tokens ---------------------------------------------------------------------------------

    def tokens_for_samples(self, num_samples: int) -> int:
        """Frames N of a clip of ``num_samples`` samples: ceil(T / downsample)."""
        return math.ceil(num_samples / self.downsample)

    def spec_for_tokens(self, num_tokens: int) -> TokenSpec:
        return TokenSpec((self.bins,) * self.num_codebooks, (int(num_tokens),))

    def spec_for_seconds(self, seconds: float) -> TokenSpec:
        """The TokenSpec of a ``seconds``-long clip (``spec`` is ``spec_for_seconds(self.seconds)``)."""
        return self.spec_for_tokens(self.tokens_for_samples(math.ceil(round(seconds * self.sample_rate, 6))))

    # -- audio in -------------------------------------------------------------------------------

    def check_audio(self, wav: torch.Tensor, sample_rate: int | None = None, name: str = "wav") -> None:
        """Raise ValueError unless ``wav`` is FloatTensor[B, C, T] (C 1 or 2, T >= 1) in [-1, 1] at a
        sample rate this tokenizer takes."""
        if isinstance(wav, torch.Tensor) and wav.dim() == 3 and wav.shape[1] not in (1, 2):
            raise ValueError(
                f"{name}: shape {tuple(wav.shape)}; expected [B, C, T] with B, T >= 1 and C = 1 (mono) or 2 "
                f"(stereo) channels (this codec is {'stereo' if self.channels == 2 else 'mono'})"
            )
        check_waveform(wav, name)
        if sample_rate is not None and sample_rate != self.sample_rate:
            if isinstance(sample_rate, bool) or not (isinstance(sample_rate, numbers.Integral) and sample_rate > 0):
                raise ValueError(f"sample_rate={sample_rate!r}: expected a positive integer (Hz)")
            if not self.resample:
                raise ValueError(
                    f"sample_rate={sample_rate}: this codec takes {self.sample_rate} Hz audio and was built with "
                    "resample=False; resample the input or build the tokenizer with resample=True"
                )

    def prepare(self, wav: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Check ``wav`` [B, C, T] and bring it to the codec's rate and channels: [B, channels, T'].

        Channel rule: mono into a stereo codec is duplicated onto both channels; stereo into a mono
        codec is averaged (the mid signal). Other rates are resampled (torchaudio's windowed-sinc
        ``resample``), giving T' = ceil(T * codec_rate / sample_rate) samples.
        """
        self.check_audio(wav, sample_rate)
        if sample_rate is not None and sample_rate != self.sample_rate:
            wav = torchaudio.functional.resample(wav, sample_rate, self.sample_rate)
        if wav.shape[1] == 1 and self.channels == 2:
            wav = wav.expand(-1, 2, -1)
        elif wav.shape[1] == 2 and self.channels == 1:
            wav = wav.mean(dim=1, keepdim=True)
        return wav

    # -- the tokenizer contract -----------------------------------------------------------------

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """wav FloatTensor[B, C, T] in [-1, 1] -> codes LongTensor[B, K, N], N = ceil(T' / downsample).

        ``sample_rate``: the rate of ``wav`` (None = the codec's); see ``prepare`` for the rate and
        channel rules. Any length is taken; the encoder pads the last frame.
        """
        wav = self.prepare(wav, sample_rate)
        # EncodecModel.encode (segment None: one frame) quantises with every codebook; residual
        # codes do not depend on the codebooks after them, so the first K are the codes at K.
        (codes, _scale), *rest = self.model.encode(wav)
        assert not rest, "segment=None gives one encoded frame"
        return codes[:, : self.num_codebooks].long()

    def check_codes(self, codes: torch.Tensor, name: str = "codes") -> None:
        """Raise ValueError unless ``codes`` is LongTensor[B, K', N] with 1 <= K' <= the codebooks the
        quantiser holds and values in [0, bins). Any N; K' below K decodes at a lower bandwidth."""
        if not isinstance(codes, torch.Tensor) or codes.dim() != 3:
            self.spec.check_codes(codes, name)  # raises, naming what it got
        held = self.config["num_codebooks"]
        if not 1 <= codes.shape[1] <= held:
            raise ValueError(
                f"{name}: shape {tuple(codes.shape)}; expected [B, K, N] with K = {self.num_codebooks} "
                f"(or 1 to {held} codebooks)"
            )
        TokenSpec((self.bins,) * codes.shape[1], (max(codes.shape[2], 1),)).check_codes(codes, name)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, K, N] -> wav FloatTensor[B, channels, N * downsample] in [-1, 1].

        The decoder's output is clamped to [-1, 1]. A normalising codec (48 kHz) returns every clip
        at ``NORMALISED_DECODE_RMS``, since the input's level is not in the codes (see ``pretrained``).
        """
        self.check_codes(codes)
        wav = self.decode_latents(self.model.quantizer.decode(codes.transpose(0, 1)))
        if self.model.normalize:
            wav = wav * NORMALISED_DECODE_RMS
        return wav.clamp(-1, 1)

    # -- pieces for training (gradients flow; no checks) ----------------------------------------

    def encode_latents(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, channels, T] at the codec's rate -> encoder output [B, D, N] (no normalisation)."""
        return self.model.encoder(wav)

    def quantize(self, latents: torch.Tensor, num_codebooks: int | None = None) -> QuantizedResult:
        """Residual-quantise latents [B, D, N] with the first ``num_codebooks`` (default K) codebooks.

        Returns EnCodec's QuantizedResult: ``quantized`` [B, D, N] (straight-through in training
        mode), ``codes`` [K, B, N] (EnCodec's layout), ``bandwidth`` and ``penalty`` (the mean
        commitment loss, non-zero in training mode only). In training mode the codebooks follow
        their assignments by EMA. Calls the quantizer with an explicit count, not a bandwidth (see
        ``_codebooks_for``).
        """
        k = num_codebooks or self.num_codebooks
        quantized, codes, losses = self.model.quantizer.vq(latents, n_q=k)
        per_codebook = self.model.quantizer.get_bandwidth_per_quantizer(self.frame_rate)
        return QuantizedResult(quantized, codes, torch.tensor(k * per_codebook), penalty=losses.mean())

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        """Quantised latents [B, D, N] -> wav [B, channels, N * downsample], unclamped."""
        return self.model.decoder(quantized)

    def token_mask(self, sample_mask: torch.Tensor) -> torch.Tensor:
        """Sample mask BoolTensor[B, T] (True = to regenerate) -> token mask BoolTensor[B, K, N].

        A frame is selected when any of its ``downsample`` samples is (the last frame may be short).
        """
        if not isinstance(sample_mask, torch.Tensor) or sample_mask.dim() != 2:
            raise ValueError(f"mask: expected [B, T], got {getattr(sample_mask, 'shape', type(sample_mask).__name__)}")
        frames = nn.functional.max_pool1d(
            sample_mask[:, None].float(), self.downsample, self.downsample, ceil_mode=True
        )  # (B, 1, N)
        return frames.bool().expand(-1, self.num_codebooks, -1)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, channels={self.channels}, downsample={self.downsample}, "
            f"num_codebooks={self.num_codebooks}, bins={self.bins}, bandwidth={self.bandwidth:g}, "
            f"seconds={self.seconds:g}"
        )
