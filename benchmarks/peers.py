"""The row families benchmarks/decode_speed.py times side by side, built at one ``Shape``:

- ``mgm`` (benchmarks/mgm_methods.py): maskgit and recap on mgm's ``MaskedTransformer``;
- ``muse`` (benchmarks/muse_peer.py): muse-maskgit-pytorch's ``MaskGit.generate`` on a
  ``MaskGitTransformer`` of the same width, depth, heads, MLP width, sequence length, vocabulary,
  steps and text context (random embeddings: the text encoder is not timed);
- ``amused`` (benchmarks/amused_peer.py): diffusers' ``AmusedPipeline`` and mgm's maskgit through
  ``UVit2DAdapter`` on ONE ``UVit2DModel``.

All models are randomly initialised. Guidance is given in aMUSEd's convention
``uncond + g * (cond - uncond)`` (g = 1: none), which is muse-maskgit-pytorch's ``cond_scale``;
mgm's ``cond + s * (cond - uncond)`` gets s = g - 1. Only the peer modules import the peers; a
family is skipped with a reason when its package is missing.
"""

from __future__ import annotations

import os

from benchmarks.amused_peer import amused_methods
from benchmarks.mgm_methods import mgm_methods
from benchmarks.muse_peer import muse_methods
from benchmarks.shapes import Shape
from benchmarks.timed import PeerMissing

FAMILIES = ("mgm", "muse", "amused")


def all_methods(
    shape: Shape, device, dtype, compile: bool, guidances: list[float], families: set[str], cast: bool = False
):
    """(methods, skipped {family: reason}) for the requested families: mgm, muse, amused. With
    ``cast`` the weights are stored in ``dtype``; without, reduced precision is autocast."""
    methods, skipped = [], {}
    builders = {
        "mgm": lambda: mgm_methods(shape, device, dtype, compile, guidances, cast),
        "muse": lambda: muse_methods(shape, device, dtype, guidances, cast),
        "amused": lambda: amused_methods(shape, device, dtype, compile, guidances, cast),
    }
    for family, build in builders.items():
        if family not in families:
            continue
        try:
            methods += build()
        except PeerMissing as e:
            skipped[family] = str(e)
    return methods, skipped


def quiet_peers() -> None:
    """Silence the peers' progress bars and deprecation chatter before they are imported."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()
    except ImportError:
        pass
