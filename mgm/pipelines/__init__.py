"""Modality pipelines: tokenizer + masked transformer + decode defaults, saved as one folder."""

from mgm.pipelines.ar_image import ARImagePipeline
from mgm.pipelines.base import MaskedPipeline, Pipeline
from mgm.pipelines.flex_ar_image import FlexARImagePipeline
from mgm.pipelines.image import ImagePipeline
from mgm.pipelines.settings import CallOptions, DecodeSettings
from mgm.pipelines.video import VideoPipeline


def __getattr__(name):
    # AudioPipeline imports the encodec package; load it only when asked for.
    if name == "AudioPipeline":
        from mgm.pipelines.audio import AudioPipeline

        return AudioPipeline
    if name == "MotionPipeline":
        from mgm.pipelines.motion import MotionPipeline

        return MotionPipeline
    raise AttributeError(f"module 'mgm.pipelines' has no attribute {name!r}")


__all__ = [
    "ARImagePipeline",
    "AudioPipeline",
    "CallOptions",
    "DecodeSettings",
    "FlexARImagePipeline",
    "ImagePipeline",
    "MaskedPipeline",
    "MotionPipeline",
    "Pipeline",
    "VideoPipeline",
]
