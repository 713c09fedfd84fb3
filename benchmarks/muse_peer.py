"""The muse-maskgit-pytorch peer: ``MaskGit.generate`` on its ``MaskGitTransformer``, randomly initialised
at one ``Shape`` (the width, depth, heads, MLP width, sequence length, vocabulary, steps and text
context of mgm's ``MaskedTransformer`` rows). Prompts are precomputed embeddings and the VQ decode is
stubbed out, so the timed call is the token loop. Guidance is muse's ``cond_scale`` (aMUSEd's g).
"""

from __future__ import annotations

from copy import deepcopy

import torch

from benchmarks.shapes import Shape, prompt_context
from benchmarks.timed import PeerMissing, TimedMethod, autocast, precision

MUSE_ROW = "muse-maskgit-pytorch MaskGit.generate · MaskGitTransformer"


class _IdsOnlyVAE(torch.nn.Module):
    """Stands in for MaskGit's VQGanVAE at generation: the grid size, and ids instead of pixels."""

    def __init__(self, side: int):
        super().__init__()
        self.side = side

    def get_encoded_fmap_size(self, image_size: int) -> int:
        return self.side

    def decode_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return ids


def _build_muse(shape: Shape, device):
    """(MaskGit, its MaskGitTransformer) at ``shape``, generating token ids from precomputed embeddings."""
    import muse_maskgit_pytorch.muse_maskgit_pytorch as muse
    import muse_maskgit_pytorch.t5 as muse_t5
    from muse_maskgit_pytorch import MaskGit, MaskGitTransformer, VQGanVAE
    from transformers import T5Config

    # Its Transformer reads the text width from a T5 config on the hub and encodes prompts with T5;
    # offline we register a local config of the same width and feed precomputed embeddings.
    t5_name = f"mgm-bench-t5-{shape.text_dim}"
    muse_t5.T5_CONFIGS[t5_name] = {"config": T5Config(d_model=shape.text_dim)}
    muse.tqdm = lambda iterable, **kwargs: iterable  # no progress bar in the timed loop
    torch.manual_seed(0)
    transformer = MaskGitTransformer(
        num_tokens=shape.codebook_size, seq_len=shape.num_positions, dim=shape.dim, depth=shape.depth,
        heads=shape.num_heads, dim_head=shape.dim // shape.num_heads, ff_mult=shape.ff_mult, t5_name=t5_name,
    )  # fmt: skip
    layers = 1
    vae = VQGanVAE(dim=16, codebook_size=shape.codebook_size, layers=layers, use_vgg_and_gan=False)
    maskgit = MaskGit(image_size=shape.side * 2**layers, transformer=transformer, vae=vae)
    maskgit.vae = _IdsOnlyVAE(shape.side)  # generate() then returns token ids: no VQ decode is timed
    return maskgit.to(device).eval(), transformer


def muse_methods(shape: Shape, device, dtype, guidances: list[float], cast: bool = False) -> list[TimedMethod]:
    try:
        import muse_maskgit_pytorch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise PeerMissing(f"muse-maskgit-pytorch not installed ({e}); pip install -c constraints.txt '.[bench]'") from e

    try:
        maskgit, transformer = _build_muse(shape, device)
    except (AssertionError, TypeError, RuntimeError, OSError) as e:  # e.g. an incompatible release
        raise PeerMissing(f"muse-maskgit-pytorch could not build a MaskGit here: {e!r}") from e
    loop_dtype, dtype_name = precision(dtype, cast)
    maskgit.to(dtype if cast else torch.float32)
    float_copy: list = []

    def fallback(g: float) -> TimedMethod:
        """The same method on a float32 copy of the weights: muse's reduced-precision path may fail."""
        if not float_copy:
            copy = deepcopy(maskgit).float()
            float_copy.append((copy, copy.transformer))
        return _muse_method(*float_copy[0], shape, device, torch.float32, "float32", g, None)

    reduced = dtype != torch.float32
    return [
        _muse_method(maskgit, transformer, shape, device, loop_dtype, dtype_name, g, fallback if reduced else None)
        for g in guidances
    ]


def _muse_method(maskgit, transformer, shape, device, loop_dtype, dtype_name, g, fallback) -> TimedMethod:
    def embeds(batch: int) -> torch.Tensor:
        weight = next(transformer.parameters())
        return prompt_context(shape, batch, device).to(weight.dtype)

    transformer.encode_text = lambda texts: embeds(len(texts))
    guided = g > 1

    def run(batch: int) -> torch.Tensor:
        with torch.inference_mode(), autocast(device, loop_dtype):
            ids = maskgit.generate(["x"] * batch, fmap_size=shape.side, timesteps=shape.num_steps, cond_scale=g)
        return ids.flatten(1)

    def step(batch: int):
        ids = torch.full((batch, shape.num_positions), transformer.mask_id, dtype=torch.long, device=device)
        with torch.inference_mode(), autocast(device, loop_dtype):
            return transformer.forward_with_cond_scale(ids, text_embeds=embeds(batch), cond_scale=g)

    return TimedMethod(
        name=MUSE_ROW,
        family="muse-maskgit-pytorch",
        guided=guided,
        guidance=g,
        run=run,
        step=step,
        nfe=lambda b: float(shape.num_steps * (2 if guided else 1)),
        full_passes=lambda b: float(shape.num_steps * (2 if guided else 1)),
        timed="MaskGit.generate with precomputed text embeddings, VQ decode stubbed out (token loop; "
        "guided = 2 sequential forwards per step)",
        settings={
            "cond_scale": g,
            "topk_filter_thres": 0.9,
            "temperature": 1.0,
            "attention": "package default (flash=True: memory-efficient-attention-pytorch's chunked attention)",
        },
        dtype=dtype_name,
        fallback=None if fallback is None else (lambda: fallback(g)),
    )
