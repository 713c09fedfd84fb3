"""Decoders: each one a visible loop over a model callable, one file per method."""

from mgm.decoding.maskgit import maskgit_decode
from mgm.decoding.result import DecodeResult, StepRecord

__all__ = ["DecodeResult", "StepRecord", "maskgit_decode"]
