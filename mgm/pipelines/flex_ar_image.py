"""FlexARImagePipeline: an ImageVQ tokenizer + a FlexARTransformer, decoded in parallel groups.

Sampling and editing are the masked image pipeline's (``generate``, ``inpaint``, ``outpaint``,
``variations``: the same calling convention and options); only the decoders differ: the
"flex-ar" methods, ARPG's random-order groups (``method="arpg"``) and LPD's locality-aware
groups (``method="lpd"``), each group one pass on a KV cache. In editing the kept tokens enter the
cache first, so inpainting and outpainting need no training of their own.
"""

from __future__ import annotations

from pathlib import Path

from mgm.decoding.registry import FLEX_AR
from mgm.models.flex_ar import FlexARTransformer
from mgm.pipelines.image import ImagePipeline

DEFAULT_FLEX_AR_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "flex_ar_image_shapes"


class FlexARImagePipeline(ImagePipeline):
    model_class = FlexARTransformer
    decoder_kind = FLEX_AR

    default_folder = DEFAULT_FLEX_AR_PIPELINE
    default_recipe = "pretrained-flex-ar"
