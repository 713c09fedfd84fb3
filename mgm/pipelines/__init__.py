"""Modality pipelines: tokenizer + masked transformer + decode defaults, saved as one folder."""

from mgm.pipelines.ar_image import ARDecodeSettings, ARImagePipeline
from mgm.pipelines.base import DecodeSettings, MaskedPipeline
from mgm.pipelines.image import ImagePipeline


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
    "ARDecodeSettings",
    "ARImagePipeline",
    "AudioPipeline",
    "DecodeSettings",
    "ImagePipeline",
    "MaskedPipeline",
    "MotionPipeline",
]
