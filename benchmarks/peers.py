"""The decoding methods that benchmarks/decode_speed.py times: mgm's decoders and the peers, built at one shape.

Every method is a ``Method``: ``run(batch)`` decodes ``batch`` samples and returns codes [B, N];
``step(batch)`` runs the model work of one decoding step (for FLOP counting and the forward's
achieved throughput). All models are randomly initialised from the same ``Shape``:

- mgm maskgit / recap on ``MaskedTransformer`` and muse-maskgit-pytorch's ``MaskGit.generate`` on its
  ``MaskGitTransformer`` share width, depth, heads, MLP width, sequence length, vocabulary, steps and a
  text context of the same length and width (random embeddings: the text encoder is not timed).
- diffusers' ``AmusedPipeline`` and mgm maskgit through ``UVit2DAdapter`` share ONE ``UVit2DModel``
  (+ ``VQModel``, + a small ``CLIPTextModelWithProjection`` built from a config). The pipeline gets
  precomputed prompt embeddings and ``output_type="latent"``, so its timed call is the token loop
  (no text encoder, no VQ decode), as mgm's is.

Guidance is given in aMUSEd's convention ``uncond + g * (cond - uncond)`` (g = 1: none), which is
muse-maskgit-pytorch's ``cond_scale``; mgm's ``cond + s * (cond - uncond)`` gets s = g - 1.
Only this file imports the peers; each is skipped with a reason when its package is missing.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable
from copy import deepcopy
from dataclasses import asdict, dataclass, field

import torch

from mgm.decoding import maskgit_decode, recap_decode
from mgm.models import Condition, MaskedTransformer


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


class PeerMissing(RuntimeError):
    """A peer's package is not installed (or cannot run here): the benchmark skips its rows."""


@dataclass
class Method:
    """One row family of the table: a decoder on a model, at one guidance setting."""

    name: str
    family: str  # "mgm" or the peer's package
    guided: bool
    guidance: float  # aMUSEd's convention (1 = none)
    run: Callable[[int], torch.Tensor]  # batch -> codes [B, N]
    step: Callable[[int], object]  # batch -> one decoding step's model work
    nfe: Callable[[int], float]  # batch -> model calls per decode
    full_passes: Callable[[int], float]  # batch -> per-sample full-sequence forward rows / N per decode
    timed: str  # what the timed call covers
    settings: dict = field(default_factory=dict)
    reveals: Callable[[], list[int]] | None = None  # tokens revealed at each step of one batch-1 decode
    dtype: str = "float32"  # how the model runs: "float32", "bfloat16 autocast", "bfloat16 weights"
    fallback: Callable[[], Method] | None = None  # the same method in float32, where this one fails to run


# -- shared inputs --------------------------------------------------------------------------------


_CONTEXTS: dict[tuple, torch.Tensor] = {}


def prompt_context(shape: Shape, batch: int, device) -> torch.Tensor:
    """Random prompt embeddings [B, S, text_dim], made once per batch size and device (so no timed
    run pays for them); non-zero, as muse reads all-zero rows as padding."""
    key = (shape, batch, str(device))
    if key not in _CONTEXTS:
        g = torch.Generator().manual_seed(0)
        _CONTEXTS[key] = torch.randn(batch, shape.prompt_length, shape.text_dim, generator=g).to(device)
    return _CONTEXTS[key]


def mgm_guidance(guidance: float) -> float:
    return guidance - 1.0


def speed_kwargs(decoder: Callable, dtype: torch.dtype, compile: bool) -> tuple[dict, bool]:
    """The keyword arguments for ``decoder``'s speed options where it has them (``dtype`` or
    ``autocast_dtype``; ``compile``), and whether the caller must autocast itself instead."""
    params = inspect.signature(decoder).parameters
    kwargs, outer_autocast = {}, False
    if dtype != torch.float32:
        name = next((n for n in ("dtype", "autocast_dtype") if n in params), None)
        if name is None:
            outer_autocast = True
        else:
            kwargs[name] = dtype
    if compile and "compile" in params:
        kwargs["compile"] = True
    return kwargs, outer_autocast


def autocast(device: torch.device, dtype: torch.dtype, enabled: bool = True):
    """torch.autocast in ``dtype`` (a no-op for float32 or when not ``enabled``)."""
    if not enabled or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# -- mgm on MaskedTransformer ------------------------------------------------------------------


def build_masked_transformer(shape: Shape, device) -> MaskedTransformer:
    torch.manual_seed(0)
    model = MaskedTransformer(
        [shape.codebook_size], [shape.side, shape.side], dim=shape.dim, depth=shape.depth,
        num_heads=shape.num_heads, mlp_ratio=shape.ff_mult, context_dim=shape.text_dim,
    )  # fmt: skip
    return model.to(device).eval()


def precision(dtype: torch.dtype, cast: bool) -> tuple[torch.dtype, str]:
    """(the dtype the decode loop autocasts to, the report's name for it). With ``cast`` the weights
    are stored in ``dtype`` and nothing autocasts (diffusers' ``torch_dtype`` path)."""
    name = str(dtype).removeprefix("torch.")
    if dtype == torch.float32:
        return torch.float32, name
    return (torch.float32, f"{name} weights") if cast else (dtype, f"{name} autocast")


def mgm_methods(shape: Shape, device, dtype, compile: bool, guidances: list[float], cast: bool = False) -> list[Method]:
    model = build_masked_transformer(shape, device).to(dtype if cast else torch.float32)
    methods = []
    for decoder, name in (
        (maskgit_decode, "mgm maskgit_decode · MaskedTransformer"),
        (recap_decode, "mgm recap_decode (2 full, then 1 cheap per full) · MaskedTransformer"),
    ):
        for g in guidances:
            methods.append(_mgm_method(model, decoder, name, shape, device, dtype, compile, g, cast=cast))
    return methods


def _mgm_method(
    model, decoder, name, shape, device, dtype, compile, guidance, *, cond_for=None, extra=None, described=None,
    cast=False,
):  # fmt: skip
    """An mgm decoder on ``model``; ``extra`` are decoder arguments, ``described`` how the report names them.
    With ``cast`` the model's weights are already in ``dtype``."""
    dtype, dtype_name = precision(dtype, cast)
    cond_for = cond_for or (lambda b: Condition(context=prompt_context(shape, b, device)))
    extra = dict(extra or {})
    use_compile = compile and decoder is maskgit_decode  # recap refuses compile (its cheap passes vary in shape)
    kwargs, outer = speed_kwargs(decoder, dtype, use_compile)
    scale = mgm_guidance(guidance)
    guided = scale > 0
    last = {}

    def run(batch: int) -> torch.Tensor:
        g = torch.Generator(device=device).manual_seed(0)
        with autocast(device, dtype, outer):
            res = decoder(
                model, model.spec, batch_size=batch, num_steps=shape.num_steps, cond=cond_for(batch),
                guidance_scale=scale, generator=g, **extra, **kwargs,
            )  # fmt: skip
        last["compute"], last["nfe"], last["trace"] = res.compute, res.nfe, res.trace
        return res.codes[:, 0]

    def reveals() -> list[int]:
        run(1)
        return [int(record.revealed[0]) for record in last["trace"]]

    def step(batch: int):
        codes = model.spec.full_mask(batch, device)
        cond = cond_for(batch)
        if guided:
            codes, cond = torch.cat([codes, codes]), Condition.cat([cond, cond.null()])
        with torch.inference_mode(), autocast(device, dtype):
            return model(codes, cond)

    return Method(
        name=name,
        family="mgm",
        guided=guided,
        guidance=guidance,
        run=run,
        step=step,
        nfe=lambda b: float(last.get("nfe", shape.num_steps)),
        full_passes=lambda b: float(last.get("compute", shape.num_steps)) * (2 if guided else 1),
        reveals=reveals,
        dtype=dtype_name,
        timed="maskgit/recap decode call (token loop; condition precomputed)",
        settings={"guidance_scale_mgm": scale, "speed_kwargs": {k: str(v) for k, v in kwargs.items()},
                  "outer_autocast": outer, **(described or extra)},
    )  # fmt: skip


# -- muse-maskgit-pytorch -----------------------------------------------------------------------


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


def muse_methods(shape: Shape, device, dtype, guidances: list[float], cast: bool = False) -> list[Method]:
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

    def fallback(g: float) -> Method:
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


def _muse_method(maskgit, transformer, shape, device, loop_dtype, dtype_name, g, fallback) -> Method:
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

    return Method(
        name="muse-maskgit-pytorch MaskGit.generate · MaskGitTransformer",
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


# -- diffusers aMUSEd and mgm through UVit2DAdapter ------------------------------------------------


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
) -> list[Method]:
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
            Method(
                name="diffusers AmusedPipeline · UVit2DModel",
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
            _mgm_method(
                adapter,
                maskgit_decode,
                "mgm maskgit_decode · UVit2DAdapter(UVit2DModel)",
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


def machine_name(device: torch.device) -> str:
    """The GPU (with CUDA and torch versions) or the CPU (with its thread count) a row ran on."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}, torch {torch.__version__}"
    return f"{cpu_name()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}"


def check_run_args(parser, args) -> None:
    """The --repeats and --device checks both speed scripts share (argparse errors, before any work)."""
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats}: expected an integer >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (run the CPU subset with --device cpu)")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def quiet_peers() -> None:
    """Silence the peers' progress bars and deprecation chatter before they are imported."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()
    except ImportError:
        pass


__all__ = [
    "Method", "PeerMissing", "SHAPES", "Shape", "all_methods", "check_run_args", "cpu_name", "machine_name",
    "quiet_peers",
]  # fmt: skip
