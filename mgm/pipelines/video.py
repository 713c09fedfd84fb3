"""VideoPipeline: a per-frame VQ (``VideoVQ``) + a MaskedTransformer over (T, h, w) tokens.

Clips are FloatTensor[B, T, 3, S, S] in [0, 1] (T the model's frame count). ``generate`` samples
whole clips; ``predict`` continues given first frames (their tokens kept, the following frames
decoded; past T frames in overlapping windows of T); ``interpolate`` fills the frames between
given first and last frames. The given frames' pixels are returned as they were given. Every
method takes ``labels=`` and the options of ``mgm.pipelines.base`` (seed, batch_size, progress,
output_type "pt" or "np" [B, T, S, S, 3], callback, and the decode options of any masked method).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from mgm.checks import check_int
from mgm.decoding import DecodeResult
from mgm.pipelines.base import DECODE_CHUNK, MaskedPipeline
from mgm.seeds import mix_seed
from mgm.tokenizers.video_vq import VideoVQ

DEFAULT_VIDEO_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "video_moving_shapes"
DEFAULT_NUM_CLIPS = 8


class VideoPipeline(MaskedPipeline):
    tokenizer_class = VideoVQ
    output_types = ("pt", "np")

    default_folder = DEFAULT_VIDEO_PIPELINE
    default_recipe = "pretrained-video"

    @property
    def num_frames(self) -> int:
        return self.tokenizer.num_frames

    @property
    def image_size(self) -> int:
        return self.tokenizer.image_size

    def generate(self, num: int = DEFAULT_NUM_CLIPS, *, labels=None, **options):
        """Sample ``num`` clips -> FloatTensor[num, T, 3, S, S] in [0, 1]."""
        call, settings = self.split_options(options)
        result = self._generate(num, labels, call, settings)
        return self.convert(self.decode_tokens(result.codes), call.output_type)

    def generate_codes(self, num: int = DEFAULT_NUM_CLIPS, *, labels=None, **options) -> DecodeResult:
        """As ``generate``, but the DecodeResult (codes [num, 1, T * h * w], nfe, trace)."""
        call, settings = self.split_options(options)
        return self._generate(num, labels, call, settings)

    def _generate(self, num, labels, call, settings) -> DecodeResult:
        num = self.check_num(num)
        return self.decode_codes(num, call, settings, labels=self.resolve_labels(num, labels, call.first_index))

    # -- prediction and interpolation -----------------------------------------------------------

    def predict(self, frames: torch.Tensor, num_future: int | None = None, *, labels=None, **options):
        """Continue the first frames ``frames`` [B, F, 3, S, S] (or [F, 3, S, S]) by ``num_future``
        frames (default T - F) -> [B, F + num_future, 3, S, S]: the given frames, then the predicted
        ones. The given frames' tokens are kept. Within the model's T frames all T - F later frames
        are decoded at once; a longer rollout goes on in windows of T frames, each keeping the last
        ``rollout_context(F)`` frames' tokens of the one before and decoding the rest."""
        call, settings = self.split_options(options)
        frames, num_future = self._check_predict(frames, num_future)
        result = self._predict(frames, num_future, labels, call, settings)
        clips = self.decode_tokens_of_frames(result.codes)[:, : frames.shape[1] + num_future]
        clips[:, : frames.shape[1]] = frames.to(clips.device)
        return self.convert(clips, call.output_type)

    def predict_codes(self, frames: torch.Tensor, num_future: int | None = None, *, labels=None,
                      **options) -> DecodeResult:  # fmt: skip
        """As ``predict``, but the DecodeResult: codes [B, 1, max(T, F + num_future) * h * w] (the
        whole T-frame grid when the prediction fits in it); passes summed over the windows."""
        call, settings = self.split_options(options)
        frames, num_future = self._check_predict(frames, num_future)
        return self._predict(frames, num_future, labels, call, settings)

    def rollout_context(self, given: int) -> int:
        """Frames kept from one window to the next in a rollout past T frames: the given count, at
        least half the window (so motion stays readable), at most T - 1."""
        return min(max(given, self.num_frames // 2), self.num_frames - 1)

    def _predict(self, frames, num_future, labels, call, settings) -> DecodeResult:
        first = self._edit([frames], [], labels, call, settings)
        per_frame, t = self.spec.num_positions // self.num_frames, self.num_frames
        total, context = frames.shape[1] + num_future, self.rollout_context(frames.shape[1])
        codes, results = first.codes, [first]
        while codes.shape[-1] < total * per_frame:
            # The next window: the last `context` frames' tokens kept, the frames after them decoded,
            # each window with its own seeds (derived from the call's seed and the window's index).
            num = codes.shape[0]
            init = torch.cat([codes[..., -context * per_frame :], self.spec.full_mask(num, codes.device)
                              [..., context * per_frame :]], dim=-1)  # fmt: skip
            editable = torch.zeros(t, dtype=torch.bool)
            editable[context:] = True
            editable = editable.repeat_interleave(per_frame)[None].expand(num, 1, -1).to(codes.device)
            seed = None if call.seed is None else mix_seed(call.seed, len(results))
            labels_now = self._labels_of(num, labels, call)
            window = self.decode_codes(num, replace(call, seed=seed), settings, labels=labels_now, init_codes=init,
                                       editable=editable)  # fmt: skip
            codes = torch.cat([codes, window.codes[..., context * per_frame :]], dim=-1)
            results.append(window)
        if len(results) == 1:
            return first
        passes = sum(r.passes_per_sample() for r in results)
        return DecodeResult(codes=codes[..., : total * per_frame], nfe=sum(r.nfe for r in results),
                            compute=sum(r.compute for r in results), nfe_per_sample=passes)  # fmt: skip

    def decode_tokens_of_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, 1, F * h * w] of any number F of frames -> clips [B, F, 3, S, S]."""
        b, per_frame = codes.shape[0], self.spec.num_positions // self.num_frames
        frames = self.tokenizer.frames
        images = torch.cat([frames.decode(chunk) for chunk in codes.reshape(-1, 1, per_frame).split(DECODE_CHUNK)])
        return images.view(b, -1, *images.shape[1:])

    def interpolate(self, start: torch.Tensor, end: torch.Tensor, *, labels=None, **options):
        """Fill the frames between ``start`` [B, Fa, 3, S, S] (the first Fa frames; [B, 3, S, S] or
        [3, S, S] for one) and ``end`` (the last Fb frames) -> clips [B, T, 3, S, S]: ``start``,
        T - Fa - Fb decoded frames, ``end``. The given frames' tokens are kept."""
        call, settings = self.split_options(options)
        start, end = self._check_ends(start, end)
        result = self._edit([start], [end], labels, call, settings)
        clips = self.decode_tokens(result.codes)
        clips[:, : start.shape[1]] = start.to(clips.device)
        clips[:, clips.shape[1] - end.shape[1] :] = end.to(clips.device)
        return self.convert(clips, call.output_type)

    def interpolate_codes(self, start: torch.Tensor, end: torch.Tensor, *, labels=None, **options) -> DecodeResult:
        call, settings = self.split_options(options)
        start, end = self._check_ends(start, end)
        return self._edit([start], [end], labels, call, settings)

    def edit_codes(self, videos: torch.Tensor, editable: torch.Tensor, *, labels=None, **options) -> DecodeResult:
        """Encode ``videos`` [B, T, 3, S, S], regenerate the tokens in ``editable`` (BoolTensor[B, 1, N]
        or [N]), keep the rest."""
        call, settings = self.split_options(options)
        videos = self._as_clips(videos, "videos")
        self.tokenizer.check_videos(videos)
        num = videos.shape[0]
        init = self.tokenizer.encode(videos.to(self.device))
        labels = self.resolve_labels(num, labels, call.first_index)
        if isinstance(editable, torch.Tensor) and editable.dim() in (1, 2):  # one selection for every clip
            editable = editable.reshape(1, -1, editable.shape[-1]).expand(num, -1, -1)
        return self.decode_codes(num, call, settings, labels=labels, init_codes=init, editable=editable)

    def _edit(self, leading: list, trailing: list, labels, call, settings) -> DecodeResult:
        """Decode every frame between the given ``leading`` and ``trailing`` frames ([B, F, 3, S, S] each)."""
        frames = self.tokenizer.frames
        num, per_frame = leading[0].shape[0], self.spec.num_positions // self.num_frames
        t_lead = leading[0].shape[1]
        t_trail = trailing[0].shape[1] if trailing else 0
        init = self.spec.full_mask(num, self.device).view(num, 1, self.num_frames, per_frame)
        for given, start in [(leading[0], 0)] + ([(trailing[0], self.num_frames - t_trail)] if trailing else []):
            codes = frames.encode(given.to(self.device).flatten(0, 1)).view(num, given.shape[1], per_frame)
            init[:, 0, start : start + given.shape[1]] = codes
        init = init.view(num, 1, -1)
        editable = torch.zeros(self.num_frames, dtype=torch.bool)
        editable[t_lead : self.num_frames - t_trail] = True
        editable = editable.repeat_interleave(per_frame)[None].expand(num, 1, -1).to(self.device)
        return self.decode_codes(num, call, settings, labels=self._labels_of(num, labels, call), init_codes=init,
                                 editable=editable)  # fmt: skip

    def _labels_of(self, num, labels, call):
        return self.resolve_labels(num, labels, call.first_index)

    # -- checks and outputs ---------------------------------------------------------------------

    def _as_clips(self, frames, name: str) -> torch.Tensor:
        """[F, 3, S, S] -> [1, F, 3, S, S]; a ValueError naming ``name`` unless frames of this size."""
        if isinstance(frames, torch.Tensor) and frames.dim() == 4:
            frames = frames[None]
        s = self.image_size
        if not isinstance(frames, torch.Tensor) or frames.dim() != 5 or tuple(frames.shape[2:]) != (3, s, s):
            got = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
            raise ValueError(f"{name}: expected frames [B, F, 3, {s}, {s}] (or [F, 3, {s}, {s}]) in [0, 1], got {got}")
        if frames.shape[1] == 0:
            raise ValueError(f"{name}: no frames; expected at least one")
        self.tokenizer.frames.check_images(frames.flatten(0, 1), name)
        return frames

    def _check_predict(self, frames, num_future):
        frames = self._as_clips(frames, "frames")
        given, t = frames.shape[1], self.num_frames
        if given >= t:
            raise ValueError(f"frames: {given} given frames leave nothing to predict in a {t}-frame clip")
        if num_future is None:
            num_future = t - given
        check_int(num_future, "num_future")
        return frames, num_future

    def _check_ends(self, start, end):
        def frames_of(x):  # one frame per clip: [B, 3, S, S] -> [B, 1, 3, S, S]; [3, S, S] -> [1, 1, 3, S, S]
            if isinstance(x, torch.Tensor) and x.dim() in (3, 4):
                return x.view(-1, 1, *x.shape[-3:])
            return x

        start, end = self._as_clips(frames_of(start), "start"), self._as_clips(frames_of(end), "end")
        if start.shape[0] != end.shape[0]:
            raise ValueError(f"end: {end.shape[0]} clips; expected one per start clip ({start.shape[0]})")
        if start.shape[1] + end.shape[1] >= self.num_frames:
            raise ValueError(
                f"start and end: {start.shape[1]} + {end.shape[1]} frames leave nothing between them in a "
                f"{self.num_frames}-frame clip"
            )
        return start, end

    def convert(self, clips: torch.Tensor, output_type: str):
        """Clips [B, T, 3, S, S] -> "pt" as they are, "np" float [B, T, S, S, 3]."""
        if output_type == "pt":
            return clips
        return clips.detach().permute(0, 1, 3, 4, 2).float().cpu().numpy()
