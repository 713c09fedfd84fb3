"""ARImagePipeline: an ImageVQ tokenizer + an ARTransformer over its tokens in raster order.

Sampling is by any registered AR method: ancestral (``method="ar"``) or Speculative Jacobi
Decoding (``method="sjd"``, the same distribution in fewer forward passes), so users can compare
AR and masked generation on one token set. Saved as a folder like the masked pipelines
(``pipeline.json``, ``tokenizer/``, ``transformer/``); the calling convention is theirs.
"""

from __future__ import annotations

from pathlib import Path

from mgm.decoding import DecodeResult
from mgm.decoding.registry import AR
from mgm.models import ARTransformer
from mgm.pipelines.base import Pipeline
from mgm.pipelines.image import ImagePipeline
from mgm.tokenizers.image_vq import ImageVQ
from mgm.tokens import unflatten_codes

DEFAULT_AR_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "ar_image_shapes"


class ARImagePipeline(Pipeline):
    tokenizer_class = ImageVQ
    model_class = ARTransformer
    decoder_kind = AR
    output_types = ImagePipeline.output_types

    default_folder = DEFAULT_AR_PIPELINE
    default_recipe = "pretrained-ar"

    @staticmethod
    def check_specs(tokenizer, transformer) -> None:
        spec = tokenizer.spec
        length = spec.num_codebooks * spec.num_positions
        if max(spec.codebook_sizes) > transformer.vocab_size or length > transformer.max_length:
            raise ValueError(
                f"tokenizer tokens (codebooks {spec.codebook_sizes}, {length} per image) do not fit the AR model "
                f"(vocab_size={transformer.vocab_size}, max_length={transformer.max_length})"
            )

    @property
    def spec(self):
        return self.tokenizer.spec

    @property
    def image_size(self) -> int:
        return self.tokenizer.image_size

    # Class-conditional sampling and its output types are the masked image pipeline's; only the
    # decoder call differs (``decode_batch``). ``options``' decode options are the AR methods'
    # (method "ar" / "sjd", temperature, top_k, top_p, guidance_scale, window, init).
    generate = ImagePipeline.generate
    generate_codes = ImagePipeline.generate_codes
    _generate = ImagePipeline._generate
    convert = ImagePipeline.convert

    def decode_batch(self, entry, model, spec, cond, generator, count, options, init_codes, editable) -> DecodeResult:
        """One batch as a raster token sequence; codes back on the grid [B, K, N]."""
        length = spec.num_codebooks * spec.num_positions
        if "row_length" in entry.own_names:  # a draft rule reading the token one grid row above
            options = {"row_length": spec.shape[-1] * spec.num_codebooks, **options}
        result = entry.decode(model, length, batch_size=count, cond=cond, generator=generator, device=self.device,
                              **options)  # fmt: skip
        result.codes = unflatten_codes(result.codes[:, 0], spec.num_codebooks)
        return result
