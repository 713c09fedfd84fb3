"""The decoding methods of a shipped pipeline, as ``TimedMethod`` rows for benchmarks/decode_speed.py.

``pipeline_methods("image" | "audio" | "motion", ...)`` loads the pipeline shipped in the package
and times its own token loop (``MaskedPipeline.decode_codes``, no tokenizer decode) with its own
decode settings, without and with its guidance; a MaskGIT pipeline also gets ReCAP's default reuse.
Conditions cycle through the classes; a text-conditioned pipeline gets one caption for every row.
"""

from __future__ import annotations

import torch

from benchmarks.timed import TimedMethod, autocast, precision
from mgm.decoding.maskgit import MASKGIT
from mgm.decoding.recap import RECAP
from mgm.models import Condition
from mgm.pipelines.settings import CallOptions, DecodeSettings

PIPELINES = ("image", "audio", "motion")
DEFAULT_CAPTION = "a person walks forward"  # only read by text-conditioned pipelines (motion)


def load_pipeline(name: str, device):
    from mgm.pipelines import AudioPipeline, ImagePipeline, MotionPipeline

    classes = {"image": ImagePipeline, "audio": AudioPipeline, "motion": MotionPipeline}
    if name not in classes:
        raise ValueError(f"pipeline={name!r}: expected one of {sorted(classes)}")
    return classes[name].default(device)


def passes_per_decode(settings: DecodeSettings, num_codebooks: int) -> int:
    """The model passes one decode with ``settings`` runs: a group plan's steps over all its groups,
    else the method's ``num_steps``."""
    own = settings.entry.parse(settings.options)[2]
    return own.group_plan(num_codebooks).nfe if hasattr(own, "group_plan") else own.num_steps


def describe(pipe) -> dict:
    s = pipe.settings
    options = s.resolved()
    return {
        "spec": repr(pipe.spec),
        "parameters_m": sum(p.numel() for p in pipe.transformer.parameters()) / 1e6,
        "method": s.method,
        "plan": options.get("plan"),
        "passes": passes_per_decode(s, pipe.spec.num_codebooks),
        "guidance_scale": options["guidance_scale"],
        "temperature": options["temperature"],
        "settings": s.to_config(),
    }


def pipeline_methods(
    name: str, device, dtype: torch.dtype, compile: bool, cast: bool = False, caption: str = DEFAULT_CAPTION
) -> tuple[list[TimedMethod], object]:
    """(methods, the pipeline). Guidance is reported in aMUSEd's convention: g = 1 + the pipeline's scale."""
    pipe = load_pipeline(name, device)
    if cast:
        pipe.transformer.to(dtype)
    loop_dtype, dtype_name = precision(dtype, cast)
    base = pipe.settings.update(dtype=None if loop_dtype == torch.float32 else str(loop_dtype).removeprefix("torch."))
    variants = [base.update(compile=compile)]
    if base.method == MASKGIT.name:
        variants.append(base.update(method=RECAP.name))  # ReCAP refuses compile
    text = getattr(pipe, "text_encoder", None) is not None
    methods = []
    for settings in variants:
        for scale in (0.0, pipe.settings.resolved()["guidance_scale"]):
            methods.append(_pipeline_method(pipe, name, settings.update(guidance_scale=scale), device, text, caption))
    for m in methods:
        m.dtype = dtype_name
    return methods, pipe


def _pipeline_method(pipe, name, settings: DecodeSettings, device, text: bool, caption: str) -> TimedMethod:
    options = settings.resolved()
    scale = options["guidance_scale"]
    passes = passes_per_decode(settings, pipe.spec.num_codebooks)
    last = {}

    conditions: dict[int, Condition | None] = {}

    def condition(batch: int) -> Condition | None:
        """Made once per batch size, so no timed run encodes the caption."""
        if batch not in conditions:
            labels = pipe.resolve_labels(batch, None)
            if text:
                conditions[batch] = pipe.condition([caption], batch, labels)
            else:
                conditions[batch] = None if labels is None else Condition(labels=labels)
        return conditions[batch]

    def run(batch: int) -> torch.Tensor:
        call = CallOptions(seed=0, batch_size=batch)
        res = pipe.decode_codes(batch, call, settings, condition=condition(batch))
        last["nfe"], last["compute"] = res.nfe, res.compute
        return res.codes.flatten(1)

    def step(batch: int):
        codes, cond = pipe.spec.full_mask(batch, device), condition(batch)
        cond = None if cond is None else cond.to(device)
        if scale > 0 and cond is not None:
            codes, cond = torch.cat([codes, codes]), Condition.cat([cond, cond.null()])
        with torch.inference_mode(), autocast(device, getattr(torch, options.get("dtype") or "float32")):
            return pipe.transformer(codes, cond)

    method = settings.method + (f" {options['plan']}" if options.get("plan") else "")
    guided = scale > 0
    return TimedMethod(
        name=f"mgm {name} pipeline · {method}",
        family="mgm",
        guided=guided,
        guidance=1.0 + scale,
        run=run,
        step=step,
        nfe=lambda b: float(last.get("nfe", passes)),
        full_passes=lambda b: float(last.get("compute", passes)) * (2 if guided else 1),
        timed="MaskedPipeline.decode_codes (token loop; no tokenizer decode)",
        settings={"decode_settings": repr(settings), "caption": caption if text else None},
    )
