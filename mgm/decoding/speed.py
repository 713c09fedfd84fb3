"""Speed options shared by the masked decoders: reduced-precision autocast and torch.compile.

Neither changes the decode loop. ``dtype`` runs the loop under ``torch.autocast`` (the model's
matmuls in bfloat16 / float16; sampling reads the logits in float32, ``sample_and_score``).
``compile=True`` runs the model's forward through ``torch.compile`` (``mode="reduce-overhead"``,
i.e. CUDA graphs, on a GPU). Every step feeds the model the same shapes (the whole canvas, and with
guidance the conditional and null rows as one batch), so one compiled graph serves every step.
"""

from __future__ import annotations

import contextlib
import weakref

import torch
from torch import nn

from mgm.models.protocols import ModelWrapper

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """None, a torch dtype or its name ("bfloat16", "float16", "float32") -> a torch dtype or None."""
    if dtype is None or dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype={dtype!r}: expected None or one of {sorted(DTYPES)}")


def check_speed_args(dtype: str | torch.dtype | None, compile: bool, model: object) -> torch.dtype | None:
    """Checks both options before any work; returns the resolved dtype."""
    resolved = resolve_dtype(dtype)
    if not isinstance(compile, bool):
        raise ValueError(f"compile={compile!r}: expected True or False")
    if compile and not isinstance(model, nn.Module):
        raise ValueError(f"compile=True needs an nn.Module model; got {type(model).__name__}")
    return resolved


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` on ``device`` in ``dtype``; a no-op context for None or float32."""
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def compiled(model: nn.Module) -> CompiledModel:
    """The model behind ``torch.compile``, compiled once per model object and compile mode.

    On a GPU the mode is "reduce-overhead" (each pass captured as a CUDA graph); elsewhere the
    default mode (inductor's fused kernels; CUDA graphs do not apply). The forward compiles with
    static shapes (every step feeds the whole canvas); the feature-reuse passes too, each on its
    own: ``forward_cached`` static, ``forward_partial`` with dynamic shapes, since its query count
    changes from step to step (cached decoding and ReCAP). The result shares the model's
    parameters and answers its declared traits (``spec``...).
    """
    param = next(iter(model.parameters()), None)
    mode = "reduce-overhead" if param is not None and param.is_cuda else "default"
    per_mode = _COMPILED.setdefault(model, {})
    if mode not in per_mode:
        per_mode[mode] = CompiledModel(model, mode)
    return per_mode[mode]


class CompiledModel(ModelWrapper):
    """A model's forward and its declared passes (``forward_cached``, ``forward_partial``) each
    through ``torch.compile``, compiled on first use."""

    DYNAMIC = {"forward_cached": False, "forward_partial": True}  # the passes compiled, and their shapes

    def __init__(self, model: nn.Module, mode: str):
        super().__init__(model)
        self.mode = mode
        self.forward = torch.compile(model, mode=mode, dynamic=False)
        self.passes: dict[str, object] = {}

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __getattr__(self, name: str):
        if name in CompiledModel.DYNAMIC:
            method = getattr(self.__dict__["model"], name, None)
            if method is None:
                return None
            passes = self.__dict__["passes"]
            if name not in passes:
                passes[name] = torch.compile(method, mode=self.__dict__["mode"], dynamic=CompiledModel.DYNAMIC[name])
            return passes[name]
        return super().__getattr__(name)
