"""What decoders may read off a model, declared once.

Any callable with the right signature can be decoded; these attributes are optional, and a
decoder reads them only through ``model_traits`` (one place, no ``getattr`` probing elsewhere).
A wrapper around a model (a progress counter, a compiled module) subclasses ``ModelWrapper``,
which answers every declared attribute from the wrapped model.

Masked model: ``model(codes[B, K, N], cond) -> logits[B, K, N, V]``, optionally with
    spec (TokenSpec), num_classes (int), accepts(K, N) -> bool (shorter 1-D clips),
    forward_cached / forward_partial (feature reuse), critic_scores(codes, cond) -> [B, K, N]
    (a token critic: ``mgm.models.critic.CriticModel``).
AR model: ``model(tokens[B, L], cond, cache=None) -> logits[B, L + 1, V]``, optionally with
    vocab_size (int), max_length (int), num_classes (int), row_cache (True: it honours an
    ``KVCache`` with per-row lengths, ``mgm.models.cache``).
Flexible-order AR model (``mgm.models.FlexARTransformer``): spec, num_classes, and
    forward_group(tokens[B, M], positions[B, M], targets[B, Q], cond, cache, token_mask=None,
    target_mask=None) -> logits[B, Q, V] (the last group's tokens enter the cache, the next
    group's positions are predicted); the "flex-ar" decoders need it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from mgm.models.conditioning import Condition
from mgm.tokens import TokenSpec

MODEL_TRAITS = (
    "spec", "num_classes", "accepts", "vocab_size", "max_length", "forward_cached", "forward_partial", "critic_scores",
    "row_cache", "forward_group",
)  # fmt: skip


class MaskedModel(Protocol):
    def __call__(self, codes: torch.Tensor, cond: Condition | None) -> torch.Tensor: ...


class ARModel(Protocol):
    def __call__(self, tokens: torch.Tensor, cond: Condition | None, cache=None) -> torch.Tensor: ...


@dataclass(frozen=True)
class ModelTraits:
    """The optional attributes of a model (None where it does not declare one)."""

    spec: TokenSpec | None = None
    num_classes: int | None = None
    accepts: Callable[[int, int], bool] | None = None
    vocab_size: int | None = None
    max_length: int | None = None
    forward_cached: Callable | None = None
    forward_partial: Callable | None = None
    critic_scores: Callable | None = None
    row_cache: bool | None = None
    forward_group: Callable | None = None


def model_traits(model: object) -> ModelTraits:
    """The declared attributes of ``model`` (the one place decoders look them up)."""
    return ModelTraits(**{name: getattr(model, name, None) for name in MODEL_TRAITS})


class ModelWrapper:
    """Base of model wrappers: calls go to ``self.model``; declared attributes are the model's."""

    def __init__(self, model):
        self.model = model

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def unwrapped(self):
        """The innermost wrapped model."""
        inner = self.model
        return inner.unwrapped() if isinstance(inner, ModelWrapper) else inner

    def rewrapped(self, inner) -> ModelWrapper:
        """This wrapper around ``inner`` instead (e.g. the compiled model), sharing everything else."""
        wrapper = copy.copy(self)
        wrapper.model = inner if not isinstance(self.model, ModelWrapper) else self.model.rewrapped(inner)
        return wrapper

    def __getattr__(self, name: str):
        # Only reached when normal lookup fails; forwards the declared traits and nothing else.
        if name in MODEL_TRAITS:
            return getattr(self.__dict__["model"], name, None)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
