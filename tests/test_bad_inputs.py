"""The catalogue of bad inputs (issue 18): every public function and CLI answers each one with a
named error before any work, and leaves nothing behind.

Each table is a list of cases, each case named by its id; one small runner per table:
- ``DECODERS``: the decoders and the token-level API, with tiny hand-made models;
- ``PIPELINES``: the shipped pipelines' ``generate`` and editing methods, the file readers and writers;
- ``LOADING``: a saved tiny model / tokenizer / pipeline copied, corrupted, then loaded;
- ``GENERATE_CLI`` and ``EVALUATE_CLI``: ``mgm-generate`` and ``mgm-eval`` called in-process (and a
  few as real subprocesses): exit status 2, one ``error: ...`` line on stderr, no traceback, and
  no output file or folder created.

A case passes when the call raises the expected exception (ValueError for a bad value or type,
FileNotFoundError / FileExistsError for paths) whose message names the argument and, where it
has one, the bad value. A failing case says which way it failed: ACCEPTED (no error), WRONG-TYPE
(another exception, e.g. a torch error from deep inside), MESSAGE (the right type, but a message
that does not name the argument), LEFT-BEHIND (a refused call that wrote something).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mgm.decoding import ar_decode, group_decode, maskgit_decode, recap_decode, sjd_decode
from mgm.models import ARTransformer, Condition, MaskedTransformer
from mgm.tokens import TokenSpec

ROOT = Path(__file__).resolve().parents[1]
INF, NAN = float("inf"), float("nan")


def case(id: str, call, match: str, exc: type[BaseException] = ValueError):
    """One catalogue entry: ``call(env)`` must raise ``exc`` with a message matching ``match``."""
    return pytest.param(call, exc, match, id=id)


def named(name: str, value) -> str:
    """The regex of ``name=<repr(value)>``, as the project's messages spell a bad argument."""
    return re.escape(f"{name}={value!r}")


def expect_refusal(call, exc, match):
    try:
        call()
    except exc as e:
        if not re.search(match, str(e)):
            pytest.fail(f"MESSAGE: {type(e).__name__}: {e!s:.300} (expected to match {match!r})")
        return e
    except Exception as e:  # noqa: BLE001 (the catalogue classifies what went wrong)
        pytest.fail(f"WRONG-TYPE: {type(e).__name__}: {e!s:.300} (expected {exc.__name__} matching {match!r})")
    pytest.fail(f"ACCEPTED: no error (expected {exc.__name__} matching {match!r})")


# -- the components every table uses, built or loaded once -------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from mgm.models.text import WordTextEncoder
    from mgm.pipelines import ARImagePipeline, AudioPipeline, ImagePipeline, MotionPipeline
    from mgm.tokenizers import EncodecTokenizer, ImageVQ, MotionVQ

    torch.manual_seed(0)
    masked = MaskedTransformer([8], [4, 4], dim=16, depth=1, num_heads=2, num_classes=3).eval()
    audio_model = MaskedTransformer([8, 8], [6], dim=16, depth=1, num_heads=2, num_classes=3).eval()
    ar = ARTransformer(vocab_size=8, max_length=8, dim=16, depth=1, num_heads=2, num_classes=3).eval()
    vq = ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4).eval()
    saved = tmp_path_factory.mktemp("saved")
    folders = {
        "model": masked.save_pretrained(saved / "model"),
        "ar": ar.save_pretrained(saved / "ar"),
        "vq": vq.save_pretrained(saved / "vq"),
        "codec": EncodecTokenizer.small(seconds=0.2).save_pretrained(saved / "codec"),
        "motion_vq": MotionVQ(codebook_size=16, code_dim=8, width=16, depth=1, max_frames=40).save_pretrained(
            saved / "motion_vq"
        ),
        "text": WordTextEncoder(dim=16, depth=1, num_heads=2, num_buckets=64).save_pretrained(saved / "text"),
        "pipeline": ImagePipeline(
            vq, MaskedTransformer([32], [8, 8], dim=16, depth=1, num_heads=2, num_classes=3), {"num_steps": 2},
            ["a", "b", "c"],
        ).save_pretrained(saved / "pipeline"),
    }  # fmt: skip
    image, audio, motion = ImagePipeline.default(), AudioPipeline.default(), MotionPipeline.default()
    g = torch.Generator().manual_seed(0)
    return SimpleNamespace(
        masked=masked, audio_model=audio_model, ar=ar, cond=Condition(labels=torch.tensor([0, 1])),
        codes=torch.randint(8, (2, 1, 16), generator=g), folders=folders,
        image=image, ar_image=ARImagePipeline.default(), audio=audio, motion=motion,
        images=torch.rand(2, 3, 32, 32, generator=g), half=_half_mask(32),
        clip=torch.rand(1, 1, 8000, generator=g) * 0.2, walk=torch.zeros(1, 40, 263),
    )  # fmt: skip


def _half_mask(size: int) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[:, size // 2 :] = True
    return mask


# == 1. decoders and the token-level API ======================================================

# (option, bad value) for the sampling options every decoder shares; masked decoders take all.
SAMPLING = [
    ("guidance_scale", INF), ("guidance_scale", NAN), ("guidance_scale", "1.0"), ("guidance_scale", True),
    ("guidance_scale", -1.0),
    ("temperature", INF), ("temperature", NAN), ("temperature", "1.0"), ("temperature", True),
    ("temperature", -0.5),
    ("top_k", 0), ("top_k", 1.5), ("top_k", True), ("top_k", "4"),
    ("top_p", 0.0), ("top_p", 1.5), ("top_p", -0.1), ("top_p", NAN), ("top_p", "0.9"),
    ("guidance_annealing", "sideways"),
]  # fmt: skip
MASKED_SAMPLING = [
    ("choice_temperature", INF), ("choice_temperature", NAN), ("choice_temperature", "1.0"),
    ("choice_temperature", True), ("choice_temperature_annealing", "sideways"),
]  # fmt: skip


def _maskgit(e, **options):
    return maskgit_decode(e.masked, e.masked.spec, cond=e.cond, **options)


def _ar(e, **options):
    return ar_decode(e.ar, 8, cond=e.cond, **options)


def _meta_codes(e):
    return torch.zeros(2, 1, 16, dtype=torch.long, device="meta")


DECODERS = [
    *[case(f"maskgit-{n}={v!r}", lambda e, n=n, v=v: _maskgit(e, **{n: v}), named(n, v))
      for n, v in SAMPLING + MASKED_SAMPLING],
    *[case(f"ar-{n}={v!r}", lambda e, n=n, v=v: _ar(e, **{n: v}), named(n, v)) for n, v in SAMPLING],
    case("maskgit-top_k-larger-than-vocab", lambda e: _maskgit(e, top_k=9), r"top_k=9.*vocabulary of 8"),
    case("ar-top_k-larger-than-vocab", lambda e: _ar(e, top_k=9), r"top_k=9.*vocabulary of 8"),
    case("ar-choice_temperature-is-masked-only", lambda e: _ar(e, choice_temperature=1.0), r"choice_temperature"),
    case("ar-dtype-is-masked-only", lambda e: _ar(e, dtype="bfloat16"), r"unknown option.*dtype"),
    *[case(f"maskgit-batch_size={v!r}", lambda e, v=v: maskgit_decode(e.masked, e.masked.spec, batch_size=v),
           named("batch_size", v)) for v in (0, -1, 1.5, True, "2")],
    *[case(f"ar-batch_size={v!r}", lambda e, v=v: ar_decode(e.ar, 8, batch_size=v), named("batch_size", v))
      for v in (0, 1.5, True)],
    *[case(f"maskgit-num_steps={v!r}", lambda e, v=v: _maskgit(e, num_steps=v), named("num_steps", v))
      for v in (0, -1, 2.5, True, "4")],
    case("maskgit-unknown-schedule", lambda e: _maskgit(e, schedule="zigzag"), named("schedule", "zigzag")),
    case("maskgit-schedule-not-a-name", lambda e: _maskgit(e, schedule=3), named("schedule", 3)),
    case("maskgit-unknown-option", lambda e: _maskgit(e, num_stpes=3), r"unknown option.*num_stpes"),
    case("maskgit-device=cuda:99", lambda e: _maskgit(e, device="cuda:99"), r"device='cuda:99'"),
    case("maskgit-device=nonsense", lambda e: _maskgit(e, device="nonsense"), r"device='nonsense'"),
    case("maskgit-device=3.5", lambda e: _maskgit(e, device=3.5), r"device=3\.5"),
    case("ar-device=cuda:99", lambda e: _ar(e, device="cuda:99"), r"device='cuda:99'"),
    case("maskgit-callback-not-callable", lambda e: _maskgit(e, callback=3), named("callback", 3)),
    case("ar-callback-not-callable", lambda e: _ar(e, callback="print"), named("callback", "print")),
    case("maskgit-dtype=int8", lambda e: _maskgit(e, dtype="int8"), named("dtype", "int8")),
    case("maskgit-compile=yes", lambda e: _maskgit(e, compile="yes"), named("compile", "yes")),
    case("maskgit-init_codes-on-meta", lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=_meta_codes(e)),
         r"init_codes.*meta"),
    case("maskgit-init_codes-float", lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes.float()),
         r"init_codes.*float32"),
    case("maskgit-init_codes-wrong-shape",
         lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes[..., :10]), r"init_codes.*\(2, 1, 10\)"),
    case("maskgit-init_codes-rank-2", lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes[:, 0]),
         r"init_codes.*rank 3"),
    case("maskgit-init_codes-out-of-range",
         lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes + 20), r"init_codes\[0, 0, \d+\] = 2\d"),
    case("maskgit-init_codes-negative",
         lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes - 9), r"init_codes\[0, 0, \d+\] = -"),
    case("maskgit-init_codes-a-list",
         lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes.tolist()), r"init_codes.*list"),
    case("maskgit-init_codes-empty-batch",
         lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes[:0]), r"init_codes.*\(0, 1, 16\)"),
    case("maskgit-editable-not-bool",
         lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes, editable=torch.ones(16)),
         r"editable.*float32"),
    case("maskgit-editable-wrong-shape",
         lambda e: maskgit_decode(e.masked, e.masked.spec, init_codes=e.codes,
                                  editable=torch.ones(5, dtype=torch.bool)), r"editable: shape \(5,\)"),
    case("maskgit-editable-without-init_codes",
         lambda e: maskgit_decode(e.masked, e.masked.spec, editable=torch.ones(16, dtype=torch.bool)),
         r"editable given without init_codes"),
    case("maskgit-labels-out-of-range",
         lambda e: maskgit_decode(e.masked, e.masked.spec, cond=Condition(labels=torch.tensor([3]))),
         r"cond\.labels.*3.*\[0, 2\]"),
    case("maskgit-labels-float",
         lambda e: maskgit_decode(e.masked, e.masked.spec, cond=Condition(labels=torch.tensor([1.5]))),
         r"labels.*float"),
    case("maskgit-cond-batch-mismatch", lambda e: maskgit_decode(e.masked, e.masked.spec, batch_size=3, cond=e.cond),
         r"cond: batch size 2 does not match batch_size=3"),
    case("maskgit-cond-not-a-Condition", lambda e: maskgit_decode(e.masked, e.masked.spec, cond=[0, 1]),
         r"cond: expected None or a mgm\.models\.Condition, got list"),
    case("maskgit-guidance-without-cond", lambda e: maskgit_decode(e.masked, e.masked.spec, guidance_scale=2.0),
         r"guidance_scale=2\.0 needs a condition"),
    case("maskgit-generator-list-wrong-length",
         lambda e: maskgit_decode(e.masked, e.masked.spec, batch_size=3, generator=[torch.Generator()] * 2),
         r"generator: a list of 2 generators for a batch of 3"),
    case("maskgit-generator-a-seed", lambda e: maskgit_decode(e.masked, e.masked.spec, generator=0),
         r"generator: expected None, a torch\.Generator"),
    case("maskgit-spec-not-a-TokenSpec", lambda e: maskgit_decode(e.masked, (8, 16)), r"spec: expected a mgm"),
    case("maskgit-spec-mismatch", lambda e: maskgit_decode(e.masked, TokenSpec((8,), (5,))), r"spec=.*does not match"),
    case("maskgit-model-not-callable", lambda e: maskgit_decode("model", e.masked.spec), r"model: expected a callable"),
    case("recap-full_first=0", lambda e: recap_decode(e.masked, e.masked.spec, full_first=0), r"full_first=0"),
    case("recap-cheap_per_full=-1", lambda e: recap_decode(e.masked, e.masked.spec, cheap_per_full=-1),
         r"cheap_per_full=-1"),
    case("recap-cheap_per_full=1.5", lambda e: recap_decode(e.masked, e.masked.spec, cheap_per_full=1.5),
         r"cheap_per_full=1\.5"),
    case("recap-num_steps=0", lambda e: recap_decode(e.masked, e.masked.spec, num_steps=0), named("num_steps", 0)),
    case("group-unknown-plan", lambda e: group_decode(e.audio_model, e.audio_model.spec, plan="diag"),
         r"plan='diag'"),
    case("group-steps=0", lambda e: group_decode(e.audio_model, e.audio_model.spec, steps=0), r"steps.*0"),
    case("group-steps-with-a-zero", lambda e: group_decode(e.audio_model, e.audio_model.spec, steps=[3, 0]),
         r"steps.*0"),
    case("group-steps=1.5", lambda e: group_decode(e.audio_model, e.audio_model.spec, steps=1.5), r"steps.*1\.5"),
    case("group-num_steps-is-not-its-option", lambda e: group_decode(e.audio_model, e.audio_model.spec, num_steps=4),
         r"unknown option.*num_steps"),
    case("group-magnet-span=0", lambda e: group_decode(e.audio_model, e.audio_model.spec, plan="magnet", span=0),
         r"span=0"),
    case("group-magnet-guidance_low=nan",
         lambda e: group_decode(e.audio_model, e.audio_model.spec, plan="magnet", guidance_low=NAN),
         r"guidance_low=nan"),
    case("group-gipd-group_size=0",
         lambda e: group_decode(e.audio_model, e.audio_model.spec, plan="gipd", group_size=0), r"group_size=0"),
    case("group-span-on-soundstorm", lambda e: group_decode(e.audio_model, e.audio_model.spec, span=2),
         r"plan 'soundstorm' does not take \['span'\]"),
    *[case(f"ar-length={v!r}", lambda e, v=v: ar_decode(e.ar, v), named("length", v)) for v in (0, 1.5, True)],
    case("ar-length-beyond-the-model", lambda e: ar_decode(e.ar, 9), r"length=9: the model takes at most 8"),
    case("ar-prefix-float", lambda e: ar_decode(e.ar, 8, prefix=torch.zeros(2, 3)), r"prefix.*float32"),
    case("ar-prefix-out-of-range", lambda e: ar_decode(e.ar, 8, prefix=torch.full((2, 3), 8)),
         r"prefix.*\[0, 7\]"),
    case("ar-prefix-on-meta", lambda e: ar_decode(e.ar, 8, prefix=torch.zeros(2, 3, dtype=torch.long, device="meta")),
         r"prefix.*meta"),
    case("ar-prefix-longer-than-length", lambda e: ar_decode(e.ar, 4, prefix=torch.zeros(2, 5, dtype=torch.long)),
         r"prefix: 5 tokens is longer than length=4"),
    case("ar-labels-out-of-range", lambda e: ar_decode(e.ar, 8, cond=Condition(labels=torch.tensor([5]))),
         r"cond\.labels.*5.*\[0, 2\]"),
    case("ar-labels-float", lambda e: ar_decode(e.ar, 8, cond=Condition(labels=torch.tensor([0.5]))),
         r"labels.*float"),
    case("ar-generator-list-with-a-seed", lambda e: ar_decode(e.ar, 8, batch_size=2, generator=[torch.Generator(), 3]),
         r"generator: expected None, a torch\.Generator.*got int"),
    *[case(f"sjd-window={v!r}", lambda e, v=v: sjd_decode(e.ar, 8, window=v), named("window", v))
      for v in (0, 1.5, True)],
    case("sjd-unknown-init", lambda e: sjd_decode(e.ar, 8, init="diag"), named("init", "diag")),
    case("sjd-init-above-without-row_length", lambda e: sjd_decode(e.ar, 8, init="above"), r"row_length=None"),
    case("sjd-row_length=0", lambda e: sjd_decode(e.ar, 8, init="above", row_length=0), r"row_length=0"),
    case("sjd-top_p=2", lambda e: sjd_decode(e.ar, 8, top_p=2.0), r"top_p=2\.0"),
    case("sjd-device=nonsense", lambda e: sjd_decode(e.ar, 8, device="nonsense"), r"device='nonsense'"),
    case("TokenSpec-codebook-size-0", lambda e: TokenSpec((0,), (4,)), r"codebook_sizes=\(0,\)"),
    case("TokenSpec-codebook-size-8.7", lambda e: TokenSpec((8.7,), (4,)), r"codebook_sizes=\(8\.7,\)"),
    case("TokenSpec-codebook-size-True", lambda e: TokenSpec((True,), (4,)), r"codebook_sizes=\(True,\)"),
    case("TokenSpec-shape-1.5", lambda e: TokenSpec((8,), (1.5,)), r"shape=\(1\.5,\)"),
    case("TokenSpec-shape-a-string", lambda e: TokenSpec((8,), "ab"), r"shape='ab'"),
    case("masked_counts-num_steps=0", lambda e: _masked_counts(num_steps=0), named("num_steps", 0)),
    case("masked_counts-unknown-schedule", lambda e: _masked_counts(schedule="zigzag"), named("schedule", "zigzag")),
    case("MaskedTransformer-num_classes=1.5", lambda e: MaskedTransformer([8], [4], dim=16, num_classes=1.5),
         named("num_classes", 1.5)),
    case("MaskedTransformer-dim-not-divisible-by-heads",
         lambda e: MaskedTransformer([8], [4], dim=18, num_heads=4), r"dim=18.*num_heads=4"),
    case("MaskedTransformer-mlp_ratio=nan", lambda e: MaskedTransformer([8], [4], dim=16, mlp_ratio=NAN),
         named("mlp_ratio", NAN)),
    case("MaskedTransformer-dropout=1.5", lambda e: MaskedTransformer([8], [4], dim=16, dropout=1.5),
         named("dropout", 1.5)),
    case("MaskedTransformer-depth=-1", lambda e: MaskedTransformer([8], [4], dim=16, depth=-1), named("depth", -1)),
    case("ARTransformer-vocab_size='64'", lambda e: ARTransformer(vocab_size="64", max_length=8),
         named("vocab_size", "64")),
    case("ARTransformer-max_length=1.5", lambda e: ARTransformer(vocab_size=8, max_length=1.5),
         named("max_length", 1.5)),
]  # fmt: skip


def _masked_counts(num_steps=4, schedule="cosine"):
    from mgm.schedules import masked_counts

    return masked_counts(torch.tensor([16]), num_steps, schedule)


@pytest.mark.parametrize("call, exc, match", DECODERS)
def test_decoders_refuse(env, call, exc, match):
    expect_refusal(lambda: call(env), exc, match)


# == 2. pipelines (the shipped ones) and file I/O ==============================================


def _image(e, **options):
    return e.image.generate(2, **options)


def _audio(e, **options):
    return e.audio.generate(1, **{"seconds": 0.1, **options})


def _motion(e, **options):
    return e.motion.generate(**{"texts": "a person walks", "seconds": 1.0, **options})


PIPELINES = [
    *[case(f"image-{n}={v!r}", lambda e, n=n, v=v: _image(e, **{n: v}), named(n, v))
      for n, v in SAMPLING + MASKED_SAMPLING],
    case("image-top_k-larger-than-vocab", lambda e: _image(e, top_k=65), r"top_k=65.*vocabulary of 64"),
    case("ar_image-top_k-larger-than-vocab", lambda e: e.ar_image.generate(1, top_k=65), r"top_k=65"),
    *[case(f"image-seed={v!r}", lambda e, v=v: _image(e, seed=v), named("seed", v))
      for v in (-1, 2**70, 1.5, True, "0")],
    *[case(f"image-num={v!r}", lambda e, v=v: e.image.generate(v), named("num", v)) for v in (0, -1, 1.5, True, "4")],
    *[case(f"image-batch_size={v!r}", lambda e, v=v: _image(e, batch_size=v), named("batch_size", v))
      for v in (0, -1, 1.5, True)],
    *[case(f"image-num_steps={v!r}", lambda e, v=v: _image(e, num_steps=v), named("num_steps", v))
      for v in (0, -1, 2.5)],
    case("image-labels=[1.5]", lambda e: _image(e, labels=[1.5]), r"labels.*1\.5"),
    case("image-labels=['circle']", lambda e: _image(e, labels=["circle"]), r"labels.*'circle'.*disk"),
    case("image-labels-out-of-range", lambda e: _image(e, labels=[10]), r"labels.*10.*\[0, 9\]"),
    case("image-labels-negative", lambda e: _image(e, labels=[-1]), r"labels.*-1"),
    case("image-labels-empty", lambda e: _image(e, labels=[]), r"labels: expected at least one"),
    case("image-labels-more-than-num", lambda e: _image(e, labels=[0, 1, 2]), r"labels: 3 labels for num=2"),
    case("image-labels=True", lambda e: _image(e, labels=True), r"labels.*True"),
    case("image-labels-float-tensor", lambda e: _image(e, labels=torch.tensor([0.5])), r"labels.*float"),
    case("image-unknown-schedule", lambda e: _image(e, schedule="zigzag"), named("schedule", "zigzag")),
    case("image-unknown-method", lambda e: _image(e, method="nope"), named("method", "nope")),
    case("image-ar-method-on-a-masked-pipeline", lambda e: _image(e, method="sjd"), r"method='sjd'.*masked"),
    case("image-unknown-option", lambda e: _image(e, num_stpes=4), r"unknown option.*num_stpes"),
    case("image-option-of-another-method", lambda e: _image(e, window=4), r"unknown option.*window"),
    case("image-device-is-not-a-call-option", lambda e: _image(e, device="cpu"), r"unknown option.*device"),
    case("image-unknown-output_type", lambda e: _image(e, output_type="latent"), named("output_type", "latent")),
    case("image-output_type=None", lambda e: _image(e, output_type=None), named("output_type", None)),
    case("image-callback-not-callable", lambda e: _image(e, callback=3), named("callback", 3)),
    case("image-progress=yes", lambda e: _image(e, progress="yes"), named("progress", "yes")),
    case("image-inpaint-nan-pixels", lambda e: e.image.inpaint(torch.full((1, 3, 32, 32), NAN), e.half),
         r"images: holds NaN"),
    case("image-inpaint-empty-batch", lambda e: e.image.inpaint(e.images[:0], e.half), r"images.*empty batch"),
    case("image-inpaint-pixels-above-1", lambda e: e.image.inpaint(e.images * 255, e.half), r"images: values span"),
    case("image-inpaint-uint8-pixels", lambda e: e.image.inpaint((e.images * 255).byte(), e.half),
         r"images: expected a float tensor"),
    case("image-inpaint-wrong-size", lambda e: e.image.inpaint(torch.rand(1, 3, 16, 16), e.half),
         r"images: shape \(1, 3, 16, 16\)"),
    case("image-inpaint-a-list", lambda e: e.image.inpaint([e.images[0]], e.half), r"images: expected a float tensor"),
    case("image-inpaint-float-mask", lambda e: e.image.inpaint(e.images, e.half.float()),
         r"mask: expected a BoolTensor"),
    case("image-inpaint-mask-wrong-shape", lambda e: e.image.inpaint(e.images, e.half[:16]), r"mask: shape \(16, 32\)"),
    case("image-inpaint-mask-batch-mismatch", lambda e: e.image.inpaint(e.images, e.half.expand(3, -1, -1)),
         r"mask: shape \(3, 32, 32\)"),
    case("image-inpaint-unknown-option", lambda e: e.image.inpaint(e.images, e.half, num_stpes=2),
         r"unknown option.*num_stpes"),
    case("image-inpaint-guidance_scale=nan", lambda e: e.image.inpaint(e.images, e.half, guidance_scale=NAN),
         named("guidance_scale", NAN)),
    case("image-inpaint-labels-out-of-range", lambda e: e.image.inpaint(e.images, e.half, labels=[12]),
         r"labels.*12"),
    *[case(f"image-outpaint-amount={v!r}", lambda e, v=v: e.image.outpaint(e.images, "left", v), named("amount", v))
      for v in (1.5, 0, 32, True, -4)],
    case("image-outpaint-direction=diag", lambda e: e.image.outpaint(e.images, "diag"), named("direction", "diag")),
    case("image-outpaint-direction=3", lambda e: e.image.outpaint(e.images, 3), named("direction", 3)),
    case("image-outpaint-nan-pixels", lambda e: e.image.outpaint(torch.full((1, 3, 32, 32), NAN), "left"),
         r"images: holds NaN"),
    *[case(f"image-variations-strength={v!r}", lambda e, v=v: e.image.variations(e.images, v), named("strength", v))
      for v in (0, 1.5, NAN, "0.5")],
    case("image-variations-seed=-1", lambda e: e.image.variations(e.images, 0.5, seed=-1), named("seed", -1)),
    case("image-edit_codes-editable-wrong-shape",
         lambda e: e.image.edit_codes(e.images, torch.ones(2, 1, 5, dtype=torch.bool)), r"editable: shape"),
    case("image-default-device=nonsense", lambda e: type(e.image).default(device="nonsense"), r"device='nonsense'"),
    case("image-default-device=cuda:99", lambda e: type(e.image).default(device="cuda:99"), r"device='cuda:99'"),
    case("image-from_pretrained-device=3.5", lambda e: type(e.image).from_pretrained(e.folders["pipeline"], 3.5),
         r"device=3\.5"),
    case("image-to-nonsense-device", lambda e: e.image.to("nonsense"), r"device='nonsense'"),
    case("image-pipeline-bad-settings",
         lambda e: type(e.image)(e.image.tokenizer, e.image.transformer, {"num_steps": 0}),
         named("num_steps", 0)),
    case("image-pipeline-class_names-count",
         lambda e: type(e.image)(e.image.tokenizer, e.image.transformer, None, ["a", "b"]),
         r"class_names: 2 names for a model of 10 classes"),
    case("ar_image-masked-method", lambda e: e.ar_image.generate(1, method="maskgit"), named("method", "maskgit")),
    case("ar_image-window=0", lambda e: e.ar_image.generate(1, window=0), named("window", 0)),
    case("ar_image-init=diag", lambda e: e.ar_image.generate(1, init="diag"), named("init", "diag")),
    case("ar_image-labels-out-of-range", lambda e: e.ar_image.generate(1, labels=[10]), r"labels.*10"),
    case("ar_image-choice_temperature", lambda e: e.ar_image.generate(1, choice_temperature=2.0),
         r"unknown option.*choice_temperature"),
    case("ar_image-guidance_scale=nan", lambda e: e.ar_image.generate(1, guidance_scale=NAN),
         named("guidance_scale", NAN)),
    case("ar_image-num_steps", lambda e: e.ar_image.generate(1, num_steps=4), r"unknown option.*num_steps"),
    *[case(f"audio-seconds={v!r}", lambda e, v=v: _audio(e, seconds=v), named("seconds", v))
      for v in (INF, NAN, 1e-9, -1, "2", True, 0)],
    case("audio-seconds-beyond-the-model", lambda e: _audio(e, seconds=100), r"seconds=100.*at most 2 s"),
    case("audio-labels-unknown-name", lambda e: _audio(e, labels=["C9"]), r"labels.*'C9'"),
    case("audio-labels-out-of-range", lambda e: _audio(e, labels=[8]), r"labels.*8.*\[0, 7\]"),
    case("audio-texts-on-an-unconditioned-model", lambda e: _audio(e, texts="a low note"), r"texts given"),
    case("audio-unknown-plan", lambda e: _audio(e, plan="diag"), named("plan", "diag")),
    case("audio-steps=0", lambda e: _audio(e, steps=0), r"steps.*0"),
    case("audio-num_steps-on-a-group-pipeline", lambda e: _audio(e, num_steps=4), r"unknown option.*num_steps"),
    case("audio-guidance_scale='1'", lambda e: _audio(e, guidance_scale="1"), named("guidance_scale", "1")),
    case("audio-num=0", lambda e: e.audio.generate(0, seconds=0.1), named("num", 0)),
    case("audio-continue-nan-prompt", lambda e: e.audio.continue_(torch.full((1, 1, 800), NAN), 1.0),
         r"prompt.*NaN"),
    case("audio-continue-empty-prompt", lambda e: e.audio.continue_(torch.zeros(1, 1, 0), 1.0),
         r"prompt: shape \(1, 1, 0\)"),
    case("audio-continue-empty-batch", lambda e: e.audio.continue_(torch.zeros(0, 1, 800), 1.0),
         r"prompt.*\(0, 1, 800\)"),
    *[case(f"audio-continue-sample_rate={v!r}", lambda e, v=v: e.audio.continue_(e.clip, 2.0, sample_rate=v),
           named("sample_rate", v)) for v in (-5, 1.5, True, 0)],
    case("audio-continue-prompt-too-long", lambda e: e.audio.continue_(e.clip, 0.5), r"prompt.*seconds=0\.5"),
    case("audio-continue-int-prompt", lambda e: e.audio.continue_(torch.zeros(1, 1, 800, dtype=torch.int16), 1.0),
         r"prompt.*int16"),
    case("audio-continue-loud-prompt", lambda e: e.audio.continue_(e.clip * 10, 2.0), r"prompt.*values span"),
    case("audio-continue-seconds=nan", lambda e: e.audio.continue_(e.clip, NAN), named("seconds", NAN)),
    case("audio-infill-start_s=nan", lambda e: e.audio.infill(e.clip, NAN, 0.5), named("start_s", NAN)),
    case("audio-infill-start_s='0'", lambda e: e.audio.infill(e.clip, "0", 0.5), named("start_s", "0")),
    case("audio-infill-end-before-start", lambda e: e.audio.infill(e.clip, 0.5, 0.2), r"start_s.*end_s"),
    case("audio-infill-end-beyond-the-clip", lambda e: e.audio.infill(e.clip, 0.2, 1.5), r"1\.5.*outside the clip"),
    case("audio-infill-a-list", lambda e: e.audio.infill([0.0] * 800, 0.0, 0.05), r"audio: expected"),
    case("motion-texts=None", lambda e: _motion(e, texts=None), r"texts: expected one caption"),
    case("motion-texts=3", lambda e: _motion(e, texts=3), r"texts: expected one caption.*3"),
    case("motion-texts-empty-list", lambda e: _motion(e, texts=[]), r"texts: expected one caption"),
    case("motion-texts-not-all-strings", lambda e: _motion(e, texts=["a walk", 3]), r"texts\[1\]=3"),
    case("motion-texts-blank", lambda e: _motion(e, texts=[" "]), r"texts\[0\]=' '"),
    case("motion-texts-wrong-count", lambda e: _motion(e, texts=["a", "b"], num=3), r"texts: 2 captions for num=3"),
    case("motion-texts-bytes", lambda e: _motion(e, texts=b"walk"), r"texts"),
    *[case(f"motion-seconds={v!r}", lambda e, v=v: _motion(e, seconds=v), named("seconds", v))
      for v in (INF, NAN, 1e-9, -1, "2", True)],
    case("motion-seconds-beyond-the-model", lambda e: _motion(e, seconds=100), r"seconds=100.*6 s"),
    *[case(f"motion-steps_per_second={v!r}", lambda e, v=v: _motion(e, steps_per_second=v),
           named("steps_per_second", v)) for v in (0, NAN, "2")],
    case("motion-labels-not-an-option", lambda e: _motion(e, labels=[0]), r"unknown option.*labels"),
    case("motion-num=0", lambda e: _motion(e, num=0), named("num", 0)),
    case("motion-guidance_scale=inf", lambda e: _motion(e, guidance_scale=INF), named("guidance_scale", INF)),
    case("motion-output_type=pil", lambda e: _motion(e, output_type="pil"), named("output_type", "pil")),
    case("motion-inbetween-keep_start_s=-1", lambda e: e.motion.inbetween(e.walk, -1, 0.4, texts="a jump"),
         named("keep_start_s", -1)),
    case("motion-inbetween-keep_end_s=nan", lambda e: e.motion.inbetween(e.walk, 0.4, NAN, texts="a jump"),
         named("keep_end_s", NAN)),
    case("motion-inbetween-nothing-left", lambda e: e.motion.inbetween(e.walk, 1.0, 1.0, texts="a jump"),
         r"keep_start_s=1\.0, keep_end_s=1\.0"),
    case("motion-inbetween-nan-motion", lambda e: e.motion.inbetween(e.walk + NAN, 0.4, 0.4, texts="a jump"),
         r"motion.*NaN"),
    case("motion-inbetween-262-features", lambda e: e.motion.inbetween(e.walk[..., :262], 0.4, 0.4, texts="a jump"),
         r"motion.*262"),
    case("motion-complete-keep=middle", lambda e: e.motion.complete(e.walk, 4.0, "middle", texts="a jump"),
         named("keep", "middle")),
    case("motion-complete-seconds-too-short", lambda e: e.motion.complete(e.walk, 1.0, texts="a jump"),
         r"seconds=1\.0"),
    case("motion-edit_part-part=head", lambda e: e.motion.edit_part(e.walk, "head", texts="a wave"), r"part.*'head'"),
    case("motion-edit_part-part=5", lambda e: e.motion.edit_part(e.walk, 5, texts="a wave"), r"part.*5"),
    case("motion-long_sequence-seconds-count", lambda e: e.motion.long_sequence(["a", "b"], [1.0]),
         r"seconds_each: 1 lengths for 2 captions"),
    case("motion-long_sequence-seconds-nan", lambda e: e.motion.long_sequence(["a", "b"], [NAN, 1.0]),
         r"seconds.*nan"),
    case("motion-long_sequence-no-texts", lambda e: e.motion.long_sequence([], 1.0), r"texts"),
    case("read_image-missing", lambda e: _read_image(e, "missing.png"), r"missing\.png: no such", FileNotFoundError),
    case("read_image-corrupt-png", lambda e: _read_image(e, "corrupt.png", b"\x89PNG\r\n\x1a\n garbage"),
         r"corrupt\.png: not a readable image"),
    case("read_audio-sample_rate=-5", lambda e: _read_audio(e, sample_rate=-5), named("sample_rate", -5)),
    case("read_audio-missing", lambda e: _read_audio(e, name="missing.wav"), r"missing\.wav", FileNotFoundError),
    case("read_audio-offset=nan", lambda e: _read_audio(e, offset=NAN), r"offset=nan"),
    case("write_wavs-sample_rate=-5", lambda e: _write(e, "wavs", sample_rate=-5), named("sample_rate", -5)),
    case("write_wavs-nan-audio", lambda e: _write(e, "wavs", wav=torch.full((1, 10), NAN)), r"wavs\['a\.wav'\].*NaN"),
    case("write_pngs-nan-image", lambda e: _write(e, "pngs", image=torch.full((3, 4, 4), NAN)),
         r"images\['a\.png'\].*NaN"),
    case("write_pngs-wrong-shape", lambda e: _write(e, "pngs", image=torch.rand(4, 4)),
         r"images\['a\.png'\].*\(4, 4\)"),
    case("write_motions-name-with-a-folder", lambda e: _write(e, "motions", name="x/walk"), r"'x/walk'"),
    case("write_motions-nan-features", lambda e: _write(e, "motions", features=torch.full((4, 263), NAN)),
         r"motions\['walk'\].*NaN"),
    case("read_motion-missing", lambda e: _read_motion(e, None), r"missing\.npy", FileNotFoundError),
    case("read_motion-joints-file", lambda e: _read_motion(e, torch.zeros(4, 22, 3).numpy()), r"shape \(4, 22, 3\)"),
    case("save_codes-out-of-range", lambda e: _save_codes(e, e.codes + 20), r"codes\[0, 0, \d+\] = 2\d"),
]  # fmt: skip


def _read_image(e, name, content=None):
    from mgm.pipelines.image_io import read_image

    e.tmp.mkdir(exist_ok=True)
    if content is not None:
        (e.tmp / name).write_bytes(content)
    return read_image(e.tmp / name)


def _read_audio(e, name="clip.wav", **kwargs):
    from mgm.data.audio_io import read_audio, write_wavs

    write_wavs({"clip.wav": torch.zeros(1, 80)}, 8000, e.tmp)
    return read_audio(e.tmp / name, **kwargs)


def _read_motion(e, array):
    import numpy as np

    from mgm.pipelines.motion_io import read_motion

    e.tmp.mkdir(exist_ok=True)
    if array is None:
        return read_motion(e.tmp / "missing.npy")
    np.save(e.tmp / "joints.npy", array)
    return read_motion(e.tmp / "joints.npy")


def _write(e, kind, sample_rate=8000, wav=None, image=None, name="walk", features=None):
    """A writer called on e.out, which must stay absent."""
    from mgm.data.audio_io import write_wavs
    from mgm.pipelines.image_io import write_pngs
    from mgm.pipelines.motion_io import write_motions

    if kind == "wavs":
        return write_wavs({"a.wav": torch.zeros(1, 10) if wav is None else wav}, sample_rate, e.out)
    if kind == "pngs":
        return write_pngs({"a.png": torch.rand(3, 4, 4) if image is None else image}, e.out)
    return write_motions({name: torch.zeros(4, 263) if features is None else features}, e.out, render=False)


def _save_codes(e, codes):
    from mgm.data.codes import save_codes

    return save_codes(e.out / "codes.safetensors", codes, e.masked.spec)


@pytest.mark.parametrize("call, exc, match", PIPELINES)
def test_pipelines_refuse(env, tmp_path, call, exc, match):
    out = tmp_path / "out"
    expect_refusal(lambda: call(SimpleNamespace(**vars(env), tmp=tmp_path / "in", out=out)), exc, match)
    if out.exists():
        pytest.fail(f"LEFT-BEHIND: {sorted(p.name for p in out.rglob('*'))}")


# == 3. loading saved folders ==================================================================


def remanifest(root: Path) -> None:
    """Rewrite every manifest under ``root`` (deepest first), as a hand edit of a folder without
    manifests, or a buggy writer, would leave it: loading then meets the edit itself."""
    from mgm.io import MANIFEST, write_manifest

    for manifest in sorted(root.rglob(MANIFEST), key=lambda p: -len(p.parts)):
        write_manifest(manifest.parent)


def edit_json(relative: str, **changes):
    """Set (or with a value of ``...`` remove) top-level keys of a JSON file."""

    def edit(folder: Path) -> None:
        path = folder / relative
        config = json.loads(path.read_text())
        for key, value in changes.items():
            if value is ...:
                config.pop(key)
            else:
                config[key] = value
        path.write_text(json.dumps(config))

    return edit


def write_text(relative: str, text: str | bytes):
    def edit(folder: Path) -> None:
        path = folder / relative
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)

    return edit


def replace_text(relative: str, old: str, new: str):
    def edit(folder: Path) -> None:
        path = folder / relative
        text = path.read_text()
        assert old in text, (old, text[:200])
        path.write_text(text.replace(old, new, 1))

    return edit


def edit_weights(relative: str, change):
    """``change(state) -> state`` on a safetensors file (rewritten whole)."""

    def edit(folder: Path) -> None:
        from safetensors.torch import load_file, save_file

        path = folder / relative
        save_file(change(load_file(path)), path)

    return edit


def _poison(value: float, index: int = 0):
    def change(state):
        key = sorted(k for k, v in state.items() if v.is_floating_point())[index]
        state[key] = state[key].clone()
        state[key].view(-1)[0] = value
        return state

    return change


def truncate(relative: str):
    def edit(folder: Path) -> None:
        path = folder / relative
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return edit


def remove(relative: str):
    def edit(folder: Path) -> None:
        path = folder / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return edit


def _loader(kind: str):
    from mgm.models.text import WordTextEncoder
    from mgm.pipelines import ImagePipeline
    from mgm.tokenizers import EncodecTokenizer, ImageVQ, MotionVQ

    return {
        "model": MaskedTransformer.from_pretrained, "ar": ARTransformer.from_pretrained,
        "vq": ImageVQ.from_pretrained, "codec": EncodecTokenizer.from_pretrained,
        "motion_vq": MotionVQ.from_pretrained, "text": WordTextEncoder.from_pretrained,
        "pipeline": ImagePipeline.from_pretrained,
    }[kind]  # fmt: skip


def load_case(id, kind, edit, match, exc=ValueError, manifest=True):
    """Copy the saved ``kind`` folder, ``edit`` it (then rewrite its manifests unless
    ``manifest=False``), load it: ``exc`` matching ``match``."""
    return pytest.param(kind, edit, manifest, exc, match, id=id)


CFG, WEIGHTS = "config.json", "model.safetensors"
VQ_WEIGHTS = "diffusion_pytorch_model.safetensors"
LOADING = [
    load_case("model-config-not-utf8", "model", write_text(CFG, b"\xff\xfe{\x00"), r"config\.json.*UTF-8"),
    load_case("model-config-not-json", "model", write_text(CFG, "{'dim': 16"), r"config\.json: not valid JSON"),
    load_case("model-config-a-list", "model", write_text(CFG, "[1, 2]"), r"config\.json: expected a JSON object"),
    load_case("model-config-shape-a-string", "model", edit_json(CFG, shape="ab"), r"config\.json: shape='ab'"),
    load_case("model-config-shape-floats", "model", edit_json(CFG, shape=[4.5]), r"config\.json: shape=\[4\.5\]"),
    load_case("model-config-rotary-a-string", "model", edit_json(CFG, rotary="yes"), r"config\.json: rotary='yes'"),
    load_case("model-config-mlp_ratio-NaN", "model", replace_text(CFG, '"mlp_ratio": 4.0', '"mlp_ratio": NaN'),
              r"config\.json: mlp_ratio=nan"),
    load_case("model-config-dropout-Infinity", "model", replace_text(CFG, '"dropout": 0.0', '"dropout": Infinity'),
              r"config\.json: dropout=inf"),
    load_case("model-config-dim-a-float", "model", edit_json(CFG, dim=16.5), r"config\.json: dim=16\.5"),
    load_case("model-config-dim-a-bool", "model", edit_json(CFG, dim=True), r"config\.json: dim=True"),
    load_case("model-config-codebook_sizes-floats", "model", edit_json(CFG, codebook_sizes=[8.5]),
              r"config\.json: codebook_sizes=\[8\.5\]"),
    load_case("model-config-context_dim-a-string", "model", edit_json(CFG, context_dim="16"),
              r"config\.json: context_dim='16'"),
    load_case("model-config-unknown-key", "model", edit_json(CFG, num_layers=3), r"config\.json.*num_layers"),
    load_case("model-config-missing-required-key", "model", edit_json(CFG, codebook_sizes=...),
              r"config\.json.*codebook_sizes"),
    load_case("model-config-num_classes-against-the-weights", "model", edit_json(CFG, num_classes=5),
              r"model\.safetensors.*label_emb\.weight.*\(4, 16\).*\(6, 16\)"),
    load_case("model-config-dim-against-the-weights", "model", edit_json(CFG, dim=32),
              r"model\.safetensors: \S+ has shape \(.*16\), but the config builds \(.*32\)"),
    load_case("model-config-num_classes-negative", "model", edit_json(CFG, num_classes=-1), r"num_classes=-1"),
    load_case("model-config-wrong-class", "model", edit_json(CFG, _class_name="ARTransformer"),
              r"holds a ARTransformer, not a MaskedTransformer"),
    load_case("model-weights-nan", "model", edit_weights(WEIGHTS, _poison(NAN)), r"model\.safetensors.*\w+.*NaN"),
    load_case("model-weights-inf", "model", edit_weights(WEIGHTS, _poison(INF, 1)), r"model\.safetensors.*\w+.*inf"),
    load_case("model-weights-truncated", "model", truncate(WEIGHTS), r"model\.safetensors: not a readable"),
    load_case("model-weights-extra-key", "model",
              edit_weights(WEIGHTS, lambda s: {**s, "extra.weight": torch.zeros(2)}),
              r"model\.safetensors.*extra\.weight"),
    load_case("model-weights-missing-key", "model",
              edit_weights(WEIGHTS, lambda s: {k: v for k, v in s.items() if k != "norm.weight"}),
              r"model\.safetensors.*norm\.weight"),
    load_case("model-weights-integer-dtype", "model",
              edit_weights(WEIGHTS, lambda s: {**s, "norm.weight": s["norm.weight"].long()}),
              r"model\.safetensors.*norm\.weight.*int64"),
    load_case("model-weights-missing-file", "model", remove(WEIGHTS), r"model\.safetensors: no such file",
              FileNotFoundError),
    load_case("model-config-missing-file", "model", remove(CFG), r"config\.json: no such file", FileNotFoundError),
    load_case("model-edited-without-manifest-update", "model", edit_json(CFG, dim=32),
              r"config\.json is not the file this folder was saved with", manifest=False),
    load_case("model-missing-folder", "model", remove(""), r"no such directory", FileNotFoundError),
    load_case("model-a-file-instead-of-a-folder", "model", lambda f: (shutil.rmtree(f), f.write_text("x")),
              r"not a folder", NotADirectoryError),
    load_case("ar-config-vocab_size-a-string", "ar", edit_json(CFG, vocab_size="8"), r"config\.json: vocab_size='8'"),
    load_case("ar-config-max_length-a-float", "ar", edit_json(CFG, max_length=1.5), r"config\.json: max_length=1\.5"),
    load_case("ar-weights-vocab-against-config", "ar", edit_json(CFG, vocab_size=9),
              r"model\.safetensors: \S+ has shape \(8, 16\), but the config builds \(9, 16\)"),
    load_case("ar-weights-nan", "ar", edit_weights(WEIGHTS, _poison(NAN)), r"model\.safetensors.*NaN"),
    load_case("vq-config-sample_size-a-string", "vq", edit_json(CFG, sample_size="16"),
              r"config\.json: sample_size='16'"),
    load_case("vq-config-num_vq_embeddings-a-float", "vq", edit_json(CFG, num_vq_embeddings=32.5),
              r"config\.json: num_vq_embeddings=32\.5"),
    load_case("vq-config-block_out_channels-a-string", "vq", edit_json(CFG, block_out_channels="16"),
              r"config\.json: block_out_channels='16'"),
    load_case("vq-config-unknown-key", "vq", edit_json(CFG, codebook_size=32), r"config\.json.*codebook_size"),
    load_case("vq-config-scaling_factor-NaN", "vq",
              replace_text(CFG, '"scaling_factor": 0.18215', '"scaling_factor": NaN'),
              r"config\.json: scaling_factor=nan"),
    load_case("vq-config-a-list", "vq", write_text(CFG, "[]"), r"config\.json: expected a JSON object"),
    load_case("vq-config-not-utf8", "vq", write_text(CFG, b"\xff\xfe\x00"), r"config\.json.*UTF-8"),
    load_case("vq-weights-against-config", "vq", edit_json(CFG, num_vq_embeddings=64),
              r"diffusion_pytorch_model\.safetensors: \S+ has shape \(32, 4\), but the config builds \(64, 4\)"),
    load_case("vq-weights-nan", "vq", edit_weights(VQ_WEIGHTS, _poison(NAN)), r"diffusion_pytorch_model.*NaN"),
    load_case("vq-weights-truncated", "vq", truncate(VQ_WEIGHTS), r"diffusion_pytorch_model\.safetensors"),
    load_case("vq-missing-folder", "vq", remove(""), r"vq: no such directory", FileNotFoundError),
    load_case("codec-config-bins-a-string", "codec", edit_json(CFG, bins="256"), r"config\.json: bins='256'"),
    load_case("codec-config-seconds-NaN", "codec", replace_text(CFG, '"seconds": 0.2', '"seconds": NaN'),
              r"config\.json: seconds=nan"),
    load_case("codec-config-causal-a-string", "codec", edit_json(CFG, causal="no"), r"config\.json: causal='no'"),
    load_case("codec-config-ratios-a-number", "codec", edit_json(CFG, ratios=8), r"config\.json: ratios=8"),
    load_case("codec-config-unknown-key", "codec", edit_json(CFG, n_q=4), r"config\.json.*n_q"),
    load_case("codec-weights-against-config", "codec", edit_json(CFG, dimension=32),
              r"model\.safetensors: \S+ has shape"),
    load_case("codec-weights-nan", "codec", edit_weights(WEIGHTS, _poison(NAN)), r"model\.safetensors.*NaN"),
    load_case("motion_vq-config-codebook_size-a-string", "motion_vq", edit_json(CFG, codebook_size="16"),
              r"config\.json: codebook_size='16'"),
    load_case("motion_vq-config-max_frames-a-float", "motion_vq", edit_json(CFG, max_frames=40.5),
              r"config\.json: max_frames=40\.5"),
    load_case("motion_vq-config-unknown-key", "motion_vq", edit_json(CFG, parts=2), r"config\.json.*parts"),
    load_case("motion_vq-weights-against-config", "motion_vq", edit_json(CFG, codebook_size=32),
              r"model\.safetensors: codebooks\.\S+ has shape \(16, 8\), but the config builds \(32, 8\)"),
    load_case("text-config-dim-a-string", "text", edit_json(CFG, dim="16"), r"config\.json: dim='16'"),
    load_case("text-config-vocab-a-string", "text", edit_json(CFG, vocab="abc"), r"config\.json: vocab='abc'"),
    load_case("pipeline-json-a-list", "pipeline", write_text("pipeline.json", "[]"),
              r"pipeline\.json: expected a JSON object"),
    load_case("pipeline-json-not-utf8", "pipeline", write_text("pipeline.json", b"\xff\xfe"), r"pipeline\.json.*UTF-8"),
    load_case("pipeline-json-unknown-key", "pipeline", edit_json("pipeline.json", steps=12),
              r"pipeline\.json.*steps"),
    load_case("pipeline-json-bad-method", "pipeline", edit_json("pipeline.json", settings={"method": "nope"}),
              r"pipeline\.json.*method='nope'"),
    load_case("pipeline-json-bad-option-value", "pipeline", edit_json("pipeline.json", settings={"num_steps": 0}),
              r"pipeline\.json.*num_steps=0"),
    load_case("pipeline-json-unknown-option", "pipeline", edit_json("pipeline.json", settings={"stepz": 3}),
              r"pipeline\.json.*stepz"),
    load_case("pipeline-json-settings-a-list", "pipeline", edit_json("pipeline.json", settings=[1]),
              r"pipeline\.json.*settings"),
    load_case("pipeline-json-class_names-a-string", "pipeline", edit_json("pipeline.json", class_names="abc"),
              r"pipeline\.json.*class_names='abc'"),
    load_case("pipeline-json-class_names-count", "pipeline", edit_json("pipeline.json", class_names=["a"]),
              r"class_names"),
    load_case("pipeline-json-wrong-class", "pipeline", edit_json("pipeline.json", _class_name="AudioPipeline"),
              r"holds a AudioPipeline, not a ImagePipeline"),
    load_case("pipeline-json-missing", "pipeline", remove("pipeline.json"), r"pipeline\.json: no such file",
              FileNotFoundError),
    load_case("pipeline-tokenizer-missing", "pipeline", remove("tokenizer"), r"tokenizer", FileNotFoundError),
    load_case("pipeline-transformer-num_classes-against-weights", "pipeline",
              edit_json("transformer/config.json", num_classes=5), r"transformer/model\.safetensors.*label_emb"),
    load_case("pipeline-transformer-weights-nan", "pipeline",
              edit_weights("transformer/model.safetensors", _poison(NAN)), r"transformer/model\.safetensors.*NaN"),
    load_case("pipeline-a-file-instead-of-a-folder", "pipeline", lambda f: (shutil.rmtree(f), f.write_text("x")),
              r"not a folder", NotADirectoryError),
]  # fmt: skip


@pytest.mark.parametrize("kind, edit, manifest, exc, match", LOADING)
def test_loading_refuses(env, tmp_path, kind, edit, manifest, exc, match):
    folder = tmp_path / kind
    shutil.copytree(env.folders[kind], folder)
    edit(folder)
    if manifest and folder.is_dir():
        remanifest(folder)
    expect_refusal(lambda: _loader(kind)(folder), exc, match)


# == 4. the CLIs ==============================================================================

ERROR_LINE = re.compile(r"^error: ")


def refused_cli(main, argv, match, capsys, outputs):
    """``main(argv)`` exits 2 with one ``error: ...`` line naming ``match``, no traceback, and
    leaves every path in ``outputs`` absent."""
    try:
        main(argv)
    except SystemExit as e:
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        if e.code != 2:
            pytest.fail(f"WRONG-TYPE: exit status {e.code}; stderr {lines[-3:]}")
        if any("Traceback" in line for line in lines):
            pytest.fail(f"WRONG-TYPE: a traceback on stderr: {lines[-3:]}")
        if len(lines) != 1 or not ERROR_LINE.match(lines[0]) or not re.search(match, lines[0]):
            pytest.fail(f"MESSAGE: stderr {lines[-4:]} (expected one error line matching {match!r})")
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"WRONG-TYPE: {type(e).__name__} escaped: {e!s:.300}")
    else:
        pytest.fail(f"ACCEPTED: exit 0 (expected an error matching {match!r})")
    finally:
        left = [str(p) for p in outputs if p.exists() and (p.is_file() or any(p.iterdir()))]
        if left:
            pytest.fail(f"LEFT-BEHIND: {left}")


def cli_case(id, argv, match, setup=None):
    """``argv``: a list where "{out}", "{tmp}" and "{model}" / "{pipe}" are filled in; ``setup(tmp)``
    prepares input files."""
    return pytest.param(argv, match, setup, id=id)


def _png(tmp: Path, name="in.png", content=None):
    from mgm.pipelines.image_io import write_pngs

    if content is None:
        write_pngs({name: torch.rand(3, 32, 32)}, tmp)
    else:
        (tmp / name).write_bytes(content)


def _mkdir(tmp: Path, name: str, mode: int | None = None):
    (tmp / name).mkdir()
    if mode is not None:
        os.chmod(tmp / name, mode)


CODES = ["codes", "--model", "{model}", "--device", "cpu", "--out", "{out}"]
IMAGE = ["image", "--device", "cpu", "--out", "{out}"]
AUDIO = ["audio", "--device", "cpu", "--out", "{out}"]
MOTION = ["motion", "a person walks", "--device", "cpu", "--out", "{out}"]
GENERATE_CLI = [
    cli_case("codes--num-0", [*CODES, "--num", "0"], r"--num.*0"),
    cli_case("codes--num-1.5", [*CODES, "--num", "1.5"], r"--num.*1\.5"),
    cli_case("codes--num-steps-0", [*CODES, "--num-steps", "0"], r"num_steps=0"),
    cli_case("codes--num-steps--1", [*CODES, "--num-steps", "-1"], r"num_steps=-1"),
    cli_case("codes--schedule-unknown", [*CODES, "--schedule", "zigzag"], r"schedule='zigzag'"),
    cli_case("codes--labels-out-of-range", [*CODES, "--labels", "9"], r"labels.*9.*\[0, 2\]"),
    cli_case("codes--labels-a-name", [*CODES, "--labels", "disk"], r"labels.*'disk'"),
    cli_case("codes--guidance-scale-nan", [*CODES, "--guidance-scale", "nan"], r"guidance_scale=nan"),
    cli_case("codes--temperature-inf", [*CODES, "--temperature", "inf"], r"temperature=inf"),
    cli_case("codes--top-k-larger-than-vocab", [*CODES, "--top-k", "9"], r"top_k=9"),
    cli_case("codes--seed--1", [*CODES, "--seed", "-1"], r"seed=-1"),
    cli_case("codes--device-nonsense", [*CODES, "--device", "nonsense"], r"device.*'nonsense'"),
    cli_case("codes--device-cuda:99", [*CODES, "--device", "cuda:99"], r"device.*'cuda:99'"),
    cli_case("codes--model-missing", ["codes", "--model", "{tmp}/none", "--out", "{out}"], r"none: no such"),
    cli_case("codes--model-empty-folder", ["codes", "--model", "{tmp}/empty", "--out", "{out}"],
             r"empty.*config\.json: no such file", lambda t: _mkdir(t, "empty")),
    cli_case("codes--out-an-existing-file", [*CODES[:-1], "{tmp}/taken"], r"--out.*taken: is a file",
             lambda t: (t / "taken").write_text("x")),
    cli_case("codes--out-under-a-file", [*CODES[:-1], "{tmp}/taken/out"], r"--out.*taken.*not a folder",
             lambda t: (t / "taken").write_text("x")),
    cli_case("image--num-0", [*IMAGE, "--num", "0"], r"--num.*0"),
    cli_case("image--num-steps-0", [*IMAGE, "--num-steps", "0"], r"num_steps=0"),
    cli_case("image--labels-out-of-range", [*IMAGE, "--labels", "99"], r"labels.*99"),
    cli_case("image--labels-unknown-name", [*IMAGE, "--labels", "circle"], r"labels.*'circle'"),
    cli_case("image--schedule-unknown", [*IMAGE, "--schedule", "zigzag"], r"schedule='zigzag'"),
    cli_case("image--method-unknown", [*IMAGE, "--method", "nope"], r"--method.*'nope'"),
    cli_case("image--guidance-scale-nan", [*IMAGE, "--guidance-scale", "nan"], r"guidance_scale=nan"),
    cli_case("image--batch-size-0", [*IMAGE, "--batch-size", "0"], r"--batch-size.*0"),
    cli_case("image--device-nonsense", [*IMAGE, "--device", "nonsense"], r"device.*'nonsense'"),
    cli_case("image--model-missing", [*IMAGE, "--model", "{tmp}/none"], r"none: no such folder"),
    cli_case("image--model-empty-folder", [*IMAGE, "--model", "{tmp}/empty"], r"empty.*pipeline\.json: no such",
             lambda t: _mkdir(t, "empty")),
    cli_case("image--out-an-existing-file", [*IMAGE[:-1], "{tmp}/taken"], r"--out.*taken: is a file",
             lambda t: (t / "taken").write_text("x")),
    cli_case("image--out-unwritable-folder", [*IMAGE[:-1], "{tmp}/ro/out"], r"--out.*ro.*not writable",
             lambda t: _mkdir(t, "ro", 0o500)),
    cli_case("image-inpaint-corrupt-png", [*IMAGE, "inpaint", "--input", "{tmp}/in.png", "--mask", "{tmp}/m.png"],
             r"in\.png: not a readable image",
             lambda t: (_png(t, "in.png", b"\x89PNG\r\n\x1a\nbroken"), _png(t, "m.png"))),
    cli_case("image-inpaint-missing-mask-file", [*IMAGE, "inpaint", "--input", "{tmp}/in.png", "--mask", "{tmp}/m.png"],
             r"m\.png: no such", _png),
    cli_case("image-inpaint-no-mask", [*IMAGE, "inpaint", "--input", "{tmp}/in.png"], r"--mask", _png),
    cli_case("image-inpaint-missing-input", [*IMAGE, "inpaint", "--input", "{tmp}/none.png", "--mask", "{tmp}/in.png"],
             r"none\.png: no such", _png),
    cli_case("image-outpaint--direction-diag", [*IMAGE, "outpaint", "--input", "{tmp}/in.png", "--direction", "diag"],
             r"direction.*'diag'", _png),
    cli_case("image-outpaint--amount-0", [*IMAGE, "outpaint", "--input", "{tmp}/in.png", "--amount", "0"],
             r"amount.*0", _png),
    cli_case("image-variations--strength-2", [*IMAGE, "variations", "--input", "{tmp}/in.png", "--strength", "2"],
             r"strength.*2", _png),
    cli_case("image-variations--strength-nan", [*IMAGE, "variations", "--input", "{tmp}/in.png", "--strength", "nan"],
             r"strength.*nan", _png),
    cli_case("audio--seconds-inf", [*AUDIO, "--seconds", "inf"], r"seconds.*inf"),
    cli_case("audio--seconds-nan", [*AUDIO, "--seconds", "nan"], r"seconds.*nan"),
    cli_case("audio--seconds--1", [*AUDIO, "--seconds", "-1"], r"seconds.*-1"),
    cli_case("audio--seconds-1e-9", [*AUDIO, "--seconds", "1e-9"], r"seconds.*1e-09"),
    cli_case("audio--plan-diag", [*AUDIO, "--plan", "diag"], r"plan.*'diag'"),
    cli_case("audio--labels-unknown-name", [*AUDIO, "--labels", "C9"], r"labels.*'C9'"),
    cli_case("audio-continue-missing-input", [*AUDIO, "continue", "--input", "{tmp}/none.wav"], r"none\.wav: no such"),
    cli_case("audio-infill--start-nan", [*AUDIO, "infill", "--input", "{tmp}/c.wav", "--start", "nan", "--end", "1"],
             r"start.*nan", lambda t: _wav(t)),
    cli_case("motion--seconds-inf", [*MOTION, "--seconds", "inf"], r"seconds.*inf"),
    cli_case("motion--seconds-0", [*MOTION, "--seconds", "0"], r"seconds.*0"),
    cli_case("motion-blank-text", ["motion", " ", "--device", "cpu", "--out", "{out}"], r"texts\[0\]"),
    cli_case("motion--labels", [*MOTION, "--labels", "1"], r"--labels"),
    cli_case("motion--num-0", [*MOTION, "--num", "0"], r"--num.*0"),
    cli_case("motion-inbetween-missing-input", [*MOTION, "--task", "inbetween", "--input", "{tmp}/none.npy"],
             r"none\.npy: no such"),
    cli_case("motion-inbetween--keep-start-nan",
             [*MOTION, "--task", "inbetween", "--input", "{tmp}/w.npy", "--keep-start", "nan"], r"keep_start.*nan",
             lambda t: _npy(t)),
]  # fmt: skip


def _wav(tmp: Path):
    from mgm.data.audio_io import write_wavs

    write_wavs({"c.wav": torch.zeros(1, 8000)}, 8000, tmp)


def _npy(tmp: Path):
    import numpy as np

    np.save(tmp / "w.npy", torch.zeros(40, 263).numpy())


def _fill(argv, tmp: Path, env) -> list[str]:
    values = {"{out}": str(tmp / "out"), "{tmp}": str(tmp), "{model}": str(env.folders["model"])}
    return [re.sub(r"\{\w+\}", lambda m: values[m.group(0)], a) for a in argv]


@pytest.fixture
def cli_tmp(tmp_path):
    yield tmp_path
    for path in tmp_path.rglob("*"):  # an unwritable folder made by a case
        if path.is_dir():
            os.chmod(path, 0o755)


@pytest.mark.parametrize("argv, match, setup", GENERATE_CLI)
def test_generate_cli_refuses(env, cli_tmp, capsys, argv, match, setup):
    from mgm.cli import generate

    if "ro" in " ".join(argv) and os.geteuid() == 0:
        pytest.skip("running as root: a 0o500 folder is writable")
    if setup:
        setup(cli_tmp)
    capsys.readouterr()
    refused_cli(generate.main, _fill(argv, cli_tmp, env), match, capsys, [cli_tmp / "out"])


EVAL = ["--device", "cpu", "--out", "{tmp}/report.json", "--cache-dir", "{tmp}/cache", "--num", "4",
        "--reference-num", "8"]  # fmt: skip
EVALUATE_CLI = [
    cli_case("eval-image--num-0", ["image", *EVAL, "--num", "0"], r"--num 0"),
    cli_case("eval-image--num-1", ["image", *EVAL, "--num", "1"], r"--num 1"),
    cli_case("eval-image--num-1.5", ["image", *EVAL, "--num", "1.5"], r"--num.*1\.5"),
    cli_case("eval-image--batch-size-0", ["image", *EVAL, "--batch-size", "0"], r"--batch-size.*0"),
    cli_case("eval-image--reference-num-1", ["image", *EVAL[:-1], "1"], r"--reference-num 1"),
    cli_case("eval-image--model-missing", ["image", *EVAL, "--model", "{tmp}/none"], r"--model.*none: no such folder"),
    cli_case("eval-image--samples-missing", ["image", *EVAL, "--samples", "{tmp}/none"], r"--samples.*none"),
    cli_case("eval-image--judge-missing", ["image", *EVAL, "--judge", "{tmp}/none"], r"--judge.*none"),
    cli_case("eval-image--guidance-scale-nan", ["image", *EVAL, "--guidance-scale", "nan"], r"guidance_scale=nan"),
    cli_case("eval-image--num-steps-0", ["image", *EVAL, "--num-steps", "0"], r"num_steps=0"),
    cli_case("eval-image--method-unknown", ["image", *EVAL, "--method", "nope"], r"--method.*'nope'"),
    cli_case("eval-image--seed--1", ["image", *EVAL, "--seed", "-1"], r"seed=-1"),
    cli_case("eval-image--device-nonsense", ["image", *EVAL, "--device", "nonsense"], r"device.*'nonsense'"),
    cli_case("eval-image--out-a-folder", ["image", *EVAL, "--out", "{tmp}/taken", "--overwrite"],
             r"--out.*taken: is a folder", lambda t: _mkdir(t, "taken")),
    cli_case("eval-image--out-under-a-file", ["image", *EVAL, "--out", "{tmp}/taken/r.json"],
             r"--out.*taken.*not a folder", lambda t: (t / "taken").write_text("x")),
    cli_case("eval-image--cache-dir-a-file", ["image", *EVAL, "--cache-dir", "{tmp}/taken"],
             r"--cache-dir.*taken: is a file", lambda t: (t / "taken").write_text("x")),
    cli_case("eval-audio--plan-diag", ["audio", *EVAL, "--plan", "diag"], r"plan.*'diag'"),
    cli_case("eval-audio--vggish-missing", ["audio", *EVAL, "--vggish", "{tmp}/none.pth"], r"--vggish.*none\.pth"),
    cli_case("eval-motion--num-10", ["motion", *EVAL, "--num", "10"], r"--num 10"),
]  # fmt: skip


@pytest.mark.parametrize("argv, match, setup", EVALUATE_CLI)
def test_evaluate_cli_refuses(env, cli_tmp, capsys, argv, match, setup):
    from mgm.cli import evaluate

    if setup:
        setup(cli_tmp)
    capsys.readouterr()
    outputs = [cli_tmp / "report.json", cli_tmp / "cache"]
    refused_cli(evaluate.main, _fill(argv, cli_tmp, env), match, capsys, outputs)


# The real entry points, as a user runs them (one process each, so only a few).
SUBPROCESS = [
    cli_case("generate.py-image--num-0", ["generate.py", *IMAGE, "--num", "0"], r"--num: 0"),
    cli_case("mgm-eval-image--num-0", ["-m", "mgm.cli.evaluate", "image", *EVAL, "--num", "0"], r"--num 0"),
]  # fmt: skip


@pytest.mark.parametrize("argv, match, setup", SUBPROCESS)
def test_entry_points_refuse(env, tmp_path, argv, match, setup):
    done = subprocess.run([sys.executable, *_fill(argv, tmp_path, env)], cwd=ROOT, capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, (done.returncode, lines[-3:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(match, lines[0]), lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "report.json").exists()


def test_the_catalogue_is_large():
    assert len(DECODERS) + len(PIPELINES) + len(LOADING) + len(GENERATE_CLI) + len(EVALUATE_CLI) >= 170
