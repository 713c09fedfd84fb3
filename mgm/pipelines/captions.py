"""Caption conditioning for any masked pipeline: a text encoder beside the transformer.

A transformer built with ``context_dim`` reads a caption's tokens through cross-attention; the
pipeline holds the caption encoder (``mgm.models.text``) that made them in training, saves it
(a trained ``WordTextEncoder`` as a folder, a frozen ``HFTextEncoder`` by its hub name) and turns
captions into the transformer's Condition. Modality-free: motion and audio pipelines mix it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from mgm.checks import check_int
from mgm.models import Condition
from mgm.models.text import HFTextEncoder, WordTextEncoder, check_captions
from mgm.pipelines.settings import DecodeSettings


class CaptionConditioning:
    """Mixin for a ``MaskedPipeline`` subclass: ``text_encoder`` argument, save/load, ``condition``."""

    def __init__(self, tokenizer, transformer, settings: DecodeSettings | dict | None = None,
                 class_names: Sequence[str] | None = None,
                 text_encoder: WordTextEncoder | HFTextEncoder | None = None):  # fmt: skip
        super().__init__(tokenizer, transformer, settings, class_names)
        if getattr(transformer, "context_proj", None) is not None and text_encoder is None:
            raise ValueError("text_encoder: this transformer is text-conditioned; give its caption encoder")
        self.text_encoder = None if text_encoder is None else text_encoder.eval()

    def to(self, device):
        super().to(device)
        if self.text_encoder is not None:
            self.text_encoder.to(device)
        return self

    def condition(self, texts, num: int, labels: torch.Tensor | None = None) -> Condition | None:
        """Captions (one, or one per sample) and optional labels [num] -> the Condition of ``num``
        samples; None when there is neither (``texts=None`` leaves the caption context null)."""
        if texts is None:
            return None if labels is None else Condition(labels=labels)
        if self.text_encoder is None:
            raise ValueError("texts given, but this pipeline's model is not text-conditioned (no caption encoder)")
        texts = check_captions(texts)
        if len(texts) not in (1, num):
            raise ValueError(f"texts: {len(texts)} captions for {num} samples; expected 1 or {num}")
        with torch.no_grad():
            text = self.text_encoder(texts * num if len(texts) == 1 else texts)
        return Condition(labels=labels, context=text.tokens, context_mask=text.mask)

    # -- save / load ----------------------------------------------------------------------------

    def extra_config(self) -> dict:
        if isinstance(self.text_encoder, HFTextEncoder):
            return {"text_encoder": {"hf": self.text_encoder.name, "max_length": self.text_encoder.max_length}}
        return {"text_encoder": None if self.text_encoder is None else {"folder": "text_encoder"}}

    def save_parts(self, folder: Path) -> None:
        super().save_parts(folder)
        if isinstance(self.text_encoder, WordTextEncoder):
            self.text_encoder.save_pretrained(folder / "text_encoder")

    @classmethod
    def load_extra(cls, directory: Path, config: dict) -> dict:
        entry = config.get("text_encoder")
        if not entry:
            return {}
        if isinstance(entry, dict) and isinstance(entry.get("hf"), str):
            max_length = check_int(entry.get("max_length", 77), "text_encoder.max_length")
            return {"text_encoder": HFTextEncoder.from_pretrained(entry["hf"], max_length)}
        folder = entry.get("folder") if isinstance(entry, dict) else None
        if not isinstance(folder, str) or not folder or Path(folder).name != folder:
            raise ValueError(
                f"{directory / 'pipeline.json'}: text_encoder={entry!r}: expected null, "
                '{"folder": "<sub-folder>"} or {"hf": "<hub id>", "max_length": N}'
            )
        return {"text_encoder": WordTextEncoder.from_pretrained(directory / folder)}
