"""ARImagePipeline: an ImageVQ tokenizer + an ARTransformer over its tokens in raster order.

Sampling is ancestral (``method="ar"``) or Speculative Jacobi Decoding (``method="sjd"``, the
same distribution in fewer forward passes), so users can compare AR and masked generation on
one token set. Saved as a folder like the masked pipelines (``pipeline.json``, ``tokenizer/``,
``transformer/``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mgm.decoding import DecodeResult, ar_decode, sjd_decode
from mgm.decoding.jacobi import INITS
from mgm.models import ARTransformer, Condition
from mgm.pipelines.base import MaskedPipeline
from mgm.tokenizers.image_vq import ImageVQ
from mgm.tokens import unflatten_codes

AR_METHODS = ("ar", "sjd")
DEFAULT_AR_PIPELINE = Path(__file__).resolve().parents[1] / "pretrained" / "ar_image_shapes"


@dataclass(frozen=True)
class ARDecodeSettings:
    method: str = "sjd"
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    guidance_scale: float = 0.0
    window: int = 16
    init: str = "random"

    def update(self, **overrides) -> ARDecodeSettings:
        names = {f.name for f in fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"unknown decode settings {sorted(unknown)}; expected some of {sorted(names)}")
        new = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        if new.method not in AR_METHODS:
            raise ValueError(f"method={new.method!r}: an AR pipeline decodes with one of {AR_METHODS}")
        if new.init not in INITS:
            raise ValueError(f"init={new.init!r}: expected one of {INITS}")
        return new


class ARImagePipeline(MaskedPipeline):
    tokenizer_class = ImageVQ
    model_class = ARTransformer
    settings_class = ARDecodeSettings

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

    def generate(self, num: int = 8, labels=None, seed: int | None = 0, **kw) -> torch.Tensor:
        """Sample ``num`` images -> FloatTensor[num, 3, S, S] in [0, 1]; ``kw``: decode overrides
        (method, temperature, top_k, top_p, guidance_scale, window, init), ``batch_size``, ``progress``."""
        return self.tokenizer.decode(self.generate_codes(num, labels, seed, **kw).codes)

    def generate_codes(self, num: int = 8, labels=None, seed: int | None = 0, **kw) -> DecodeResult:
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"num={num!r}: expected an integer >= 1")
        batch_size, progress = kw.pop("batch_size", 64), kw.pop("progress", False)
        settings = self.settings.update(**kw)
        labels = self.resolve_labels(num, labels)
        device = self.device
        generator = torch.Generator(device).manual_seed(seed) if seed is not None else None
        length = self.spec.num_codebooks * self.spec.num_positions
        codes, nfe, trace = [], 0, []
        for start in tqdm(range(0, num, batch_size), desc=settings.method, disable=not progress):
            stop = min(num, start + batch_size)
            cond = None if labels is None else Condition(labels=labels[start:stop].to(device))
            common = dict(
                batch_size=stop - start, cond=cond, temperature=settings.temperature, top_k=settings.top_k,
                top_p=settings.top_p, guidance_scale=settings.guidance_scale if cond else 0.0, generator=generator,
            )  # fmt: skip
            if settings.method == "ar":
                result = ar_decode(self.transformer, length, **common)
            else:
                row = self.spec.shape[-1] * self.spec.num_codebooks
                result = sjd_decode(
                    self.transformer, length, window=settings.window, init=settings.init, row_length=row, **common
                )
            codes.append(unflatten_codes(result.codes, self.spec.num_codebooks))
            nfe += result.nfe
            trace += result.trace  # sjd: per-sample passes and commits
        return DecodeResult(codes=torch.cat(codes), nfe=nfe, trace=trace)
