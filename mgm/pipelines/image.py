"""ImagePipeline: an ImageVQ tokenizer + a MaskedTransformer + decode defaults.

Images are FloatTensor[B, 3, S, S] in [0, 1]. Editing maps a pixel region to the tokens whose
patches touch it (``ImageVQ.token_mask``), re-decodes only those tokens, and pastes the original
pixels back outside the region, so everything outside it is kept exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mgm.decoding import DecodeResult
from mgm.pipelines.base import DecodeSettings, MaskedPipeline
from mgm.tokenizers.image_vq import ImageVQ

DEFAULT_IMAGE_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "image_shapes"
OUTPAINT_DIRECTIONS = ("left", "right", "up", "down")


class ImagePipeline(MaskedPipeline):
    tokenizer_class = ImageVQ

    default_folder = DEFAULT_IMAGE_PIPELINE
    default_recipe = "pretrained-image"

    @property
    def image_size(self) -> int:
        return self.tokenizer.image_size

    def generate(
        self,
        num: int = 8,
        labels=None,
        num_steps: int | None = None,
        schedule: str | None = None,
        guidance_scale: float | None = None,
        temperature: float | None = None,
        method: str | None = None,
        seed: int | None = 0,
        batch_size: int = 64,
        progress: bool = False,
        plan_options: dict | None = None,
    ) -> torch.Tensor:
        """Sample ``num`` images -> FloatTensor[num, 3, S, S] in [0, 1].

        ``labels``: class labels (cycled to ``num``), or None to cycle through all classes.
        Unset decode arguments take the pipeline's defaults (``self.settings``); ``plan_options``
        are the method's plan (e.g. ``{"full_first": 2, "cheap_per_full": 1}`` for recap).
        """
        return self.tokenizer.decode(
            self.generate_codes(
                num, labels, num_steps, schedule, guidance_scale, temperature, method, seed, batch_size, progress,
                plan_options,
            ).codes
        )  # fmt: skip

    def generate_codes(
        self,
        num: int = 8,
        labels=None,
        num_steps=None,
        schedule=None,
        guidance_scale=None,
        temperature=None,
        method=None,
        seed=0,
        batch_size=64,
        progress=False,
        plan_options=None,
    ) -> DecodeResult:
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"num={num!r}: expected an integer >= 1")
        settings = self._settings(num_steps, schedule, guidance_scale, temperature, method, plan_options)
        return self.decode_codes(
            num, self.resolve_labels(num, labels), settings, seed, batch_size=batch_size, progress=progress
        )

    # -- editing --------------------------------------------------------------------------------

    def inpaint(
        self, images: torch.Tensor, mask: torch.Tensor, labels=None, seed: int | None = 0, **decode_overrides
    ) -> torch.Tensor:
        """Regenerate the pixels where ``mask`` (BoolTensor[B, S, S] or [S, S], True = regenerate) is set.

        Returns FloatTensor[B, 3, S, S]: generated inside the mask, the input's pixels outside.
        """
        images, mask = self._check_edit(images, mask)
        result = self.edit_codes(images, self.tokenizer.token_mask(mask), labels, seed, **decode_overrides)
        return torch.where(mask[:, None].to(images.device), self.tokenizer.decode(result.codes), images)

    def outpaint(
        self,
        images: torch.Tensor,
        direction: str = "right",
        amount: int | None = None,
        labels=None,
        seed: int | None = 0,
        **decode_overrides,
    ) -> torch.Tensor:
        """Slide the view ``amount`` pixels towards ``direction`` and generate the uncovered strip.

        The content moves the other way by ``amount`` (rounded up to whole tokens; default a quarter
        of the image); what was visible stays, the new border is generated to continue it.
        """
        if direction not in OUTPAINT_DIRECTIONS:
            raise ValueError(f"direction={direction!r}: expected one of {OUTPAINT_DIRECTIONS}")
        size, step = self.image_size, self.tokenizer.downsample
        amount = size // 4 if amount is None else amount
        if not 0 < amount < size:
            raise ValueError(f"amount={amount}: expected pixels in [1, {size - 1}]")
        amount = -(-amount // step) * step
        images, _ = self._check_edit(images, None)
        axis, sign = {"left": (3, 1), "right": (3, -1), "up": (2, 1), "down": (2, -1)}[direction]
        shifted = torch.roll(images, sign * amount, dims=axis)
        mask = torch.zeros(images.shape[0], size, size, dtype=torch.bool, device=images.device)
        new = slice(0, amount) if sign == 1 else slice(size - amount, size)
        if axis == 3:
            mask[:, :, new] = True
        else:
            mask[:, new, :] = True
        shifted = torch.where(mask[:, None], 0.5, shifted)  # the rolled-in pixels are not content
        return self.inpaint(shifted, mask, labels, seed, **decode_overrides)

    def variations(
        self, images: torch.Tensor, strength: float = 0.5, labels=None, seed: int | None = 0, **decode_overrides
    ) -> torch.Tensor:
        """Re-mask a random ``strength`` share of each image's tokens and decode them again."""
        if not 0 < strength <= 1:
            raise ValueError(f"strength={strength}: expected a share in (0, 1]")
        images, _ = self._check_edit(images, None)
        n = self.spec.num_positions
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        scores = torch.rand(images.shape[0], n, generator=generator)
        num_masked = max(1, round(strength * n))
        editable = (scores.argsort(-1).argsort(-1) < num_masked)[:, None].to(images.device)
        return self.tokenizer.decode(self.edit_codes(images, editable, labels, seed, **decode_overrides).codes)

    def edit_codes(
        self, images: torch.Tensor, editable: torch.Tensor, labels=None, seed: int | None = 0, **decode_overrides
    ) -> DecodeResult:
        """Encode ``images``, regenerate the tokens in ``editable`` (BoolTensor[B, 1, N]), keep the rest."""
        settings = self._settings(**decode_overrides)
        labels = self.resolve_labels(images.shape[0], labels)
        init = self.tokenizer.encode(images.to(self.device))
        return self.decode_codes(images.shape[0], labels, settings, seed, init_codes=init, editable=editable)

    # -- helpers --------------------------------------------------------------------------------

    def _settings(
        self, num_steps=None, schedule=None, guidance_scale=None, temperature=None, method=None, plan_options=None
    ) -> DecodeSettings:
        if method is not None and method != self.settings.method and plan_options is None:
            plan_options = {}  # the saved method's plan options would not fit another method
        return self.settings.update(
            num_steps=num_steps,
            schedule=schedule,
            guidance_scale=guidance_scale,
            temperature=temperature,
            method=method,
            plan_options=plan_options,
        )

    def _check_edit(self, images: torch.Tensor, mask: torch.Tensor | None):
        if isinstance(images, torch.Tensor) and images.dim() == 3:
            images = images[None]
        self.tokenizer.check_images(images)
        if mask is None:
            return images, None
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"mask: expected a BoolTensor (True = regenerate), got {getattr(mask, 'dtype', mask)}")
        if mask.dim() == 2:
            mask = mask.expand(images.shape[0], -1, -1)
        if tuple(mask.shape) != (images.shape[0], self.image_size, self.image_size):
            raise ValueError(
                f"mask: shape {tuple(mask.shape)} does not match the images: expected "
                f"[{images.shape[0]}, {self.image_size}, {self.image_size}] or [{self.image_size}, {self.image_size}]"
            )
        return images, mask
