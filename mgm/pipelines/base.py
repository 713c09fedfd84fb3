"""What every modality pipeline shares: a transformer, decode defaults, labels -> Condition,
batched decoding with per-sample seeds and a progress bar, output types, and the folder layout.

One calling convention for every pipeline method (``generate`` and the editing methods):
``method(<inputs>, *, <conditions>, **options)`` where ``options`` are the call options
(``CallOptions``: seed, batch_size, progress, output_type, callback) and the decode options of
the registered method (``method=`` and its options, e.g. ``num_steps``, ``guidance_scale``).

A pipeline folder holds ``pipeline.json`` (class, decode defaults, class names, extras), the
transformer in ``transformer/`` and the tokenizer in ``tokenizer/`` (and a token critic in
``critic/`` where one was trained, for the "critic" method); all weights are safetensors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mgm.checks import check_device
from mgm.decoding import DecodeResult
from mgm.decoding.registry import AR, MASKED
from mgm.hub import HubMixin, resolve_folder
from mgm.io import atomic_folder, check_config, check_folder, check_manifest, load_json, save_json
from mgm.models import Condition, CriticModel, MaskedTransformer, TokenCritic
from mgm.models.critic import check_critic_fits
from mgm.models.protocols import ModelWrapper
from mgm.pipelines.settings import CALL_OPTIONS, CallOptions, DecodeSettings, sample_generators
from mgm.tokens import TokenSpec

PIPELINE_CONFIG = "pipeline.json"


class _CountingModel(ModelWrapper):
    """The transformer, ticking a progress bar at each forward pass."""

    def __init__(self, model, bar: tqdm):
        super().__init__(model)
        self.bar = bar

    def __call__(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        self.bar.update(1)
        return out

    def __getattr__(self, name: str):
        # The model's declared passes tick too; a pass the model lacks stays absent (None).
        inner = super().__getattr__(name)
        if name not in COUNTED_PASSES or inner is None:
            return inner

        def counted(*args, **kwargs):
            out = inner(*args, **kwargs)
            self.bar.update(1)
            return out

        return counted


COUNTED_PASSES = ("forward_cached", "forward_partial", "critic_scores")  # model traits that are passes


DECODE_CHUNK = 64  # samples the tokenizer decodes at once (``Pipeline.decode_tokens``)


class Pipeline(HubMixin):
    """Base of every pipeline. Subclasses set the tokenizer and model classes, the decoder kind
    ("masked" or "ar") and the modality's inputs and outputs."""

    tokenizer_class: type
    model_class: type = MaskedTransformer
    decoder_kind: str = MASKED
    output_types: tuple[str, ...] = ("pt", "np")
    default_folder: Path | None = None  # the pipeline shipped in the package, if any
    default_recipe: str = ""  # the make target that rebuilds it
    any_length: bool = False  # 1-D tokens: the tokenizer's clip length need not be the transformer's

    def __init__(self, tokenizer, transformer, settings: DecodeSettings | dict | None = None,
                 class_names: Sequence[str] | None = None):  # fmt: skip
        self.check_specs(tokenizer, transformer)
        if settings is None or isinstance(settings, dict):
            settings = DecodeSettings.from_config(self.decoder_kind, settings or {})
        if not isinstance(settings, DecodeSettings) or settings.kind != self.decoder_kind:
            raise ValueError(f"settings={settings!r}: expected {self.decoder_kind} DecodeSettings or a dict of them")
        self.class_names = self.check_class_names(class_names, transformer.num_classes)
        self.tokenizer = tokenizer.eval()
        self.transformer = transformer.eval()
        self.settings = settings
        self._critic = None

    @property
    def critic(self) -> TokenCritic | None:
        """The token critic over the transformer's hidden states (``mgm.models.critic``), or None."""
        return self._critic

    @critic.setter
    def critic(self, critic: TokenCritic | None) -> None:
        if critic is not None:
            if not isinstance(critic, TokenCritic):
                raise ValueError(f"critic: expected a mgm.models.TokenCritic or None, got {type(critic).__name__}")
            check_critic_fits(critic, self.transformer)
            critic = critic.eval().to(self.device)
        self._critic = critic

    def decodable_model(self):
        """What decoders drive: the transformer, with its token critic where the pipeline has one."""
        return self.transformer if self._critic is None else CriticModel(self.transformer, self._critic)

    @staticmethod
    def check_class_names(class_names, num_classes: int) -> list[str] | None:
        """None, or one distinct non-empty name per class of the model."""
        if class_names is None or (isinstance(class_names, (list, tuple)) and not class_names):
            return None
        if not isinstance(class_names, (list, tuple)) or not all(isinstance(n, str) and n for n in class_names):
            raise ValueError(f"class_names={class_names!r}: expected None or a list of non-empty names")
        if len(class_names) != num_classes or len(set(class_names)) != len(class_names):
            raise ValueError(
                f"class_names: {len(class_names)} names for a model of {num_classes} classes; expected one "
                f"distinct name per class"
            )
        return list(class_names)

    @classmethod
    def default(cls, device: torch.device | str = "cpu"):
        """The small pipeline shipped in the package (``default_folder``)."""
        device = check_device(device)
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
    def spec(self) -> TokenSpec:
        return self.transformer.spec

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def num_classes(self) -> int:
        return self.transformer.num_classes

    def to(self, device: torch.device | str):
        device = check_device(device)
        self.tokenizer.to(device)
        self.transformer.to(device)
        if self._critic is not None:
            self._critic.to(device)
        return self

    # -- options --------------------------------------------------------------------------------

    def split_options(self, options: dict) -> tuple[CallOptions, DecodeSettings]:
        """A call's keyword options -> (CallOptions, the decode settings with its overrides),
        every value checked before any work."""
        call = CallOptions(**{k: v for k, v in options.items() if k in CALL_OPTIONS})
        if call.output_type not in self.output_types:
            raise ValueError(f"output_type={call.output_type!r}: expected one of {list(self.output_types)}")
        decode = {k: v for k, v in options.items() if k not in CALL_OPTIONS}
        return call, self.settings.update(**decode)

    @staticmethod
    def check_num(num: object) -> int:
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"num={num!r}: expected an integer >= 1")
        return num

    @torch.no_grad()
    def decode_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """``tokenizer.decode`` of codes [B, K, N], DECODE_CHUNK rows at a time, so the tokenizer's
        activations stay one chunk's however many samples a call makes. The chunk does not follow
        ``batch_size``: a sample's pixels (audio, motion) then do not depend on the batch split."""
        return torch.cat(
            [self.tokenizer.decode(codes[i : i + DECODE_CHUNK]) for i in range(0, len(codes), DECODE_CHUNK)]
        )

    def convert(self, x: torch.Tensor, output_type: str):
        """A batch tensor -> the requested output type ("pt" as it is, "np" a numpy array)."""
        return x if output_type == "pt" else np.asarray(x.detach().cpu().numpy())

    # -- conditions -----------------------------------------------------------------------------

    def resolve_labels(self, num: int, labels, first: int = 0) -> torch.Tensor | None:
        """LongTensor[num] of class labels, or None for an unconditional model.

        ``labels=None`` cycles through all classes; a shorter list is cycled to ``num``; ``num``
        labels are one per sample. Labels are class indices (ints) or, where the pipeline has class
        names, those names. ``first``: the run's index of the first sample (``CallOptions.first_index``),
        where a cycle starts.
        """
        if self.num_classes == 0:
            if labels is not None:
                raise ValueError("labels given, but this pipeline's model has no classes")
            return None
        if labels is None:
            return (first + torch.arange(num)) % self.num_classes
        labels = self._label_ids(labels)
        if labels.numel() > num:
            raise ValueError(f"labels: {labels.numel()} labels for num={num} samples; expected at most {num} (cycled)")
        bad = (labels < 0) | (labels >= self.num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"labels: {labels[bad][0].item()} is not a class of this model; expected labels in "
                f"[0, {self.num_classes - 1}]"
            )
        if labels.numel() == num:  # one per sample of this call
            return labels
        return labels[(first + torch.arange(num)) % labels.numel()]

    def _label_ids(self, labels) -> torch.Tensor:
        if isinstance(labels, torch.Tensor):
            if labels.dtype.is_floating_point or labels.dtype == torch.bool:
                raise ValueError(f"labels: expected integer class ids, got a {labels.dtype} tensor")
            values = labels.flatten().tolist()
        else:
            values = list(labels) if isinstance(labels, (list, tuple)) else [labels]
        ids = []
        for value in values:
            if isinstance(value, str):
                if not self.class_names or value not in self.class_names:
                    raise ValueError(f"labels: {value!r} is not a class name; expected one of {self.class_names}")
                value = self.class_names.index(value)
            elif isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"labels: {value!r} is not a class id; expected integers (or class names)")
            ids.append(int(value))
        if not ids:
            raise ValueError("labels: expected at least one label")
        return torch.tensor(ids, dtype=torch.long)

    # -- decoding -------------------------------------------------------------------------------

    def decode_codes(
        self,
        num: int,
        call: CallOptions,
        settings: DecodeSettings,
        *,
        labels: torch.Tensor | None = None,
        condition: Condition | None = None,
        init_codes: torch.Tensor | None = None,
        editable: torch.Tensor | None = None,
        spec: TokenSpec | None = None,
    ) -> DecodeResult:
        """Decode ``num`` samples in batches of ``call.batch_size`` -> one DecodeResult (codes
        [num, K, N]; ``nfe`` sums the batches' passes, which run one after another).

        ``spec``: the token spec to decode (default the model's; 1-D models also take shorter ones).
        ``condition``: a Condition of ``num`` rows (e.g. caption contexts) instead of ``labels``.
        Sample i is decoded with its own generator from (seed, i), whatever the batch split.
        """
        spec = spec or self.spec
        entry, device = settings.entry, self.device
        options = dict(settings.options, callback=call.callback)
        if condition is None and labels is not None:
            condition = Condition(labels=labels)
        if condition is None or condition.batch_size is None:
            options["guidance_scale"] = 0.0  # nothing to guide towards (unconditional model)
        results = []
        with tqdm(desc="decoding", unit="pass", disable=not call.progress) as bar:
            model = _CountingModel(self.decodable_model(), bar)
            for start in range(0, num, call.batch_size):
                rows = slice(start, min(num, start + call.batch_size))
                count = rows.stop - rows.start
                cond = None if condition is None else condition.select(rows).to(device)
                generator = sample_generators(call.seed, call.first_index + start, count, device)
                results.append(
                    self.decode_batch(entry, model, spec, cond, generator, count, options,
                                      None if init_codes is None else init_codes[rows].to(device),
                                      None if editable is None else editable[rows].to(device))
                )  # fmt: skip
        return DecodeResult.cat(results)

    def decode_batch(self, entry, model, spec, cond, generator, count, options, init_codes, editable) -> DecodeResult:
        """One batch through the registered decoder (masked pipelines; the AR pipeline overrides it)."""
        return entry.decode(
            model, spec, batch_size=count, cond=cond, generator=generator, init_codes=init_codes,
            editable=editable, device=self.device, **options,
        )  # fmt: skip

    # -- save / load ----------------------------------------------------------------------------

    def extra_config(self) -> dict:
        return {}

    def save_pretrained(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the pipeline folder (``pipeline.json``, ``tokenizer/``, ``transformer/`` and a
        subclass's parts), whole or not at all (``mgm.io.atomic_folder``)."""
        directory = Path(directory)
        with atomic_folder(directory, overwrite) as built:
            self.save_parts(built)
            config = {
                "_class_name": type(self).__name__,
                "settings": self.settings.to_config(),
                "class_names": self.class_names,
                **self.extra_config(),
            }
            save_json(config, built / PIPELINE_CONFIG)
        return directory

    def save_parts(self, folder: Path) -> None:
        """Write the components into ``folder`` (a fresh folder being built)."""
        self.tokenizer.save_pretrained(folder / "tokenizer")
        self.transformer.save_pretrained(folder / "transformer")
        if self._critic is not None:
            self._critic.save_pretrained(folder / "critic")

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        device: torch.device | str = "cpu",
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
    ):
        """Load a pipeline folder, or a hub id ("org/name") of one through huggingface_hub's cache
        (``mgm.hub``: ``revision``, ``cache_dir``, ``local_files_only``; offline with
        HF_HUB_OFFLINE). ``pipeline.json`` is checked against the pipeline's constructor
        (``mgm.io.check_config``) and its decode settings against the registry before the
        components load (each checked the same way)."""
        directory = resolve_folder(
            directory, f"a saved {cls.__name__}", PIPELINE_CONFIG, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only,
        )  # fmt: skip
        device = check_device(device)
        check_manifest(directory)
        path = directory / PIPELINE_CONFIG
        config = load_json(path)
        if config.get("_class_name") != cls.__name__:
            raise ValueError(f"{directory}: holds a {config.get('_class_name')}, not a {cls.__name__}")
        check_config(config, cls, path, given=("tokenizer", "transformer"))
        try:
            settings = DecodeSettings.from_config(cls.decoder_kind, config.get("settings", {}))
        except ValueError as e:
            raise ValueError(f"{path}: settings: {e}") from e
        extra = cls.load_extra(directory, config)
        tokenizer = cls.tokenizer_class.from_pretrained(check_folder(directory / "tokenizer", "the tokenizer"))
        transformer = cls.model_class.from_pretrained(check_folder(directory / "transformer", "the transformer"))
        try:  # the parts must fit together, and the class names the transformer's classes
            pipe = cls(tokenizer, transformer, settings, config.get("class_names"), **extra)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
        if (directory / "critic").exists():
            try:
                pipe.critic = TokenCritic.from_pretrained(check_folder(directory / "critic", "the token critic"))
            except ValueError as e:
                raise ValueError(f"{directory / 'critic'}: {e}") from e
        return pipe.to(device)

    @classmethod
    def load_extra(cls, directory: Path, config: dict) -> dict:
        """Constructor arguments beyond the tokenizer and transformer that a subclass saved."""
        return {}


class MaskedPipeline(Pipeline):
    """Base of the masked-transformer pipelines (image, audio, motion)."""

    decoder_kind = MASKED


__all__ = ["AR", "MASKED", "DecodeSettings", "MaskedPipeline", "Pipeline", "PIPELINE_CONFIG"]
