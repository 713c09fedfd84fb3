"""Decoders: each one a visible loop over a model callable, one file per method.

Every method registers itself (``mgm.decoding.registry``) when its module is imported here.
"""

from mgm.decoding.adaptive import CreditOptions, ThresholdOptions, credit_decode, threshold_decode
from mgm.decoding.ar import ar_decode
from mgm.decoding.critic import CriticOptions, critic_decode
from mgm.decoding.group import GroupOptions, group_decode
from mgm.decoding.jacobi import SJDOptions, sjd_decode
from mgm.decoding.maskgit import MaskGITOptions, maskgit_decode
from mgm.decoding.options import RunOptions, SamplingOptions
from mgm.decoding.parallel_ar import GroupOrderOptions, arpg_decode, lpd_decode
from mgm.decoding.recap import RecapOptions, recap_decode
from mgm.decoding.registry import AR, FLEX_AR, MASKED, METHODS, Method, get_method, method_names
from mgm.decoding.remask import RemaskOptions, remask_decode
from mgm.decoding.result import DecodeResult, JacobiRecord, StepRecord, TraceRecord
from mgm.decoding.verified import VerifiedOptions, verified_decode

__all__ = [
    "AR",
    "FLEX_AR",
    "GroupOrderOptions",
    "arpg_decode",
    "lpd_decode",
    "CreditOptions",
    "CriticOptions",
    "critic_decode",
    "ThresholdOptions",
    "credit_decode",
    "threshold_decode",
    "MASKED",
    "METHODS",
    "DecodeResult",
    "GroupOptions",
    "JacobiRecord",
    "MaskGITOptions",
    "Method",
    "RecapOptions",
    "RemaskOptions",
    "RunOptions",
    "SJDOptions",
    "SamplingOptions",
    "StepRecord",
    "TraceRecord",
    "VerifiedOptions",
    "ar_decode",
    "get_method",
    "group_decode",
    "maskgit_decode",
    "method_names",
    "recap_decode",
    "remask_decode",
    "sjd_decode",
    "verified_decode",
]
