"""Modality pipelines: tokenizer + masked transformer + decode defaults, saved as one folder."""

from mgm.pipelines.base import DecodeSettings, MaskedPipeline
from mgm.pipelines.image import ImagePipeline

__all__ = ["DecodeSettings", "ImagePipeline", "MaskedPipeline"]
