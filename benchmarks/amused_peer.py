"""The diffusers peer: ``AmusedPipeline`` against mgm's maskgit through ``UVit2DAdapter`` on the SAME
randomly initialised ``UVit2DModel`` (+ ``VQModel``, + a small ``CLIPTextModelWithProjection`` built
from a config). The pipeline gets precomputed prompt embeddings and ``output_type="latent"``, so its
timed call is the token loop (no text encoder, no VQ decode), as mgm's is.
"""

from __future__ import annotations

import torch

from benchmarks.mgm_methods import ADAPTER_ROW, mgm_method
from benchmarks.shapes import NUM_MICRO_CONDS, Shape
from benchmarks.timed import PeerMissing, TimedMethod, autocast, precision
from mgm.decoding.maskgit import MASKGIT

AMUSED_ROW = "diffusers AmusedPipeline · UVit2DModel"


def build_amused(shape: Shape, device):
    """A randomly initialised AmusedPipeline at ``shape`` (no tokenizer: prompts are embeddings)."""
    try:
        from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    except ImportError as e:
        raise PeerMissing(f"diffusers' AmusedPipeline needs transformers ({e}); pip install '.[bench]'") from e
    torch.manual_seed(0)
    vocab_size = shape.codebook_size + 1 if shape.codebook_size < 1024 else shape.codebook_size + 64  # aMUSEd rounds
    transformer = UVit2DModel(
        hidden_size=shape.dim, cond_embed_dim=shape.pooled_dim, micro_cond_encode_dim=shape.micro_cond_encode_dim,
        micro_cond_embed_dim=NUM_MICRO_CONDS * shape.micro_cond_encode_dim, encoder_hidden_size=shape.text_dim,
        vocab_size=vocab_size, codebook_size=shape.codebook_size, in_channels=shape.in_channels,
        block_out_channels=shape.block_out_channels, num_res_blocks=shape.num_res_blocks,
        block_num_heads=shape.block_num_heads, num_hidden_layers=shape.depth, num_attention_heads=shape.num_heads,
        intermediate_size=shape.intermediate_size, sample_size=shape.side, hidden_dropout=0.0, attention_dropout=0.0,
    )  # fmt: skip
    n = len(shape.vq_channels)
    vqvae = VQModel(
        block_out_channels=list(shape.vq_channels), down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n, latent_channels=8, layers_per_block=1,
        norm_num_groups=min(8, min(shape.vq_channels)), num_vq_embeddings=shape.codebook_size,
        sample_size=shape.side * 2 ** (n - 1), lookup_from_codebook=True,
    )  # fmt: skip
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=1000, hidden_size=shape.text_dim, intermediate_size=2 * shape.text_dim, num_hidden_layers=2,
            num_attention_heads=max(1, shape.text_dim // 64), projection_dim=shape.pooled_dim,
            max_position_embeddings=shape.prompt_length, bos_token_id=0, pad_token_id=1, eos_token_id=2,
        )
    )  # fmt: skip
    scheduler = AmusedScheduler(mask_token_id=vocab_size - 1)
    pipe = AmusedPipeline(vqvae, None, text_encoder, transformer, scheduler).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def _encode_ids(text_encoder, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = text_encoder(ids, return_dict=True, output_hidden_states=True)
    return out.hidden_states[-2], out.text_embeds


def amused_methods(
    shape: Shape, device, dtype, compile: bool, guidances: list[float], cast: bool = False
) -> list[TimedMethod]:
    from mgm.models.uvit import UVit2DAdapter, amused_mask_schedule, amused_micro_conds

    pipe = build_amused(shape, device)
    if cast:  # as AmusedPipeline.from_pretrained(..., torch_dtype=dtype)
        pipe.to(dtype=dtype)
    loop_dtype, dtype_name = precision(dtype, cast)
    encoder, s = pipe.text_encoder, shape.prompt_length
    # The empty prompt as CLIP tokenizes it: start, end, then padding.
    null_ids = torch.tensor([[0, 2] + [1] * (s - 2)], device=device)
    null_hidden, null_pooled = _encode_ids(encoder, null_ids)
    pixels = shape.side * pipe.vae_scale_factor
    adapter = UVit2DAdapter(
        pipe.transformer, null_hidden, null_pooled, amused_micro_conds(pixels, pixels),
        mask_token_id=pipe.scheduler.config.mask_token_id,
    ).to(device)  # fmt: skip
    prompts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def prompt(batch: int):
        if batch not in prompts:
            g = torch.Generator().manual_seed(0)
            ids = torch.randint(3, 1000, (batch, s), generator=g)
            ids[:, 0], ids[:, -1] = 0, 2
            prompts[batch] = _encode_ids(encoder, ids.to(device))
        return prompts[batch]

    methods = []
    for g in guidances:
        guided = g > 1

        def run_pipe(batch: int, g=g) -> torch.Tensor:
            hidden, pooled = prompt(batch)
            with autocast(device, loop_dtype):
                latents = pipe(
                    prompt_embeds=pooled, encoder_hidden_states=hidden,
                    negative_prompt_embeds=null_pooled.expand(batch, -1),
                    negative_encoder_hidden_states=null_hidden.expand(batch, -1, -1),
                    num_inference_steps=shape.num_steps, guidance_scale=g, output_type="latent",
                    generator=torch.Generator(device=device).manual_seed(0),
                ).images  # fmt: skip
            return latents.flatten(1)

        def reveals_pipe(g=g) -> list[int]:
            """Read from the masked tokens the pipeline's transformer sees at each call."""
            masked, mask_id = [], pipe.scheduler.config.mask_token_id

            def count(module, args, kwargs):
                ids = args[0] if args else kwargs["input_ids"]
                masked.append(int((ids[0] == mask_id).sum()))

            hook = pipe.transformer.register_forward_pre_hook(count, with_kwargs=True)
            try:
                run_pipe(1, g)
            finally:
                hook.remove()
            return [before - after for before, after in zip(masked, masked[1:] + [0])]

        def step_pipe(batch: int, g=g):
            hidden, pooled = prompt(batch)
            rows = 2 * batch if g > 1 else batch
            ids = torch.full((rows, shape.side, shape.side), pipe.scheduler.config.mask_token_id, device=device)
            micro = amused_micro_conds(pixels, pixels).to(device).expand(rows, -1)
            hidden, pooled = (torch.cat([hidden, hidden]), torch.cat([pooled, pooled])) if g > 1 else (hidden, pooled)
            with torch.inference_mode(), autocast(device, loop_dtype):
                return pipe.transformer(ids, encoder_hidden_states=hidden, pooled_text_emb=pooled, micro_conds=micro)

        methods.append(
            TimedMethod(
                name=AMUSED_ROW,
                family="diffusers",
                guided=guided,
                guidance=g,
                run=run_pipe,
                step=step_pipe,
                nfe=lambda b: float(shape.num_steps),
                full_passes=lambda b, guided=guided: float(shape.num_steps * (2 if guided else 1)),
                timed='AmusedPipeline.__call__ with precomputed prompt embeddings, output_type="latent" (token loop)',
                settings={"guidance_scale": g, "temperature": "(2, 0)", "schedule": "cosine"},
                reveals=reveals_pipe,
                dtype=dtype_name,
            )
        )
        methods.append(
            mgm_method(
                adapter,
                MASKGIT,
                ADAPTER_ROW,
                shape,
                device,
                dtype,
                compile,
                g,
                cond_for=lambda b: adapter.condition(*prompt(b)),
                extra={"schedule": amused_mask_schedule("cosine"), "choice_temperature": 2.0},
                described={
                    "schedule": "amused_mask_schedule('cosine') (float32, as AmusedScheduler)",
                    "choice_temperature": 2.0,
                },
                cast=cast,
            )  # fmt: skip
        )
    return methods
