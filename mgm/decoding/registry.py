"""Every decoding method, registered once: its function, its own options class and its kind.

Pipelines, ``generate.py``, ``mgm-eval``, the benchmarks and ``--help`` read method names,
options and defaults from here; no method name is spelt anywhere else. Adding a decoder is one
file (the loop and its frozen options) plus one ``register(...)`` call at its end, and an import
in ``mgm/decoding/__init__.py``.

Kinds: "masked" decoders take ``(model, spec, *, batch_size, cond, generator, init_codes,
editable, **options)``; "ar" decoders take ``(model, length, *, batch_size, cond, generator,
prefix, **options)``; "flex-ar" decoders (parallel decoding of a flexible-order AR model,
``mgm.models.FlexARTransformer``) take the masked signature: the grid, the canvas and editing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from mgm.decoding.options import (
    AR_RUN,
    FLEX_AR_RUN,
    MASKED_ONLY_SAMPLING,
    RunOptions,
    SamplingOptions,
    option_names,
    parse_options,
)

MASKED, AR, FLEX_AR = "masked", "ar", "flex-ar"
KINDS = (MASKED, AR, FLEX_AR)
DEFAULT_METHODS = {MASKED: "maskgit", AR: "ar", FLEX_AR: "arpg"}  # what a pipeline of each kind decodes with by default


@dataclass(frozen=True)
class Method:
    """One decoding method: ``decode`` is the public function, ``options`` its own frozen options."""

    name: str
    decode: Callable
    options: type
    kind: str
    summary: str
    needs: tuple[str, ...] = ()  # model traits (mgm.models.protocols) the method cannot run without

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {KINDS}")

    @property
    def sampling_names(self) -> tuple[str, ...]:
        names = option_names(SamplingOptions)
        return names if self.kind == MASKED else tuple(n for n in names if n not in MASKED_ONLY_SAMPLING)

    @property
    def run_names(self) -> tuple[str, ...]:
        return {MASKED: option_names(RunOptions), AR: AR_RUN, FLEX_AR: FLEX_AR_RUN}[self.kind]

    @property
    def own_names(self) -> tuple[str, ...]:
        return option_names(self.options)

    @property
    def option_names(self) -> tuple[str, ...]:
        """Every keyword option the method accepts."""
        return self.own_names + self.sampling_names + self.run_names

    def defaults(self) -> dict:
        """The method's own options and the sampling options it takes, at their defaults."""
        own = {f.name: f.default for f in fields(self.options)}
        sampling = SamplingOptions()
        return {**own, **{n: getattr(sampling, n) for n in self.sampling_names}}

    def parse(self, options: dict) -> tuple[SamplingOptions, RunOptions, object]:
        """(SamplingOptions, RunOptions, own options) from flat keywords; ValueError on a bad one."""
        return parse_options(
            options, self.options, self.name, sampling_names=self.sampling_names, run_names=self.run_names
        )


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS and METHODS[method.name].decode is not method.decode:
        raise ValueError(f"a decoding method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def method_names(kind: str | None = None) -> tuple[str, ...]:
    """Registered method names (of one kind, or all), in registration order."""
    return tuple(name for name, m in METHODS.items() if kind is None or m.kind == kind)


def get_method(name: str, kind: str | None = None) -> Method:
    """The registered method ``name`` (of ``kind`` when given); ValueError listing the known ones."""
    known = method_names(kind)
    if not isinstance(name, str) or name not in known:
        what = f"{kind} decoding method" if kind else "decoding method"
        raise ValueError(f"method={name!r} is not a known {what}; expected one of {list(known)}")
    return METHODS[name]


def default_method(kind: str) -> str:
    """The method a pipeline of ``kind`` uses when its settings name none."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
    return DEFAULT_METHODS[kind]
