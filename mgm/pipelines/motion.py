"""MotionPipeline: a part-aware MotionVQ + a text-conditioned MaskedTransformer + a caption encoder.

Motion is HumanML3D features FloatTensor[B, F, 263] (raw, not normalised) at 20 fps; joints come
from ``mgm.data.motion_features.recover_joints``. Tokens are codes[B, 2, N]: codebook 0 the lower
body with the root trajectory, codebook 1 the upper body, 4 frames per token position. The
transformer takes clips of up to its N positions (Motions7: 30 = 6 s); the length is chosen by
the number of positions decoded (the model was trained on every length it accepts).

Editing places mask tokens and keeps the others bit-identical: in-betweening and completion by
time, body-part editing by codebook (each part's decoder sees only its own tokens, so the kept
part's features come back exactly). ``long_sequence`` decodes one segment per caption, joins the
tokens and re-decodes the tokens around each junction with both segments' context.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch

from mgm.checks import check_number
from mgm.data.motion_features import FPS, check_features, recover_joints
from mgm.decoding import DecodeResult
from mgm.models.text import check_captions
from mgm.pipelines.base import MaskedPipeline
from mgm.pipelines.captions import CaptionConditioning
from mgm.pipelines.settings import MAX_SEED
from mgm.tokenizers.motion_vq import MotionVQ

DEFAULT_MOTION_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "motion_motions7"
JUNCTION_TOKENS = 2  # long_sequence re-decodes this many token positions each side of a junction


class MotionPipeline(CaptionConditioning, MaskedPipeline):
    tokenizer_class = MotionVQ

    default_folder = DEFAULT_MOTION_PIPELINE
    default_recipe = "pretrained-motion"
    any_length = True

    @property
    def max_tokens(self) -> int:
        return self.spec.num_positions

    @property
    def max_seconds(self) -> float:
        return self.tokenizer.frames_for_tokens(self.max_tokens) / FPS

    def tokens_for_seconds(self, seconds: float | None) -> int:
        """Token positions for a clip of ``seconds`` (None = the longest the model takes)."""
        if seconds is None:
            return self.max_tokens
        check_number(seconds, "seconds", above=0)
        n = round(seconds * FPS / self.tokenizer.downsample)
        if n < 1 or n > self.max_tokens:
            shortest = self.tokenizer.downsample / FPS
            raise ValueError(
                f"seconds={seconds}: expected {shortest:g} to {self.max_seconds:g} s (1 to {self.max_tokens} tokens)"
            )
        return n

    # -- generation -----------------------------------------------------------------------------

    def generate(self, num: int | None = None, *, texts, seconds: float | None = None,
                 steps_per_second: float | None = None, **options):  # fmt: skip
        """Motions for ``texts`` (one caption, or a list: one motion each; ``num`` repeats one
        caption) -> raw features FloatTensor[B, 4N, 263] (or numpy with ``output_type="np"``).

        ``steps_per_second``: scale the decoding steps with the length (ceil(seconds x rate), at
        least 1) instead of the settings' fixed ``num_steps``. ``options``: seed, batch_size,
        progress, output_type, callback and the decode options.
        """
        call, settings = self.split_options(options)
        result = self._generate(num, texts, seconds, steps_per_second, call, settings)
        return self.convert(self.features(result.codes), call.output_type)

    def generate_codes(self, num: int | None = None, *, texts, seconds: float | None = None,
                       steps_per_second: float | None = None, **options) -> DecodeResult:  # fmt: skip
        call, settings = self.split_options(options)
        return self._generate(num, texts, seconds, steps_per_second, call, settings)

    def _generate(self, num, texts, seconds, steps_per_second, call, settings) -> DecodeResult:
        texts = check_captions(texts)
        num = self.check_num(len(texts) if num is None else num)
        if len(texts) not in (1, num):
            raise ValueError(f"texts: {len(texts)} captions for num={num} motions; expected 1 or {num}")
        n = self.tokens_for_seconds(seconds)
        if steps_per_second is not None:
            check_number(steps_per_second, "steps_per_second", above=0)
            seconds_decoded = self.tokenizer.frames_for_tokens(n) / FPS
            settings = settings.update(num_steps=max(1, math.ceil(seconds_decoded * steps_per_second)))
        spec = self.tokenizer.spec_for_frames(self.tokenizer.frames_for_tokens(n))
        return self.decode_codes(num, call, settings, condition=self.condition(texts, num), spec=spec)

    # -- editing --------------------------------------------------------------------------------

    def inbetween(self, motion, keep_start_s: float, keep_end_s: float, *, texts, **options):
        """Keep the first ``keep_start_s`` and last ``keep_end_s`` seconds of ``motion`` [B, F, 263] and
        generate the frames between them for ``texts`` -> features [B, 4N, 263]."""
        return self._edited(self.inbetween_codes, motion, keep_start_s, keep_end_s, texts=texts, **options)

    def inbetween_codes(self, motion, keep_start_s, keep_end_s, *, texts, **options) -> DecodeResult:
        call, settings = self.split_options(options)
        codes = self.encode(motion)
        n = codes.shape[-1]
        first, last = self._tokens_at(keep_start_s, "keep_start_s"), self._tokens_at(keep_end_s, "keep_end_s")
        if first + last >= n:
            raise ValueError(
                f"keep_start_s={keep_start_s}, keep_end_s={keep_end_s}: nothing left to generate in {n} tokens"
            )
        editable = torch.zeros_like(codes, dtype=torch.bool)
        editable[..., first : n - last] = True
        return self._edit(codes, editable, texts, call, settings)

    def complete(self, motion, seconds: float | None = None, keep: str = "prefix", *, texts, **options):
        """Extend ``motion`` (the clip's start, ``keep="prefix"``, or its end, ``"suffix"``) to
        ``seconds`` -> features [B, 4N, 263]; the given part's tokens are kept."""
        return self._edited(self.complete_codes, motion, seconds, keep, texts=texts, **options)

    def complete_codes(self, motion, seconds=None, keep="prefix", *, texts, **options) -> DecodeResult:
        if keep not in ("prefix", "suffix"):
            raise ValueError(f"keep={keep!r}: expected 'prefix' or 'suffix'")
        call, settings = self.split_options(options)
        given = self.encode(motion)
        n, g = self.tokens_for_seconds(seconds), given.shape[-1]
        if g >= n:
            raise ValueError(f"seconds={seconds}: the given motion already has {g} of the {n} tokens asked for")
        codes = torch.full((given.shape[0], given.shape[1], n), 0, dtype=torch.long, device=given.device)
        editable = torch.ones_like(codes, dtype=torch.bool)
        where = slice(0, g) if keep == "prefix" else slice(n - g, n)
        codes[..., where], editable[..., where] = given, False
        return self._edit(codes, editable, texts, call, settings)

    def edit_part(self, motion, part: str = "upper", *, texts, **options):
        """Regenerate one body part of ``motion`` for ``texts`` ("upper": torso and arms; "lower":
        legs, root trajectory and foot contacts) while the other part's features are kept exactly."""
        return self._edited(self.edit_part_codes, motion, part, texts=texts, **options)

    def edit_part_codes(self, motion, part="upper", *, texts, **options) -> DecodeResult:
        call, settings = self.split_options(options)
        index = self.tokenizer.part_index(part)
        codes = self.encode(motion)
        editable = torch.zeros_like(codes, dtype=torch.bool)
        editable[:, index] = True
        return self._edit(codes, editable, texts, call, settings)

    def long_sequence(self, texts, seconds_each: float | list[float], **options):
        """One motion through several captions: a segment per caption, joined, each junction's
        2 x JUNCTION_TOKENS token positions re-decoded with both neighbours' tokens in view (under
        the later caption) -> features [1, sum of the segments' frames, 263]."""
        call, settings = self.split_options(options)
        texts = check_captions(texts)
        seconds = list(seconds_each) if isinstance(seconds_each, (list, tuple)) else [seconds_each] * len(texts)
        if len(seconds) != len(texts):
            raise ValueError(f"seconds_each: {len(seconds)} lengths for {len(texts)} captions")
        seeded = lambda offset: replace(call, seed=None if call.seed is None else (call.seed + offset) % MAX_SEED)  # noqa: E731
        segments = [
            self._generate(None, [text], length, None, seeded(i), settings).codes
            for i, (text, length) in enumerate(zip(texts, seconds))
        ]
        codes = segments[0]
        for i, segment in enumerate(segments[1:], start=1):
            joint = codes.shape[-1]
            codes = torch.cat([codes, segment], -1)
            half = self.max_tokens // 2
            lo, hi = max(0, joint - half), min(codes.shape[-1], joint + half)
            window = codes[..., lo:hi]
            editable = torch.zeros_like(window, dtype=torch.bool)
            editable[..., max(0, joint - lo - JUNCTION_TOKENS) : joint - lo + JUNCTION_TOKENS] = True
            redone = self._edit(window, editable, [texts[i]], seeded(1000 + i), settings).codes
            codes = torch.cat([codes[..., :lo], redone, codes[..., hi:]], -1)
        return self.convert(self.features(codes), call.output_type)

    # -- tokens <-> features --------------------------------------------------------------------

    def encode(self, motion: torch.Tensor) -> torch.Tensor:
        """Raw features [B, F, 263] (or [F, 263]) -> codes [B, 2, F // 4], checked against the model."""
        if isinstance(motion, torch.Tensor) and motion.dim() == 2:
            motion = motion[None]
        check_features(motion, "motion")
        if motion.dim() != 3 or motion.shape[1] < self.tokenizer.downsample:
            raise ValueError(
                f"motion: shape {tuple(motion.shape)}; expected [B, F >= {self.tokenizer.downsample}, 263]"
            )
        codes = self.tokenizer.encode(self.tokenizer.normalise(motion.to(self.device)))
        if codes.shape[-1] > self.max_tokens:
            raise ValueError(
                f"motion: {codes.shape[-1]} tokens; the model takes at most {self.max_tokens} ({self.max_seconds:g} s)"
            )
        return codes

    @torch.no_grad()
    def features(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, 2, N] -> raw features [B, 4N, 263] (decoded a chunk of clips at a time)."""
        return self.tokenizer.denormalise(self.decode_tokens(codes))

    @staticmethod
    def joints(features: torch.Tensor) -> torch.Tensor:
        """Raw features [..., F, 263] -> joint positions [..., F, 22, 3] (metres, Y up)."""
        return recover_joints(features)

    # -- helpers --------------------------------------------------------------------------------

    def _edited(self, codes_method, *args, **options):
        """An editing method's features: ``codes_method(*args, **options)`` decoded to features."""
        output_type = options.get("output_type", "pt")
        return self.convert(self.features(codes_method(*args, **options).codes), output_type)

    def _tokens_at(self, seconds: float, name: str) -> int:
        check_number(seconds, name, minimum=0)
        return round(seconds * FPS / self.tokenizer.downsample)

    def _edit(self, codes, editable, texts, call, settings) -> DecodeResult:
        num, n = codes.shape[0], codes.shape[-1]
        spec = self.tokenizer.spec_for_frames(self.tokenizer.frames_for_tokens(n))
        return self.decode_codes(num, call, settings, condition=self.condition(texts, num), init_codes=codes,
                                 editable=editable, spec=spec)  # fmt: skip


__all__ = ["DEFAULT_MOTION_PIPELINE", "MotionPipeline"]
