"""ImagePipeline: an ImageVQ tokenizer + a MaskedTransformer + decode defaults.

Images are FloatTensor[B, 3, S, S] in [0, 1]. Editing maps a pixel region to the tokens whose
patches touch it (``ImageVQ.token_mask``), re-decodes only those tokens, and pastes the original
pixels back outside the region, so everything outside it is kept exactly.

Every method takes ``labels=`` (class ids or names, cycled; None cycles through the classes)
and the options of ``mgm.pipelines.base``: seed, batch_size, progress, output_type ("pt", "np":
[B, S, S, 3], "pil": a list of PIL images), callback, and the decode options.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mgm.checks import check_number
from mgm.decoding import DecodeResult
from mgm.pipelines.base import MaskedPipeline
from mgm.pipelines.settings import sample_generators
from mgm.tokenizers.image_vq import ImageVQ

DEFAULT_IMAGE_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "image_shapes"
OUTPAINT_DIRECTIONS = ("left", "right", "up", "down")
DEFAULT_NUM_IMAGES = 8


class ImagePipeline(MaskedPipeline):
    tokenizer_class = ImageVQ
    output_types = ("pt", "np", "pil")

    default_folder = DEFAULT_IMAGE_PIPELINE
    default_recipe = "pretrained-image"

    @property
    def image_size(self) -> int:
        return self.tokenizer.image_size

    def generate(self, num: int = DEFAULT_NUM_IMAGES, *, labels=None, **options):
        """Sample ``num`` images -> FloatTensor[num, 3, S, S] in [0, 1] (or ``output_type``'s form)."""
        call, settings = self.split_options(options)
        result = self._generate(num, labels, call, settings)
        return self.convert(self.decode_tokens(result.codes), call.output_type)

    def generate_codes(self, num: int = DEFAULT_NUM_IMAGES, *, labels=None, **options) -> DecodeResult:
        """As ``generate``, but the DecodeResult (codes [num, 1, N], nfe, trace)."""
        call, settings = self.split_options(options)
        return self._generate(num, labels, call, settings)

    def _generate(self, num, labels, call, settings) -> DecodeResult:
        num = self.check_num(num)
        return self.decode_codes(num, call, settings, labels=self.resolve_labels(num, labels, call.first_index))

    # -- editing --------------------------------------------------------------------------------

    def inpaint(self, images: torch.Tensor, mask: torch.Tensor, *, labels=None, **options):
        """Regenerate the pixels where ``mask`` (BoolTensor[B, S, S] or [S, S], True = regenerate) is set.

        Returns images [B, 3, S, S]: generated inside the mask, the input's pixels outside.
        """
        call, settings = self.split_options(options)
        images, mask = self._check_edit(images, mask)
        result = self._edit(images, self.tokenizer.token_mask(mask), labels, call, settings)
        decoded = self.decode_tokens(result.codes)
        inpainted = torch.where(mask[:, None].to(images.device), decoded, images)
        return self.convert(inpainted, call.output_type)

    def outpaint(self, images: torch.Tensor, direction: str = "right", amount: int | None = None, *, labels=None,
                 **options):  # fmt: skip
        """Slide the view ``amount`` pixels towards ``direction`` and generate the uncovered strip.

        The content moves the other way by ``amount`` (rounded up to whole tokens; default a quarter
        of the image); what was visible stays, the new border is generated to continue it.
        """
        if direction not in OUTPAINT_DIRECTIONS:
            raise ValueError(f"direction={direction!r}: expected one of {OUTPAINT_DIRECTIONS}")
        size, step = self.image_size, self.tokenizer.downsample
        amount = size // 4 if amount is None else amount
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < size:
            raise ValueError(f"amount={amount!r}: expected whole pixels in [1, {size - 1}]")
        self.split_options(options)  # bad options fail before any work
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
        return self.inpaint(shifted, mask, labels=labels, **options)

    def variations(self, images: torch.Tensor, strength: float = 0.5, *, labels=None, **options):
        """Re-mask a random ``strength`` share of each image's tokens and decode them again."""
        check_number(strength, "strength", above=0, maximum=1)
        call, settings = self.split_options(options)
        images, _ = self._check_edit(images, None)
        b, n = images.shape[0], self.spec.num_positions
        generators = sample_generators(call.seed, call.first_index, b, torch.device("cpu"))
        scores = torch.stack([torch.rand(n, generator=g) for g in generators]) if generators else torch.rand(b, n)
        num_masked = max(1, round(strength * n))
        editable = (scores.argsort(-1).argsort(-1) < num_masked)[:, None].to(images.device)
        result = self._edit(images, editable, labels, call, settings)
        return self.convert(self.decode_tokens(result.codes), call.output_type)

    def edit_codes(self, images: torch.Tensor, editable: torch.Tensor, *, labels=None, **options) -> DecodeResult:
        """Encode ``images``, regenerate the tokens in ``editable`` (BoolTensor[B, 1, N]), keep the rest."""
        call, settings = self.split_options(options)
        images, _ = self._check_edit(images, None)
        return self._edit(images, editable, labels, call, settings)

    def _edit(self, images, editable, labels, call, settings) -> DecodeResult:
        num = images.shape[0]
        labels = self.resolve_labels(num, labels, call.first_index)
        init = self.tokenizer.encode(images.to(self.device))
        return self.decode_codes(num, call, settings, labels=labels, init_codes=init, editable=editable)

    # -- helpers --------------------------------------------------------------------------------

    def convert(self, images: torch.Tensor, output_type: str):
        """Images [B, 3, S, S] in [0, 1] -> "pt" as they are, "np" float [B, S, S, 3], "pil" PIL images."""
        if output_type == "pt":
            return images
        array = images.detach().permute(0, 2, 3, 1).float().cpu().numpy()
        if output_type == "np":
            return array
        from PIL import Image

        return [Image.fromarray((a * 255).round().clip(0, 255).astype(np.uint8)) for a in array]

    def _check_edit(self, images: torch.Tensor, mask: torch.Tensor | None):
        if isinstance(images, torch.Tensor) and images.dim() == 3:
            images = images[None]
        self.tokenizer.check_images(images)
        if mask is None:
            return images, None
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"mask: expected a BoolTensor (True = regenerate), got {getattr(mask, 'dtype', mask)}")
        given = tuple(mask.shape)
        if mask.dim() == 2:
            mask = mask.expand(images.shape[0], -1, -1)
        if tuple(mask.shape) != (images.shape[0], self.image_size, self.image_size):
            raise ValueError(
                f"mask: shape {given} does not match the images: expected "
                f"[{images.shape[0]}, {self.image_size}, {self.image_size}] or [{self.image_size}, {self.image_size}]"
            )
        return images, mask
