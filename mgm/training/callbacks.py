"""Callbacks: export the trained network as a self-describing folder (config.json + safetensors)."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import lightning as L
import torch


class SavePretrained(L.Callback):
    """At the end of fit, ``getattr(pl_module, attribute).save_pretrained(directory)`` on the main
    process (``attribute`` is "model" for the token models, "tokenizer" for tokenizer training)."""

    def __init__(self, directory: str, attribute: str = "model", overwrite: bool = False):
        self.directory = Path(directory)
        self.attribute = attribute
        self.overwrite = overwrite

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Fail before training, not after it, when the target is taken.
        if (self.directory / "config.json").exists() and not self.overwrite:
            raise FileExistsError(f"{self.directory} already holds a model; set overwrite: true to replace it")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            getattr(pl_module, self.attribute).save_pretrained(self.directory, overwrite=self.overwrite)


class SavePipeline(L.Callback):
    """At the end of fit, bundle the trained transformer with a saved tokenizer into a pipeline folder.

    Args:
        directory: the pipeline folder to write.
        pipeline: dotted path of the pipeline class, e.g. ``mgm.pipelines.ImagePipeline``.
        tokenizer: folder of the tokenizer the codes were made with.
        class_names: names of the class labels, stored in ``pipeline.json``.
        settings: decode defaults, ``{method: ..., <its options>}`` (``mgm.pipelines.DecodeSettings``;
            no method: the pipeline kind's default).
        tokenizer_options: keywords of the tokenizer class' ``from_pretrained`` (a VideoVQ made from
            a frame VQ folder takes ``num_frames``).
    """

    def __init__(
        self,
        directory: str,
        pipeline: str,
        tokenizer: str,
        class_names: list[str] | None = None,
        settings: dict | None = None,
        overwrite: bool = False,
        tokenizer_options: dict | None = None,
    ):
        self.directory, self.pipeline, self.tokenizer = Path(directory), pipeline, tokenizer
        self.class_names, self.settings, self.overwrite = class_names, settings or {}, overwrite
        self.tokenizer_options = tokenizer_options or {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (self.directory / "pipeline.json").exists() and not self.overwrite:
            raise FileExistsError(f"{self.directory} already holds a pipeline; set overwrite: true to replace it")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from mgm.pipelines.settings import DecodeSettings

        module_name, _, class_name = self.pipeline.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        tokenizer = cls.tokenizer_class.from_pretrained(self.tokenizer, **self.tokenizer_options)
        transformer = copy.deepcopy(pl_module.model).cpu()
        text_encoder = getattr(pl_module, "text_encoder", None)
        extra = {} if text_encoder is None else {"text_encoder": copy.deepcopy(text_encoder).cpu()}
        settings = DecodeSettings.from_config(cls.decoder_kind, self.settings)
        pipe = cls(tokenizer, transformer, settings, self.class_names, **extra)
        pipe.save_pretrained(self.directory, overwrite=self.overwrite)


class ImageSampleGrid(L.Callback):
    """At each validation, decode a grid of class-conditional samples and save it as a PNG."""

    def __init__(self, tokenizer: str, num: int = 20, num_steps: int = 12, directory: str | None = None):
        self.tokenizer_dir, self.num, self.num_steps, self.directory = tokenizer, num, num_steps, directory
        self.tokenizer = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        import torchvision

        from mgm.decoding import maskgit_decode
        from mgm.models import Condition
        from mgm.tokenizers import ImageVQ

        if self.tokenizer is None:
            self.tokenizer = ImageVQ.from_pretrained(self.tokenizer_dir)
        model = pl_module.model
        was_training = model.training
        model.eval()
        cond = None
        if model.num_classes:
            cond = Condition(labels=torch.arange(self.num, device=pl_module.device) % model.num_classes)
        generator = torch.Generator(pl_module.device).manual_seed(0)
        codes = maskgit_decode(
            model, model.spec, batch_size=self.num, num_steps=self.num_steps, cond=cond, generator=generator
        ).codes
        model.train(was_training)
        images = self.tokenizer.to(pl_module.device).decode(codes)
        directory = Path(self.directory or trainer.log_dir or ".") / "samples"
        directory.mkdir(parents=True, exist_ok=True)
        nrow = model.num_classes or None
        torchvision.utils.save_image(images, directory / f"step_{trainer.global_step:07d}.png", nrow=nrow or 8)
