"""AudioPipeline: an EnCodec tokenizer + a multi-codebook MaskedTransformer + decode defaults.

Audio is FloatTensor[B, C, T] in [-1, 1] at the codec's sample rate (other rates are resampled
by the tokenizer). Tokens are codes[B, K, N]: K residual-VQ codebooks per frame, N frames. The
transformer takes clips of up to its N frames; shorter clips use its first positions. Editing
(continuation, infill) keeps the given frames' tokens bit-identical and decodes the rest.

Conditions: class labels, and for a transformer with cross-attention (``context_dim``) captions
through the pipeline's ``text_encoder`` (``texts=``: one caption, or one per clip), e.g. a model
trained on an audio folder with ``.txt`` captions. Without ``texts`` the caption context is null.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mgm.checks import check_number
from mgm.decoding import DecodeResult
from mgm.pipelines.base import MaskedPipeline
from mgm.pipelines.captions import CaptionConditioning
from mgm.tokenizers.audio_encodec import EncodecTokenizer
from mgm.tokens import TokenSpec

DEFAULT_AUDIO_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "audio_tones"
DEFAULT_NUM_CLIPS = 4


class AudioPipeline(CaptionConditioning, MaskedPipeline):
    tokenizer_class = EncodecTokenizer

    default_folder = DEFAULT_AUDIO_PIPELINE
    default_recipe = "pretrained-audio"
    any_length = True

    @property
    def sample_rate(self) -> int:
        return self.tokenizer.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.tokenizer.sample_rate / self.tokenizer.downsample

    @property
    def max_frames(self) -> int:
        return self.spec.num_positions

    @property
    def max_seconds(self) -> float:
        return self.max_frames / self.frame_rate

    def tokens_for_seconds(self, seconds: float | None, name: str = "seconds") -> int:
        """Token frames covering ``seconds`` (None = the longest clip the model takes)."""
        if seconds is None:
            return self.max_frames
        check_number(seconds, name, above=0)
        frames = math.ceil(round(seconds * self.frame_rate, 6))
        if frames < 1 or seconds * self.frame_rate < 1 - 1e-6:
            raise ValueError(f"{name}={seconds!r}: shorter than one frame ({1 / self.frame_rate:g} s)")
        if frames > self.max_frames:
            raise ValueError(f"{name}={seconds}: this model takes clips of at most {self.max_seconds:g} s")
        return frames

    def spec_for_tokens(self, num_tokens: int) -> TokenSpec:
        return TokenSpec(self.spec.codebook_sizes, (num_tokens,))

    # -- generation -----------------------------------------------------------------------------

    def generate(self, num: int = DEFAULT_NUM_CLIPS, *, labels=None, texts=None, seconds: float | None = None,
                 **options):  # fmt: skip
        """Sample ``num`` clips -> FloatTensor[num, C, T] with T = ceil(seconds * rate) samples.

        ``labels``: class ids or names (cycled); ``texts``: captions for a text-conditioned model
        (one, or one per clip); ``seconds``: the length (default the longest the model takes).
        ``options``: seed, batch_size, progress, output_type ("pt", "np"), callback and the decode
        options (method, plan, steps, guidance_scale, temperature, ...).
        """
        call, settings = self.split_options(options)
        result = self._generate(num, labels, texts, seconds, call, settings)
        return self.convert(self._decode_audio(result.codes, seconds), call.output_type)

    def generate_codes(self, num: int = DEFAULT_NUM_CLIPS, *, labels=None, texts=None,
                       seconds: float | None = None, **options) -> DecodeResult:  # fmt: skip
        call, settings = self.split_options(options)
        return self._generate(num, labels, texts, seconds, call, settings)

    def _generate(self, num, labels, texts, seconds, call, settings) -> DecodeResult:
        num = self.check_num(num)
        frames = self.tokens_for_seconds(seconds)
        labels = self.resolve_labels(num, labels, call.first_index)
        return self.decode_codes(
            num, call, settings, condition=self.condition(texts, num, labels), spec=self.spec_for_tokens(frames)
        )

    # -- editing --------------------------------------------------------------------------------

    def continue_(self, prompt: torch.Tensor, seconds: float | None = None, *, labels=None, texts=None,
                  sample_rate: int | None = None, **options) -> torch.Tensor:  # fmt: skip
        """Continue ``prompt`` [B, C, T] (or [C, T]) to ``seconds`` in all (default: the longest clip).

        The prompt's tokens are kept; the frames after it are decoded. Returns [B, C, T_total].
        """
        call, settings = self.split_options(options)
        result = self._continue(prompt, seconds, labels, texts, sample_rate, call, settings)
        return self.convert(self._decode_audio(result.codes, seconds), call.output_type)

    def continue_codes(self, prompt, seconds=None, *, labels=None, texts=None, sample_rate=None,
                       **options) -> DecodeResult:  # fmt: skip
        call, settings = self.split_options(options)
        return self._continue(prompt, seconds, labels, texts, sample_rate, call, settings)

    def _continue(self, prompt, seconds, labels, texts, sample_rate, call, settings) -> DecodeResult:
        frames = self.tokens_for_seconds(seconds)
        prompt_codes = self._encode(prompt, sample_rate, "prompt")
        b, k, given = prompt_codes.shape
        if given >= frames:
            raise ValueError(
                f"prompt: {given} frames ({given / self.frame_rate:g} s) leave nothing to continue within "
                f"seconds={seconds if seconds is not None else self.max_seconds:g}"
            )
        init = torch.cat([prompt_codes, self.spec_for_tokens(frames - given).full_mask(b, prompt_codes.device)], dim=-1)
        editable = torch.zeros(b, k, frames, dtype=torch.bool, device=init.device)
        editable[..., given:] = True
        return self._edit(init, editable, labels, texts, call, settings)

    def infill(self, audio: torch.Tensor, start_s: float, end_s: float, *, labels=None, texts=None,
               sample_rate: int | None = None, **options) -> torch.Tensor:  # fmt: skip
        """Re-decode the span [start_s, end_s) of ``audio`` [B, C, T]; every other frame's tokens are kept.

        Returns the decoded clip [B, C, N * downsample] (the whole clip passes through the codec).
        """
        call, settings = self.split_options(options)
        result = self._infill(audio, start_s, end_s, labels, texts, sample_rate, call, settings)
        return self.convert(self._decode_audio(result.codes), call.output_type)

    def infill_codes(self, audio, start_s, end_s, *, labels=None, texts=None, sample_rate=None,
                     **options) -> DecodeResult:  # fmt: skip
        call, settings = self.split_options(options)
        return self._infill(audio, start_s, end_s, labels, texts, sample_rate, call, settings)

    def _infill(self, audio, start_s, end_s, labels, texts, sample_rate, call, settings) -> DecodeResult:
        check_number(start_s, "start_s", minimum=0)
        check_number(end_s, "end_s")
        if not start_s < end_s:
            raise ValueError(f"span [{start_s}, {end_s}): expected 0 <= start_s < end_s (seconds)")
        codes = self._encode(audio, sample_rate, "audio")
        b, k, n = codes.shape
        length = n / self.frame_rate
        if end_s > length + 1e-9:
            raise ValueError(f"span [{start_s}, {end_s}) s lies outside the clip, which is {length:g} s long")
        first, last = math.floor(start_s * self.frame_rate), math.ceil(end_s * self.frame_rate)
        editable = torch.zeros(b, k, n, dtype=torch.bool, device=codes.device)
        editable[..., first:last] = True
        return self._edit(codes, editable, labels, texts, call, settings)

    # -- helpers --------------------------------------------------------------------------------

    def _encode(self, audio: torch.Tensor, sample_rate: int | None, name: str) -> torch.Tensor:
        if isinstance(audio, torch.Tensor) and audio.dim() == 2:
            audio = audio[None]
        self.tokenizer.check_audio(audio, sample_rate, name)
        rate = sample_rate or self.sample_rate
        if audio.shape[-1] * self.frame_rate / rate < 1:
            raise ValueError(f"{name}: {audio.shape[-1]} samples is shorter than one frame ({1 / self.frame_rate:g} s)")
        codes = self.tokenizer.encode(audio.to(self.device), sample_rate=sample_rate)
        if codes.shape[-1] > self.max_frames:
            raise ValueError(
                f"{name}: {codes.shape[-1] / self.frame_rate:g} s is longer than the model's {self.max_seconds:g} s"
            )
        return codes

    def _edit(self, init: torch.Tensor, editable: torch.Tensor, labels, texts, call, settings) -> DecodeResult:
        num = init.shape[0]
        labels = self.resolve_labels(num, labels, call.first_index)
        return self.decode_codes(
            num, call, settings, condition=self.condition(texts, num, labels), init_codes=init, editable=editable,
            spec=self.spec_for_tokens(init.shape[-1]),
        )  # fmt: skip

    def _decode_audio(self, codes: torch.Tensor, seconds: float | None = None) -> torch.Tensor:
        audio = self.decode_tokens(codes)
        if seconds is not None:
            audio = audio[..., : math.ceil(seconds * self.sample_rate)]
        return audio


__all__ = ["AudioPipeline", "DEFAULT_AUDIO_PIPELINE"]
