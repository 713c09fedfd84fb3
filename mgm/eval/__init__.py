"""Evaluation: classifiers and metrics for generated samples."""

from mgm.eval.audio_classifier import AudioClassifier
from mgm.eval.classifier import ImageClassifier
from mgm.eval.frechet import FeatureStatistics, feature_statistics, frechet_distance
from mgm.eval.image_quality import image_quality, within_class_diversity

__all__ = [
    "AudioClassifier",
    "FeatureStatistics",
    "ImageClassifier",
    "feature_statistics",
    "frechet_distance",
    "image_quality",
    "within_class_diversity",
]
