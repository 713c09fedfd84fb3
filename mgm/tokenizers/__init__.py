"""Modality adapters: they map signals to codes [B, K, N] and back (see base.Tokenizer)."""

from mgm.tokenizers.audio_encodec import EncodecTokenizer
from mgm.tokenizers.base import Tokenizer
from mgm.tokenizers.image_vq import ImageVQ
from mgm.tokenizers.motion_vq import MotionVQ
from mgm.tokenizers.video_vq import VideoVQ

__all__ = ["EncodecTokenizer", "ImageVQ", "MotionVQ", "Tokenizer", "VideoVQ"]
