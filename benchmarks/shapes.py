"""The model shapes every speed benchmark builds its randomly initialised models at, and their inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Shape:
    """One model shape for every method. The transformer core (dim, depth, heads, FFN width) is
    the UVit's transformer layers; mgm's and muse's transformers copy it (their MLPs get the
    parameter count of the UVit's GEGLU FFN: hidden = 1.5 * intermediate_size)."""

    side: int  # token grid side: N = side * side
    codebook_size: int
    dim: int
    depth: int
    num_heads: int
    intermediate_size: int
    text_dim: int  # prompt hidden-state width (UVit encoder_hidden_size, CLIP hidden size)
    pooled_dim: int  # projected pooled prompt width (UVit cond_embed_dim)
    prompt_length: int  # prompt tokens S (aMUSEd: 77)
    # The UVit's convolutional stages around the transformer.
    block_out_channels: int
    in_channels: int
    num_res_blocks: int
    block_num_heads: int
    micro_cond_encode_dim: int
    vq_channels: tuple[int, ...]  # VQModel block_out_channels: downsample 2 ** (len - 1)
    num_steps: int = 12
    guidance: float = 10.0  # aMUSEd's convention
    batch_sizes: tuple[int, ...] = (1, 16)
    notes: str = ""

    @property
    def num_positions(self) -> int:
        return self.side * self.side

    @property
    def ff_mult(self) -> float:
        """MLP width / dim for mgm (Linear-GELU-Linear) and muse (GEGLU, 2/3 of it per half)."""
        return 1.5 * self.intermediate_size / self.dim

    def to_dict(self) -> dict:
        return asdict(self)


SHAPES: dict[str, Shape] = {
    # aMUSEd-256 (amused/amused-256 transformer config: UVit2DModel's defaults with 16 x 16 tokens):
    # 603M parameters, codebook 8192 (+ 64 spare ids, mask id 8255), CLIP-L/14 text (77 x 768).
    "amused-256": Shape(
        side=16,
        codebook_size=8192,
        dim=1024,
        depth=22,
        num_heads=16,
        intermediate_size=2816,
        text_dim=768,
        pooled_dim=768,
        prompt_length=77,
        block_out_channels=768,
        in_channels=768,
        num_res_blocks=3,
        block_num_heads=12,
        micro_cond_encode_dim=256,
        vq_channels=(128, 256, 256, 512, 768),
        batch_sizes=(1, 64),
        notes="aMUSEd-256's UVit2D (603M parameters)",
    ),
    # A CPU-sized shape: the same structure at 1/8 of the width, 4 layers, 8 x 8 tokens.
    "small": Shape(
        side=8,
        codebook_size=512,
        dim=128,
        depth=4,
        num_heads=4,
        intermediate_size=352,
        text_dim=64,
        pooled_dim=64,
        prompt_length=16,
        block_out_channels=64,
        in_channels=64,
        num_res_blocks=1,
        block_num_heads=2,
        micro_cond_encode_dim=8,
        vq_channels=(16, 16, 16, 16),
        batch_sizes=(1, 16),
        notes="CPU-sized",
    ),
    # For the smoke test: seconds on one CPU thread.
    "tiny": Shape(
        side=4,
        codebook_size=16,
        dim=32,
        depth=1,
        num_heads=2,
        intermediate_size=64,
        text_dim=16,
        pooled_dim=16,
        prompt_length=4,
        block_out_channels=16,
        in_channels=16,
        num_res_blocks=1,
        block_num_heads=1,
        micro_cond_encode_dim=2,
        vq_channels=(8,),
        num_steps=4,
        batch_sizes=(1, 2),
        notes="smoke test",
    ),
}

NUM_MICRO_CONDS = 5  # aMUSEd: width, height, crop top, crop left, aesthetic score

_CONTEXTS: dict[tuple, torch.Tensor] = {}


def prompt_context(shape: Shape, batch: int, device) -> torch.Tensor:
    """Random prompt embeddings [B, S, text_dim], made once per batch size and device (so no timed
    run pays for them); non-zero, as muse reads all-zero rows as padding."""
    key = (shape, batch, str(device))
    if key not in _CONTEXTS:
        g = torch.Generator().manual_seed(0)
        _CONTEXTS[key] = torch.randn(batch, shape.prompt_length, shape.text_dim, generator=g).to(device)
    return _CONTEXTS[key]
