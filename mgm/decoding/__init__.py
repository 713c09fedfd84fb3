"""Decoders: each one a visible loop over a model callable, one file per method."""

from mgm.decoding.ar import ar_decode
from mgm.decoding.group import group_decode
from mgm.decoding.jacobi import sjd_decode
from mgm.decoding.maskgit import maskgit_decode
from mgm.decoding.recap import recap_decode
from mgm.decoding.registry import MASKED_DECODERS, get_masked_decoder
from mgm.decoding.result import DecodeResult, StepRecord

__all__ = [
    "ar_decode",
    "sjd_decode",
    "MASKED_DECODERS",
    "DecodeResult",
    "StepRecord",
    "get_masked_decoder",
    "group_decode",
    "maskgit_decode",
    "recap_decode",
]
