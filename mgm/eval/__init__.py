"""Evaluation: classifiers and metrics for generated samples."""

from mgm.eval.audio_classifier import AudioClassifier
from mgm.eval.classifier import ImageClassifier
from mgm.eval.clip_classifier import ClipClassifier
from mgm.eval.frechet import FeatureStatistics, feature_statistics, frechet_distance
from mgm.eval.image_quality import image_quality, within_class_diversity
from mgm.eval.text_motion import TextMotionEvaluator, load_t2m_evaluator

__all__ = [
    "AudioClassifier",
    "ClipClassifier",
    "FeatureStatistics",
    "ImageClassifier",
    "TextMotionEvaluator",
    "feature_statistics",
    "frechet_distance",
    "image_quality",
    "load_t2m_evaluator",
    "within_class_diversity",
]
