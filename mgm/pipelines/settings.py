"""What a pipeline call takes besides its inputs: call options and decode settings.

``CallOptions`` (seed, batch_size, progress, output_type, callback) say how a pipeline call runs;
``DecodeSettings`` is a method name from the registry plus that method's options, the defaults a
pipeline saves in ``pipeline.json`` and every call may override. Both are validated before any
work, and an unknown name is a ValueError listing the accepted ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch

from mgm.checks import check_int
from mgm.decoding.registry import Method, default_method, get_method
from mgm.seeds import mix_seed

DEFAULT_BATCH_SIZE = 64
MAX_SEED = 2**63 - 1
# Run options a pipeline sets itself (its device; the callback is a call option), not decode settings.
PIPELINE_RUN = ("device", "callback")


@dataclass(frozen=True)
class CallOptions:
    """Args:
    seed: fixes every sample on its own (sample i gets its own generator stream derived from
        (seed, i), so it is the same whatever ``batch_size``); None = not reproducible.
    batch_size: samples decoded together.
    first_index: the index of this call's first sample in a longer run: sample i of the call is
        sample ``first_index + i`` of the run (its seed stream and, without labels, its class),
        so a run split over several calls or processes gives the samples one call would.
    progress: show a progress bar of model passes.
    output_type: "pt" (tensors), "np" (numpy arrays), "pil" (images only: PIL images).
    callback: ``callback(step, codes)`` after every decoding step of every batch.
    """

    seed: int | None = 0
    batch_size: int = DEFAULT_BATCH_SIZE
    first_index: int = 0
    progress: bool = False
    output_type: str = "pt"
    callback: Callable[[int, torch.Tensor], None] | None = None

    def __post_init__(self):
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
                raise ValueError(f"seed={self.seed!r}: expected None or an integer in [0, 2**63 - 1]")
        check_int(self.batch_size, "batch_size")
        check_int(self.first_index, "first_index", minimum=0)
        if not isinstance(self.progress, bool):
            raise ValueError(f"progress={self.progress!r}: expected True or False")
        if self.callback is not None and not callable(self.callback):
            raise ValueError(f"callback={self.callback!r}: expected None or a callable(step, codes)")


CALL_OPTIONS = tuple(f.name for f in fields(CallOptions))


def sample_generators(seed: int | None, first: int, count: int, device: torch.device) -> list | None:
    """One generator per sample ``first .. first + count - 1``, each seeded by mixing (seed, index)
    (splitmix64), so sample i's stream depends on nothing but the seed and i."""
    if seed is None:
        return None
    return [torch.Generator(device).manual_seed(mix_seed(seed, i)) for i in range(first, first + count)]


@dataclass(frozen=True)
class DecodeSettings:
    """A registered decoding method of ``kind`` ("masked" or "ar") and its options (flat: the
    method's own, the sampling options, and the run options ``dtype`` / ``compile``)."""

    kind: str
    method: str
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        entry = get_method(self.method, self.kind)
        bad = [name for name in self.options if name in PIPELINE_RUN or name not in entry.option_names]
        if bad:
            accepted = sorted(n for n in entry.option_names if n not in PIPELINE_RUN)
            raise ValueError(
                f"method {self.method!r} got unknown option(s) {sorted(bad)}; it accepts {accepted}, and every "
                f"call also takes {list(CALL_OPTIONS)}"
            )
        entry.parse(self.options)  # every value checked now, before any work

    @property
    def entry(self) -> Method:
        return get_method(self.method, self.kind)

    def update(self, method: str | None = None, **overrides) -> DecodeSettings:
        """These settings with ``overrides`` applied (None values keep the saved ones).

        Another method keeps the saved options it also accepts (the sampling options, say) and
        drops the rest; a new value of an option that others depend on (a group ``plan``) drops
        the saved values of those (``RESETS`` of the method's options class).
        """
        overrides = {k: v for k, v in overrides.items() if v is not None}
        method = self.method if method is None else method
        entry = get_method(method, self.kind)
        saved = {k: v for k, v in self.options.items() if k in entry.option_names}
        for name, dependants in getattr(entry.options, "RESETS", {}).items():
            if name in overrides and overrides[name] != saved.get(name):
                saved = {k: v for k, v in saved.items() if k not in dependants}
        return DecodeSettings(self.kind, method, {**saved, **overrides})

    def resolved(self) -> dict:
        """Every option the method takes, at the saved value or its default (for reports)."""
        return {**self.entry.defaults(), **self.options}

    def to_config(self) -> dict:
        return {"method": self.method, **{k: _jsonable(v) for k, v in self.options.items()}}

    @classmethod
    def from_config(cls, kind: str, config: dict) -> DecodeSettings:
        """The ``settings`` of a ``pipeline.json`` (or a recipe's YAML): ``{"method": ..., **options}``.

        Older folders stored ``plan_options`` (a dict), ``plan: null`` and unused keys of another
        method; they are read into the flat form here."""
        if not isinstance(config, dict):
            raise ValueError(f"settings: expected a JSON object of decode settings, got {type(config).__name__}")
        config = dict(config)
        method = config.pop("method", None) or default_method(kind)
        if not isinstance(method, str):
            raise ValueError(f"settings: method={method!r}: expected a method name")
        legacy = "plan_options" in config
        config.update(config.pop("plan_options", None) or {})
        if config.get("plan") is None:
            config.pop("plan", None)
        if legacy:  # keep what the method takes, as the old loader ignored the rest
            accepted = get_method(method, kind).option_names
            config = {k: v for k, v in config.items() if k in accepted}
            if "first_steps" in config:
                config["steps"] = config.pop("first_steps")
        return cls(kind, method, config)


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value
