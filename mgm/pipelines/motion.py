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
from pathlib import Path

import torch

from mgm.data.motion_features import FPS, check_features, recover_joints
from mgm.decoding import DecodeResult
from mgm.models.text import check_captions
from mgm.pipelines.base import MaskedPipeline
from mgm.pipelines.captions import CaptionConditioning
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
        return self.tokenizer.frames_for(self.max_tokens) / FPS

    def tokens_for(self, seconds: float | None) -> int:
        """Token positions for a clip of ``seconds`` (None = the longest the model takes)."""
        if seconds is None:
            return self.max_tokens
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"seconds={seconds!r}: expected a positive number")
        n = round(seconds * FPS / self.tokenizer.downsample)
        if n < 1 or n > self.max_tokens:
            shortest = self.tokenizer.downsample / FPS
            raise ValueError(
                f"seconds={seconds}: expected {shortest:g} to {self.max_seconds:g} s (1 to {self.max_tokens} tokens)"
            )
        return n

    # -- generation -----------------------------------------------------------------------------

    def generate(self, texts, seconds: float | None = None, num: int | None = None, seed: int | None = 0, **kw):
        """Motions for ``texts`` (one caption, or a list: one motion each; ``num`` repeats one caption)
        -> raw features FloatTensor[B, 4N, 263]. ``kw``: decode overrides, ``steps_per_second``,
        ``batch_size``, ``progress``."""
        return self.features(self.generate_codes(texts, seconds, num, seed, **kw).codes)

    def generate_codes(self, texts, seconds=None, num=None, seed=0, steps_per_second=None, **kw) -> DecodeResult:
        """As ``generate``; ``steps_per_second``: scale the decoding steps with the length
        (ceil(seconds x rate), at least 1) instead of the settings' fixed ``num_steps``."""
        texts = check_captions(texts)
        num = len(texts) if num is None else num
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"num={num!r}: expected an integer >= 1")
        n = self.tokens_for(seconds)
        if steps_per_second is not None:
            if (
                isinstance(steps_per_second, bool)
                or not isinstance(steps_per_second, (int, float))
                or steps_per_second <= 0
            ):
                raise ValueError(f"steps_per_second={steps_per_second!r}: expected a positive number")
            seconds_decoded = self.tokenizer.frames_for(n) / FPS
            kw["num_steps"] = max(1, math.ceil(seconds_decoded * steps_per_second))
        settings, batch_size, progress = self._settings(kw)
        return self.decode_codes(num, None, settings, seed, batch_size=batch_size, progress=progress,
                                 spec=self.tokenizer.spec_for_frames(self.tokenizer.frames_for(n)),
                                 condition=self.condition(texts, num))  # fmt: skip

    # -- editing --------------------------------------------------------------------------------

    def inbetween(self, motion, keep_start_s: float, keep_end_s: float, texts, seed=0, **kw) -> torch.Tensor:
        """Keep the first ``keep_start_s`` and last ``keep_end_s`` seconds of ``motion`` [B, F, 263] and
        generate the frames between them for ``texts`` -> features [B, 4N, 263]."""
        return self.features(self.inbetween_codes(motion, keep_start_s, keep_end_s, texts, seed, **kw).codes)

    def inbetween_codes(self, motion, keep_start_s, keep_end_s, texts, seed=0, **kw) -> DecodeResult:
        codes = self.encode(motion)
        n = codes.shape[-1]
        first, last = self._tokens_at(keep_start_s, "keep_start_s"), self._tokens_at(keep_end_s, "keep_end_s")
        if first + last >= n:
            raise ValueError(
                f"keep_start_s={keep_start_s}, keep_end_s={keep_end_s}: nothing left to generate in {n} tokens"
            )
        editable = torch.zeros_like(codes, dtype=torch.bool)
        editable[..., first : n - last] = True
        return self._edit(codes, editable, texts, seed, kw)

    def complete(self, motion, texts, seconds: float | None = None, keep: str = "prefix", seed=0, **kw) -> torch.Tensor:
        """Extend ``motion`` (the clip's start, ``keep="prefix"``, or its end, ``"suffix"``) to
        ``seconds`` -> features [B, 4N, 263]; the given part's tokens are kept."""
        return self.features(self.complete_codes(motion, texts, seconds, keep, seed, **kw).codes)

    def complete_codes(self, motion, texts, seconds=None, keep="prefix", seed=0, **kw) -> DecodeResult:
        if keep not in ("prefix", "suffix"):
            raise ValueError(f"keep={keep!r}: expected 'prefix' or 'suffix'")
        given = self.encode(motion)
        n, g = self.tokens_for(seconds), given.shape[-1]
        if g >= n:
            raise ValueError(f"seconds={seconds}: the given motion already has {g} of the {n} tokens asked for")
        codes = torch.full((given.shape[0], given.shape[1], n), 0, dtype=torch.long, device=given.device)
        editable = torch.ones_like(codes, dtype=torch.bool)
        where = slice(0, g) if keep == "prefix" else slice(n - g, n)
        codes[..., where], editable[..., where] = given, False
        return self._edit(codes, editable, texts, seed, kw)

    def edit_part(self, motion, texts, part: str = "upper", seed=0, **kw) -> torch.Tensor:
        """Regenerate one body part of ``motion`` for ``texts`` ("upper": torso and arms; "lower":
        legs, root trajectory and foot contacts) while the other part's features are kept exactly."""
        return self.features(self.edit_part_codes(motion, texts, part, seed, **kw).codes)

    def edit_part_codes(self, motion, texts, part="upper", seed=0, **kw) -> DecodeResult:
        index = self.tokenizer.part_index(part)
        codes = self.encode(motion)
        editable = torch.zeros_like(codes, dtype=torch.bool)
        editable[:, index] = True
        return self._edit(codes, editable, texts, seed, kw)

    def long_sequence(self, texts, seconds_each: float | list[float], seed=0, **kw) -> torch.Tensor:
        """One motion through several captions: a segment per caption, joined, each junction's
        2 x JUNCTION_TOKENS token positions re-decoded with both neighbours' tokens in view (under
        the later caption) -> features [1, sum of the segments' frames, 263]."""
        texts = check_captions(texts)
        seconds = list(seconds_each) if isinstance(seconds_each, (list, tuple)) else [seconds_each] * len(texts)
        if len(seconds) != len(texts):
            raise ValueError(f"seconds_each: {len(seconds)} lengths for {len(texts)} captions")
        segments = [
            self.generate_codes([t], s, seed=None if seed is None else seed + i, **dict(kw)).codes
            for i, (t, s) in enumerate(zip(texts, seconds))
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
            redone = self._edit(window, editable, [texts[i]], None if seed is None else seed + 1000 + i, dict(kw)).codes
            codes = torch.cat([codes[..., :lo], redone, codes[..., hi:]], -1)
        return self.features(codes)

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
        """codes [B, 2, N] -> raw features [B, 4N, 263]."""
        return self.tokenizer.denormalise(self.tokenizer.decode(codes))

    @staticmethod
    def joints(features: torch.Tensor) -> torch.Tensor:
        """Raw features [..., F, 263] -> joint positions [..., F, 22, 3] (metres, Y up)."""
        return recover_joints(features)

    # -- helpers --------------------------------------------------------------------------------

    def _settings(self, kw: dict):
        batch_size, progress = kw.pop("batch_size", 64), kw.pop("progress", False)
        return self.settings.update(**kw), batch_size, progress

    def _tokens_at(self, seconds: float, name: str) -> int:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"{name}={seconds!r}: expected a number of seconds >= 0")
        return round(seconds * FPS / self.tokenizer.downsample)

    def _edit(self, codes, editable, texts, seed, kw) -> DecodeResult:
        settings, batch_size, progress = self._settings(kw)
        num, n = codes.shape[0], codes.shape[-1]
        return self.decode_codes(num, None, settings, seed, init_codes=codes, editable=editable,
                                 batch_size=batch_size, progress=progress,
                                 spec=self.tokenizer.spec_for_frames(self.tokenizer.frames_for(n)),
                                 condition=self.condition(texts, num))  # fmt: skip


__all__ = ["DEFAULT_MOTION_PIPELINE", "MotionPipeline"]
