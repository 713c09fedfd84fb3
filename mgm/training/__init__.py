"""Lightning systems (steps, optimiser, logging) and DataModules; networks live in mgm.models."""

from mgm.training.ar import ARTraining
from mgm.training.callbacks import ImageSampleGrid, SavePipeline, SavePretrained
from mgm.training.codec import CodecTraining
from mgm.training.datamodules import (
    CodesDataModule,
    CodesFileDataModule,
    MarkovCodesDataModule,
    StreamingCodesDataModule,
)
from mgm.training.flex_ar import FlexARTraining
from mgm.training.masked import MaskedTokenTraining, condition_from_batch
from mgm.training.motion_vq import MotionVQTraining

__all__ = [
    "ARTraining",
    "CodecTraining",
    "CodesDataModule",
    "FlexARTraining",
    "ImageSampleGrid",
    "SavePipeline",
    "CodesFileDataModule",
    "StreamingCodesDataModule",
    "MarkovCodesDataModule",
    "MaskedTokenTraining",
    "MotionVQTraining",
    "SavePretrained",
    "condition_from_batch",
]
