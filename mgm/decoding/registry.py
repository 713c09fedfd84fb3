"""Decoders by name, for pipelines and the CLI (``--method``)."""

from __future__ import annotations

from collections.abc import Callable

from mgm.decoding.group import group_decode
from mgm.decoding.maskgit import maskgit_decode
from mgm.decoding.recap import recap_decode

MASKED_DECODERS: dict[str, Callable] = {"maskgit": maskgit_decode, "group": group_decode, "recap": recap_decode}


def get_masked_decoder(method: str) -> Callable:
    if method not in MASKED_DECODERS:
        raise ValueError(f"method={method!r} is not a known decoding method; expected one of {sorted(MASKED_DECODERS)}")
    return MASKED_DECODERS[method]
