"""mgm's rows of benchmarks/decode_speed.py: registered masked decoders on a randomly initialised model.

``mgm_methods`` times maskgit and recap on a ``MaskedTransformer`` at one ``Shape`` (the model the
muse-maskgit-pytorch peer copies); ``mgm_method`` is one such row on any masked model callable (the
aMUSEd peer uses it on ``UVit2DAdapter``). Decoders and their speed options come from the registry.
"""

from __future__ import annotations

import torch

from benchmarks.shapes import Shape, prompt_context
from benchmarks.timed import TimedMethod, autocast, mgm_guidance, precision, speed_kwargs
from mgm.decoding.maskgit import MASKGIT
from mgm.decoding.recap import RECAP, RecapOptions
from mgm.decoding.registry import Method
from mgm.models import Condition, MaskedTransformer

_REUSE = RecapOptions()
# The row names; decode_speed.py pairs each with its peer's.
MASKGIT_ROW = f"mgm {MASKGIT.decode.__name__} · MaskedTransformer"
RECAP_ROW = (
    f"mgm {RECAP.decode.__name__} ({_REUSE.full_first} full, then {_REUSE.cheap_per_full} cheap per full) "
    "· MaskedTransformer"
)
ADAPTER_ROW = f"mgm {MASKGIT.decode.__name__} · UVit2DAdapter(UVit2DModel)"


def build_masked_transformer(shape: Shape, device) -> MaskedTransformer:
    torch.manual_seed(0)
    model = MaskedTransformer(
        [shape.codebook_size], [shape.side, shape.side], dim=shape.dim, depth=shape.depth,
        num_heads=shape.num_heads, mlp_ratio=shape.ff_mult, context_dim=shape.text_dim,
    )  # fmt: skip
    return model.to(device).eval()


def mgm_methods(
    shape: Shape, device, dtype, compile: bool, guidances: list[float], cast: bool = False
) -> list[TimedMethod]:
    model = build_masked_transformer(shape, device).to(dtype if cast else torch.float32)
    methods = []
    for method, name in ((MASKGIT, MASKGIT_ROW), (RECAP, RECAP_ROW)):
        for g in guidances:
            methods.append(mgm_method(model, method, name, shape, device, dtype, compile, g, cast=cast))
    return methods


def mgm_method(
    model, method: Method, name, shape, device, dtype, compile, guidance, *, cond_for=None, extra=None,
    described=None, cast=False,
) -> TimedMethod:  # fmt: skip
    """The registered decoder ``method`` on ``model``; ``extra`` are its options, ``described`` how the
    report names them. With ``cast`` the model's weights are already in ``dtype``."""
    dtype, dtype_name = precision(dtype, cast)
    cond_for = cond_for or (lambda b: Condition(context=prompt_context(shape, b, device)))
    extra = dict(extra or {})
    use_compile = compile and method is MASKGIT  # recap refuses compile (its cheap passes vary in shape)
    kwargs, outer = speed_kwargs(method, dtype, use_compile)
    scale = mgm_guidance(guidance)
    guided = scale > 0
    last = {}

    def run(batch: int) -> torch.Tensor:
        g = torch.Generator(device=device).manual_seed(0)
        with autocast(device, dtype, outer):
            res = method.decode(
                model, model.spec, batch_size=batch, cond=cond_for(batch), generator=g, num_steps=shape.num_steps,
                guidance_scale=scale, **extra, **kwargs,
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

    return TimedMethod(
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
