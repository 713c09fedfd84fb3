"""diffusers' ``UVit2DModel`` (aMUSEd's transformer) as a mgm masked model, so mgm's decoders drive it.

    pipe = AmusedPipeline.from_pretrained("amused/amused-256")  # diffusers; or load_amused(folder)
    adapter, vq = load_amused(pipe)
    hidden, pooled = encode_prompts(pipe.tokenizer, pipe.text_encoder, ["a red fox"])
    res = maskgit_decode(adapter, adapter.spec, batch_size=1, num_steps=12,
                         cond=adapter.condition(hidden, pooled), guidance_scale=9.0)  # aMUSEd's 10
    images = vq.decode(res.codes)                                                   # [B, 3, H, W] in [0, 1]

Legend: B batch, N = h * w token positions, S prompt tokens, D text hidden width
(``encoder_hidden_size``), P pooled text width (``cond_embed_dim``), V codebook size, M micro-conditions.

Conventions that differ between aMUSEd and mgm, and where they are converted:
- Mask id: mgm's masked positions hold ``spec.mask_id`` = V (the codebook size); the UVit's mask
  token is ``AmusedScheduler.config.mask_token_id`` (by default ``vocab_size - 1``: aMUSEd-256 has
  V = 8192 codes in an embedding of 8256 rows and masks with 8255). The adapter swaps them on input.
- Logits: the UVit returns ``[B, V, h, w]``; the adapter returns mgm's ``[B, 1, N, V]`` (row-major,
  as ``ImageVQ`` and diffusers' ``VQModel.decode(shape=...)`` lay the codes out).
- Prompt: mgm's ``Condition`` has one context sequence, aMUSEd needs two text inputs (the text
  encoder's penultimate hidden states [B, S, D] and its projected pooled embedding [B, P]).
  ``adapter.condition(hidden, pooled)`` packs them into ``context`` [B, S + 1, max(D, P)]: the
  hidden states, then the pooled embedding as one extra row (zero-padded to the common width).
  Packed this way the prompt survives ``Condition.cat`` / ``null`` / ``select``, which guidance
  and batching rely on. The UVit attends every prompt token (aMUSEd pads to the tokenizer's
  maximum length and uses no attention mask), so ``context_mask`` must be None or all True.
- Null condition: rows with ``cond.drop`` (and every row when ``cond`` is None) use the empty
  prompt's hidden states and pooled embedding, which the adapter holds, as aMUSEd's negative prompt
  "" does. Guided and unguided rows run as one batch.
- Guidance scale: aMUSEd's ``uncond + g * (cond - uncond)`` is mgm's ``cond + s * (cond - uncond)``
  with ``s = g - 1`` (aMUSEd's default g = 10 is mgm's 9).
- Micro-conditioning (image width, height, crop coordinates, aesthetic score) is the same for
  every row; the adapter holds it (``micro_conds`` buffer [M]).
- Pixels: aMUSEd's VQ-GAN works in [0, 1] (its pipeline only clips the decoder's output), not in
  the [-1, 1] of ``ImageVQ``; ``AmusedVQ`` is ``ImageVQ`` in that convention.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import torch
from diffusers import UVit2DModel
from torch import nn

from mgm.models.conditioning import Condition
from mgm.tokenizers.image_vq import ImageVQ
from mgm.tokens import TokenSpec

AMUSED_AESTHETIC_SCORE = 6  # AmusedPipeline's default micro_conditioning_aesthetic_score


def amused_micro_conds(
    height: int, width: int, crop_coord: tuple[int, int] = (0, 0), aesthetic_score: float = AMUSED_AESTHETIC_SCORE
) -> torch.Tensor:
    """aMUSEd's micro-conditioning FloatTensor[5] for images of ``height`` x ``width`` pixels.

    The order (width first) is AmusedPipeline's, which keeps the original code base's order."""
    return torch.tensor([width, height, crop_coord[0], crop_coord[1], aesthetic_score], dtype=torch.float32)


def amused_mask_schedule(name: str = "cosine") -> Callable[[torch.Tensor], torch.Tensor]:
    """AmusedScheduler's mask ratio gamma(r), computed in float32 as it computes it, for ``schedule=``.

    mgm's own "cosine" and "linear" are the same functions in float64. They differ only where
    N * gamma(r) is a whole number: float32 lands a hair below it and aMUSEd keeps one token fewer
    masked (cosine, 12 steps, after step 8 of 12: cos(pi / 3) * 256 floors to 127, not 128). With
    this schedule ``maskgit_decode`` reveals exactly as many tokens per step as AmusedPipeline.
    """
    if name == "cosine":
        return lambda r: torch.cos(r.float() * math.pi / 2)
    if name == "linear":
        return lambda r: 1 - r.float()
    raise ValueError(f"name={name!r}: AmusedScheduler's masking_schedule is one of ['cosine', 'linear']")


class UVit2DAdapter(nn.Module):
    """``adapter(codes[B, 1, N], cond) -> logits[B, 1, N, V]`` over a diffusers ``UVit2DModel``.

    Args:
        transformer: the UVit2DModel (e.g. ``AmusedPipeline.transformer``).
        null_encoder_hidden_states: FloatTensor[1, S, D] (or [S, D]), the empty prompt's penultimate
            hidden states from the text encoder (``encode_prompts(tokenizer, text_encoder, [""])``).
        null_pooled_text_emb: FloatTensor[1, P] (or [P]), the empty prompt's projected pooled embedding.
        micro_conds: FloatTensor[M] shared by every row; ``amused_micro_conds(height, width)`` gives
            aMUSEd's (M = micro_cond_embed_dim / micro_cond_encode_dim = 5).
        mask_token_id: the id the UVit was trained to read as "masked" (AmusedScheduler's
            ``mask_token_id``); default ``vocab_size - 1``.
        shape: the token grid (h, w); default ``(sample_size, sample_size)`` from the UVit's config.
    """

    num_classes = 0  # no class labels: a prompt conditions through ``context``

    def __init__(
        self,
        transformer: UVit2DModel,
        null_encoder_hidden_states: torch.Tensor,
        null_pooled_text_emb: torch.Tensor,
        micro_conds: torch.Tensor | Sequence[float],
        mask_token_id: int | None = None,
        shape: tuple[int, int] | None = None,
    ):
        super().__init__()
        config = transformer.config
        self.transformer = transformer
        self.hidden_dim, self.pooled_dim = int(config.encoder_hidden_size), int(config.cond_embed_dim)
        codebook_size, vocab_size = int(config.codebook_size), int(config.vocab_size)
        mask_token_id = vocab_size - 1 if mask_token_id is None else int(mask_token_id)
        if not codebook_size <= mask_token_id < vocab_size:
            raise ValueError(
                f"mask_token_id={mask_token_id}: expected an id in [{codebook_size}, {vocab_size - 1}] "
                f"(past the {codebook_size} codes, inside the UVit's {vocab_size}-row embedding)"
            )
        self.mask_token_id = mask_token_id
        side = int(config.sample_size)
        self.spec = TokenSpec((codebook_size,), tuple(shape) if shape is not None else (side, side))
        if len(self.spec.shape) != 2:
            raise ValueError(f"shape={shape!r}: expected a 2-D token grid (h, w)")

        hidden = torch.as_tensor(null_encoder_hidden_states)
        hidden = hidden[None] if hidden.dim() == 2 else hidden
        pooled = torch.as_tensor(null_pooled_text_emb)
        pooled = pooled[None] if pooled.dim() == 1 else pooled
        if hidden.dim() != 3 or hidden.shape[0] != 1 or hidden.shape[2] != self.hidden_dim:
            raise ValueError(
                f"null_encoder_hidden_states: shape {tuple(hidden.shape)}; expected [1, S, {self.hidden_dim}] "
                f"(the UVit's encoder_hidden_size)"
            )
        if tuple(pooled.shape) != (1, self.pooled_dim):
            raise ValueError(
                f"null_pooled_text_emb: shape {tuple(pooled.shape)}; expected [1, {self.pooled_dim}] "
                f"(the UVit's cond_embed_dim)"
            )
        micro = torch.as_tensor(micro_conds, dtype=torch.float32).flatten()
        num_micro = config.micro_cond_embed_dim // config.micro_cond_encode_dim
        if micro.numel() != num_micro:
            raise ValueError(
                f"micro_conds: {micro.numel()} values; this UVit embeds {num_micro} "
                f"(micro_cond_embed_dim / micro_cond_encode_dim), e.g. amused_micro_conds(height, width)"
            )
        self.register_buffer("null_encoder_hidden_states", hidden.detach().clone())
        self.register_buffer("null_pooled_text_emb", pooled.detach().clone())
        self.register_buffer("micro_conds", micro)

    @property
    def prompt_length(self) -> int:
        """S: the prompt tokens the UVit was given with the null prompt (aMUSEd: 77, CLIP's maximum)."""
        return self.null_encoder_hidden_states.shape[1]

    def condition(self, encoder_hidden_states: torch.Tensor, pooled_text_emb: torch.Tensor) -> Condition:
        """Pack a prompt into a ``Condition``: context [B, S + 1, max(D, P)] (see the module docstring).

        encoder_hidden_states: FloatTensor[B, S, D], the text encoder's penultimate hidden states;
        pooled_text_emb: FloatTensor[B, P], its projected pooled embedding (``text_embeds``).
        """
        if encoder_hidden_states.dim() != 3 or encoder_hidden_states.shape[2] != self.hidden_dim:
            raise ValueError(
                f"encoder_hidden_states: shape {tuple(encoder_hidden_states.shape)}; expected [B, S, {self.hidden_dim}]"
            )
        b, s = encoder_hidden_states.shape[:2]
        if s != self.prompt_length:
            raise ValueError(
                f"encoder_hidden_states: {s} prompt tokens; the null prompt has {self.prompt_length} (pad prompts to "
                f"the same length, as AmusedPipeline pads to the tokenizer's maximum)"
            )
        if tuple(pooled_text_emb.shape) != (b, self.pooled_dim):
            raise ValueError(
                f"pooled_text_emb: shape {tuple(pooled_text_emb.shape)}; expected [{b}, {self.pooled_dim}]"
            )
        width = max(self.hidden_dim, self.pooled_dim)
        hidden = _pad_last(encoder_hidden_states, width)
        pooled = _pad_last(pooled_text_emb.to(hidden.dtype), width)
        return Condition(context=torch.cat([hidden, pooled[:, None]], dim=1))

    def unpack(self, cond: Condition | None, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoder_hidden_states [B, S, D], pooled_text_emb [B, P]) for every row, the null prompt's
        where ``cond`` is None, has no context, or drops the row."""
        device = self.null_encoder_hidden_states.device
        null_hidden = self.null_encoder_hidden_states.expand(batch_size, -1, -1)
        null_pooled = self.null_pooled_text_emb.expand(batch_size, -1)
        if cond is None or cond.context is None:
            if cond is not None and cond.labels is not None:
                raise ValueError("cond.labels given, but a UVit2D model has no class conditioning (num_classes=0)")
            return null_hidden, null_pooled
        if cond.labels is not None:
            raise ValueError("cond.labels given, but a UVit2D model has no class conditioning (num_classes=0)")
        context = cond.context.to(device)
        s, width = self.prompt_length, max(self.hidden_dim, self.pooled_dim)
        if tuple(context.shape) != (batch_size, s + 1, width):
            raise ValueError(
                f"cond.context: shape {tuple(context.shape)}; expected [{batch_size}, {s + 1}, {width}], a prompt "
                f"packed by UVit2DAdapter.condition(encoder_hidden_states, pooled_text_emb)"
            )
        if cond.context_mask is not None and not bool(cond.context_mask.all()):
            raise ValueError("cond.context_mask masks prompt tokens, but the UVit attends every token (no mask)")
        drop = cond.dropped(batch_size, device)
        hidden = torch.where(drop[:, None, None], null_hidden, context[:, :s, : self.hidden_dim])
        pooled = torch.where(drop[:, None], null_pooled, context[:, s, : self.pooled_dim])
        return hidden, pooled

    def forward(self, codes: torch.Tensor, cond: Condition | None = None) -> torch.Tensor:
        """codes: LongTensor[B, 1, N] (masked positions hold ``spec.mask_id``) -> logits [B, 1, N, V]."""
        if codes.dim() != 3 or codes.shape[1] != 1 or codes.shape[2] != self.spec.num_positions:
            raise ValueError(f"codes: shape {tuple(codes.shape)}; expected [B, 1, {self.spec.num_positions}]")
        b = codes.shape[0]
        if cond is not None and cond.batch_size not in (None, b):
            raise ValueError(f"cond: batch size {cond.batch_size} does not match codes' batch size {b}")
        ids = torch.where(codes[:, 0] == self.spec.mask_id, self.mask_token_id, codes[:, 0])
        hidden, pooled = self.unpack(cond, b)
        dtype = self.transformer.dtype
        logits = self.transformer(
            ids.view(b, *self.spec.shape),
            encoder_hidden_states=hidden.to(dtype),
            pooled_text_emb=pooled.to(dtype),
            micro_conds=self.micro_conds.to(dtype).expand(b, -1),
        )  # (B, V, h, w)
        return logits.flatten(2).transpose(1, 2)[:, None]  # (B, 1, N, V)


def _pad_last(x: torch.Tensor, width: int) -> torch.Tensor:
    return nn.functional.pad(x, (0, width - x.shape[-1]))


class AmusedVQ(ImageVQ):
    """``ImageVQ`` in aMUSEd's pixel convention: its VQ-GAN encodes and decodes [0, 1] images directly
    (AmusedPipeline clips the decoder's output to [0, 1]; its img2img pipeline encodes [0, 1] input)."""

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        return self.vq.encode(images).latents

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, 1, h * w] -> images FloatTensor[B, 3, H, W] in [0, 1]."""
        self.spec.check_codes(codes)
        return self.decode_latents(self.lookup(codes[:, 0])).clamp(0, 1)


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder: nn.Module, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """As AmusedPipeline encodes prompts: padded to the tokenizer's maximum length, the CLIP text
    model's penultimate hidden states [B, S, D] and its projected pooled embedding [B, P]."""
    if isinstance(prompts, str):
        prompts = [prompts]
    device = next(text_encoder.parameters()).device
    ids = tokenizer(
        list(prompts), return_tensors="pt", padding="max_length", truncation=True, max_length=tokenizer.model_max_length
    ).input_ids.to(device)
    out = text_encoder(ids, return_dict=True, output_hidden_states=True)
    return out.hidden_states[-2], out.text_embeds


def load_amused(
    source,
    *,
    micro_conditioning_crop_coord: tuple[int, int] = (0, 0),
    micro_conditioning_aesthetic_score: float = AMUSED_AESTHETIC_SCORE,
    **from_pretrained_kwargs,
) -> tuple[UVit2DAdapter, AmusedVQ]:
    """(UVit2DAdapter, AmusedVQ) from an ``AmusedPipeline`` or a diffusers aMUSEd folder / hub id.

    The adapter's null prompt is the pipeline's encoding of "" (its default negative prompt), its
    mask id the scheduler's, its micro-conditioning the pipeline's defaults for the pipeline's
    image size (``transformer.sample_size * vae_scale_factor`` pixels a side). A folder or hub id
    loads through ``AmusedPipeline.from_pretrained(source, **from_pretrained_kwargs)``.
    """
    from diffusers import AmusedPipeline  # needs transformers (the CLIP text encoder)

    if isinstance(source, (str, os.PathLike)):
        folder = os.fspath(source)
        if (os.path.exists(folder) or folder.startswith((".", "/"))) and not os.path.isfile(
            os.path.join(folder, "model_index.json")
        ):
            raise FileNotFoundError(f"{folder}: no model_index.json (expected a diffusers AmusedPipeline folder)")
        source = AmusedPipeline.from_pretrained(folder, **from_pretrained_kwargs)
    missing = [
        name
        for name in ("transformer", "vqvae", "text_encoder", "tokenizer", "scheduler")
        if getattr(source, name, None) is None
    ]
    if missing:
        raise ValueError(f"source: expected an AmusedPipeline with all its components; missing {missing}")
    transformer, vqvae = source.transformer, source.vqvae
    scale = 2 ** (len(vqvae.config.block_out_channels) - 1)
    side = transformer.config.sample_size * scale
    hidden, pooled = encode_prompts(source.tokenizer, source.text_encoder, [""])
    micro = amused_micro_conds(side, side, micro_conditioning_crop_coord, micro_conditioning_aesthetic_score)
    adapter = UVit2DAdapter(transformer, hidden, pooled, micro, mask_token_id=source.scheduler.config.mask_token_id)
    vq = AmusedVQ(vqvae, image_size=side)
    if vq.spec != adapter.spec:
        raise ValueError(f"the VQ's token spec {vq.spec} does not match the transformer's {adapter.spec}")
    return adapter, vq
