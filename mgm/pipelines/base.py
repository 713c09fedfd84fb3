"""What every modality pipeline shares: a MaskedTransformer, decode defaults, labels -> Condition,
batched decoding with a progress bar, and the on-disk folder layout.

A pipeline folder holds ``pipeline.json`` (class, decode defaults, class names, extras), the
transformer in ``transformer/`` and the tokenizer in ``tokenizer/``; all weights are safetensors.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mgm.decoding import DecodeResult, get_masked_decoder
from mgm.decoding.speed import compiled, resolve_dtype
from mgm.io import load_json, save_json
from mgm.models import Condition, MaskedTransformer
from mgm.schedules import get_mask_schedule
from mgm.schedules.groups import get_group_plan
from mgm.schedules.reuse import ReusePlan

PIPELINE_CONFIG = "pipeline.json"


@dataclass(frozen=True)
class DecodeSettings:
    """Decode defaults stored with a pipeline; any of them can be overridden per call.

    ``method="group"`` decodes codebook groups by ``plan`` (a name from mgm.schedules.groups,
    with ``plan_options`` for its builder, e.g. ``{"steps": [20, 10, 10, 10]}``); then
    ``num_steps`` and ``schedule`` are not used (the plan holds them). ``method="recap"`` takes
    its reuse plan from ``plan_options`` (``full_first``, ``cheap_per_full``); with
    ``method="group"`` those keys, when present, decode each group by ReCAP's full and cheap steps.
    """

    method: str = "maskgit"
    num_steps: int = 12
    schedule: str = "cosine"
    guidance_scale: float = 0.0
    temperature: float = 1.0
    choice_temperature: float = 4.5
    plan: str | None = None
    plan_options: dict = field(default_factory=dict)
    dtype: str | None = None  # autocast dtype of the decode loop ("bfloat16", "float16"), None = the model's
    compile: bool = False  # torch.compile the transformer's forward (mode "reduce-overhead")

    def update(self, **overrides) -> DecodeSettings:
        """These settings with the non-None overrides applied, checked before any work."""
        names = {f.name for f in fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"unknown decode settings {sorted(unknown)}; expected some of {sorted(names)}")
        overrides = {k: v for k, v in overrides.items() if v is not None}
        changed = overrides.get("plan", self.plan) != self.plan or overrides.get("method", self.method) != self.method
        if changed and "plan_options" not in overrides:
            overrides["plan_options"] = {}  # another plan's or method's options would not fit this one
        new = replace(self, **overrides)
        get_masked_decoder(new.method)
        get_mask_schedule(new.schedule)
        resolve_dtype(new.dtype)
        if not isinstance(new.compile, bool):
            raise ValueError(f"compile={new.compile!r}: expected True or False")
        if new.compile and (new.method == "recap" or ReusePlan.split_options(new.plan_options)[0] is not None):
            raise ValueError("compile=True is not supported with ReCAP reuse (its cheap passes vary in shape)")
        if new.method == "group" and new.plan is None:
            raise ValueError("method='group' needs a plan (e.g. 'soundstorm', 'magnet', 'gipd')")
        if new.method == "recap":
            ReusePlan.from_options(new.plan_options)  # unknown or bad reuse options fail here
        if new.method == "group":
            ReusePlan.split_options(new.plan_options)  # bad reuse values fail here; plan keys at decode
        return new

    def decoder_kwargs(self, num_codebooks: int) -> dict:
        """The method-specific arguments of the decoder call."""
        if self.method == "group":
            reuse, options = ReusePlan.split_options(self.plan_options)
            return {"plan": get_group_plan(self.plan, num_codebooks, **options), "reuse": reuse}
        if self.method == "recap":
            return {
                "num_steps": self.num_steps,
                "schedule": self.schedule,
                "reuse": ReusePlan.from_options(self.plan_options),
            }
        return {"num_steps": self.num_steps, "schedule": self.schedule}

    def nfe(self, num_codebooks: int) -> int:
        """Forward passes per batch these settings take."""
        kwargs = self.decoder_kwargs(num_codebooks)
        return kwargs["plan"].nfe if "plan" in kwargs else self.num_steps


class _CountingModel:
    """The transformer, ticking a progress bar at each forward pass (one per decoding step)."""

    def __init__(self, model: MaskedTransformer, bar: tqdm):
        self.model, self.bar = model, bar
        self.spec, self.num_classes, self.accepts = model.spec, model.num_classes, model.accepts

    def __call__(self, codes: torch.Tensor, cond: Condition | None) -> torch.Tensor:
        logits = self.model(codes, cond)
        self.bar.update(1)
        return logits

    def forward_cached(self, codes: torch.Tensor, cond: Condition | None):
        out = self.model.forward_cached(codes, cond)
        self.bar.update(1)
        return out

    def forward_partial(self, codes: torch.Tensor, positions: torch.Tensor, cond: Condition | None, cache):
        out = self.model.forward_partial(codes, positions, cond, cache)
        self.bar.update(1)
        return out


class MaskedPipeline:
    """Base of the modality pipelines. Subclasses add the tokenizer and the modality's I/O."""

    tokenizer_class: type
    model_class: type = MaskedTransformer
    settings_class: type = DecodeSettings
    default_folder: Path | None = None  # the pipeline shipped in the package, if any
    default_recipe: str = ""  # the make target that rebuilds it
    any_length: bool = False  # 1-D tokens: the tokenizer's clip length need not be the transformer's

    def __init__(
        self,
        tokenizer,
        transformer: MaskedTransformer,
        settings: DecodeSettings | None = None,
        class_names: list[str] | None = None,
    ):
        self.check_specs(tokenizer, transformer)
        self.tokenizer = tokenizer.eval()
        self.transformer = transformer.eval()
        self.settings = settings or self.settings_class()
        self.class_names = list(class_names) if class_names else None

    @classmethod
    def default(cls, device: torch.device | str = "cpu"):
        """The small pipeline shipped in the package (``default_folder``)."""
        folder = cls.default_folder
        if folder is None or not (folder / PIPELINE_CONFIG).is_file():
            raise FileNotFoundError(
                f"the shipped {cls.__name__} is missing from {folder}; pass a pipeline folder "
                f"(train one with `make {cls.default_recipe}`)"
            )
        return cls.from_pretrained(folder, device)

    @classmethod
    def check_specs(cls, tokenizer, transformer) -> None:
        """The tokenizer's tokens must be what the transformer models: the same spec, or with
        ``any_length`` the same codebooks (subclasses may relax it further)."""
        if cls.any_length:
            if tokenizer.spec.codebook_sizes != transformer.spec.codebook_sizes:
                raise ValueError(
                    f"tokenizer codebooks {tokenizer.spec.codebook_sizes} do not match the transformer's "
                    f"{transformer.spec.codebook_sizes}"
                )
        elif tokenizer.spec != transformer.spec:
            raise ValueError(f"tokenizer spec {tokenizer.spec} does not match the transformer's {transformer.spec}")

    @property
    def spec(self):
        return self.transformer.spec

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def num_classes(self) -> int:
        return self.transformer.num_classes

    def to(self, device: torch.device | str):
        self.tokenizer.to(device)
        self.transformer.to(device)
        return self

    # -- conditions -----------------------------------------------------------------------------

    def resolve_labels(self, num: int, labels) -> torch.Tensor | None:
        """LongTensor[num] of class labels, or None for an unconditional model.

        ``labels=None`` cycles through all classes; a shorter list is cycled to ``num``.
        """
        if self.num_classes == 0:
            if labels is not None:
                raise ValueError("labels given, but this pipeline's model has no classes")
            return None
        if labels is None:
            labels = torch.arange(num) % self.num_classes
        labels = torch.as_tensor(labels, dtype=torch.long).flatten().cpu()
        if labels.numel() == 0:
            raise ValueError("labels: expected at least one label")
        bad = (labels < 0) | (labels >= self.num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"labels: {labels[bad][0].item()} is not a class of this model; expected labels in "
                f"[0, {self.num_classes - 1}]"
            )
        return labels.repeat(num // labels.numel() + 1)[:num]

    # -- decoding -------------------------------------------------------------------------------

    def decode_codes(
        self,
        num: int,
        labels: torch.Tensor | None,
        settings: DecodeSettings,
        seed: int | None = 0,
        init_codes: torch.Tensor | None = None,
        editable: torch.Tensor | None = None,
        batch_size: int = 64,
        progress: bool = False,
        spec=None,
        condition: Condition | None = None,
    ) -> DecodeResult:
        """Decode ``num`` samples in batches of ``batch_size`` -> one DecodeResult (codes [num, K, N]).

        ``spec``: the token spec to decode (default the model's; 1-D models also take shorter ones).
        ``condition``: a Condition of ``num`` rows (e.g. caption contexts) instead of ``labels``.
        The result's ``trace`` is the first batch's (every batch runs the same steps).
        """
        decoder = get_masked_decoder(settings.method)
        spec = spec or self.spec
        method_kwargs = settings.decoder_kwargs(spec.num_codebooks)
        device = self.device
        generator = torch.Generator(device).manual_seed(seed) if seed is not None else None
        codes, nfe, compute, trace = [], 0, 0.0, None
        starts = range(0, num, batch_size)
        total = len(starts) * settings.nfe(spec.num_codebooks)
        bar = tqdm(total=total, desc="decoding", unit="step", disable=not progress)
        model = _CountingModel(compiled(self.transformer) if settings.compile else self.transformer, bar)
        for start in starts:
            stop = min(num, start + batch_size)
            if condition is not None:
                cond = condition.select(slice(start, stop)).to(device)
            else:
                cond = None if labels is None else Condition(labels=labels[start:stop].to(device))
            result = decoder(
                model,
                spec,
                batch_size=stop - start,
                cond=cond,
                guidance_scale=settings.guidance_scale if cond else 0.0,
                temperature=settings.temperature,
                choice_temperature=settings.choice_temperature,
                init_codes=None if init_codes is None else init_codes[start:stop].to(device),
                editable=None if editable is None else editable[start:stop].to(device),
                generator=generator,
                device=device,
                dtype=settings.dtype,
                **method_kwargs,
            )
            codes.append(result.codes)
            nfe += result.nfe
            compute += result.compute
            trace = result.trace if trace is None else trace
        bar.close()
        return DecodeResult(codes=torch.cat(codes), nfe=nfe, trace=trace, compute=compute)

    # -- save / load ----------------------------------------------------------------------------

    def extra_config(self) -> dict:
        return {}

    def save_pretrained(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        directory = Path(directory)
        if (directory / PIPELINE_CONFIG).exists() and not overwrite:
            raise FileExistsError(f"{directory} already holds a pipeline; pass overwrite=True to replace it")
        self.tokenizer.save_pretrained(directory / "tokenizer", overwrite=overwrite)
        self.transformer.save_pretrained(directory / "transformer", overwrite=overwrite)
        config = {
            "_class_name": type(self).__name__,
            "settings": asdict(self.settings),
            "class_names": self.class_names,
            **self.extra_config(),
        }
        save_json(config, directory / PIPELINE_CONFIG, overwrite=overwrite)  # written last: marks it complete
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: torch.device | str = "cpu"):
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such directory (expected a saved {cls.__name__})")
        config = load_json(directory / PIPELINE_CONFIG)
        if config.get("_class_name") != cls.__name__:
            raise ValueError(f"{directory}: holds a {config.get('_class_name')}, not a {cls.__name__}")
        tokenizer = cls.tokenizer_class.from_pretrained(directory / "tokenizer")
        transformer = cls.model_class.from_pretrained(directory / "transformer")
        settings = cls.settings_class(**config.get("settings", {}))
        extra = cls.load_extra(directory, config)
        return cls(tokenizer, transformer, settings, config.get("class_names"), **extra).to(device)

    @classmethod
    def load_extra(cls, directory: Path, config: dict) -> dict:
        """Constructor arguments beyond the tokenizer and transformer that a subclass saved."""
        return {}
