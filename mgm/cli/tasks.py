"""What each ``mgm-generate`` subcommand does: load the pipeline, call it, write the files.

User errors are raised as ValueError / FileNotFoundError / FileExistsError; ``mgm.cli.options.
cli_main`` turns them into one ``error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mgm.checks import check_device
from mgm.cli.options import decode_options
from mgm.decoding.registry import AR, FLEX_AR, MASKED, default_method, get_method
from mgm.io import check_output_folder, load_json


def parse_labels(values: list[str] | None) -> list[int | str] | None:
    """--labels values: integers stay class ids, anything else is a class name."""
    if not values:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def pipeline_class_name(folder: str) -> str | None:
    path = Path(folder) / "pipeline.json"
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"--model {folder}: no such folder")
    config = load_json(path) if path.is_file() else None
    return config.get("_class_name") if isinstance(config, dict) else None


IMAGE_PIPELINE_LABELS = {MASKED: "a masked", AR: "an AR", FLEX_AR: "a flexible-order AR"}


def image_pipeline_class(args: argparse.Namespace):
    """The image pipeline class of the run: ``--model``'s (by its pipeline.json), else the one of
    ``--method``'s kind (masked: ImagePipeline, ar: ARImagePipeline, flex-ar: FlexARImagePipeline),
    else ImagePipeline. A --method of another kind than --model's pipeline is a ValueError."""
    from mgm.pipelines import ARImagePipeline, FlexARImagePipeline, ImagePipeline

    classes = {cls.decoder_kind: cls for cls in (ImagePipeline, ARImagePipeline, FlexARImagePipeline)}
    kind = None if args.method is None else get_method(args.method).kind
    if not args.model:
        return classes[kind or MASKED]
    name = pipeline_class_name(args.model)
    cls = next((c for c in classes.values() if c.__name__ == name), ImagePipeline)
    if kind is not None and kind != cls.decoder_kind:
        raise ValueError(
            f"--method {args.method} needs {IMAGE_PIPELINE_LABELS[kind]} pipeline ({classes[kind].__name__}); "
            f"--model {args.model} is not one"
        )
    return cls


def load_pipeline(cls, args: argparse.Namespace):
    """``--model``'s pipeline of class ``cls``, else the shipped one, on ``--device``."""
    return cls.from_pretrained(args.model, args.device) if args.model else cls.default(args.device)


def call_options(args: argparse.Namespace) -> dict:
    """The pipeline call's options: decode options from the flags, seed, batch size, progress."""
    return {**decode_options(args), "seed": args.seed, "batch_size": args.batch_size, "progress": True}


def resolve_model(args: argparse.Namespace, marker: str = "pipeline.json") -> None:
    """``--model`` given as a hub id ("org/name"): replaced by the local folder of its cached
    snapshot (downloaded unless offline, ``mgm.hub``), so the rest reads a folder on disk."""
    from mgm.hub import looks_like_repo_id, resolve_folder

    model = getattr(args, "model", None)
    if model and not Path(model).exists() and looks_like_repo_id(model):
        args.model = str(resolve_folder(model, f"--model {model}: a saved mgm folder", marker))


def check_args(args: argparse.Namespace, marker: str = "pipeline.json") -> None:
    """What every subcommand checks before loading anything: the output folder and the device;
    then a hub id ``--model`` is fetched (or found in the cache) as a folder with ``marker``."""
    check_output_folder(args.out, "--out")
    check_device(args.device, "--device")
    devices = getattr(args, "devices", 1)
    if devices > 1 and (args.modality == "codes" or args.task != "sample"):
        task = args.modality if args.modality in ("codes", "motion") else f"{args.modality} {args.task}"
        raise ValueError(f"--devices {devices}: multi-process generation is for sampling; {task} runs in one process")
    resolve_model(args, marker)


def generate_codes(args: argparse.Namespace) -> list[Path]:
    from mgm.data.codes import save_codes
    from mgm.models import Condition, MaskedTransformer
    from mgm.pipelines.settings import CallOptions, sample_generators

    check_args(args, "config.json")
    out = Path(args.out) / "codes.safetensors"
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    options = decode_options(args)
    method = get_method(options.pop("method", default_method(MASKED)), MASKED)
    method.parse(options)  # every option checked before the model loads
    call = CallOptions(seed=args.seed, batch_size=args.batch_size)
    if isinstance(args.num, bool) or args.num < 1:
        raise ValueError(f"--num {args.num}: expected an integer >= 1")
    labels = parse_labels(args.labels)
    names = [v for v in labels or [] if isinstance(v, str)]
    if names:
        raise ValueError(f"--labels {names[0]!r}: a saved model has no class names; expected class ids")
    model = MaskedTransformer.from_pretrained(args.model, map_location=args.device)
    if labels is not None:
        ids = torch.tensor(labels, device=args.device)
        labels = ids.repeat(args.num // len(ids) + 1)[: args.num]
    cond = None if labels is None else Condition(labels=labels)
    generator = sample_generators(call.seed, 0, args.num, torch.device(args.device))
    result = method.decode(model, model.spec, batch_size=args.num, cond=cond, generator=generator, **options)
    return [save_codes(out, result.codes, model.spec, labels, overwrite=args.overwrite)]


def generate_images(args: argparse.Namespace) -> list[Path]:
    from mgm.pipelines.image_io import image_grid, read_image, read_mask, write_pngs

    check_args(args)
    cls = image_pipeline_class(args)
    if cls.decoder_kind == AR and args.task != "sample":
        raise ValueError(f"an AR pipeline samples images; {args.task} needs a masked or flexible-order AR pipeline")
    from mgm.parallel import launch

    ranks = launch(args.devices, args.device)
    args.device = ranks.device
    pipe = load_pipeline(cls, args)
    options, labels = call_options(args), parse_labels(args.labels)
    if args.task == "sample":
        return sample_images(pipe, args, options, labels, ranks)
    if not args.input:
        raise ValueError(f"image {args.task} needs --input IMAGE [IMAGE ...]")
    pipe.split_options(options)  # bad options fail before the inputs are read
    inputs = torch.stack([read_image(p) for p in args.input]).to(args.device)
    if args.task == "inpaint":
        if not args.mask:
            raise ValueError("image inpaint needs --mask MASK (white = regenerate)")
        images = pipe.inpaint(inputs, read_mask(args.mask).to(args.device), labels=labels, **options)
    elif args.task == "outpaint":
        images = pipe.outpaint(inputs, args.direction, args.amount, labels=labels, **options)
    else:
        images = pipe.variations(inputs, args.strength, labels=labels, **options)
    files = {f"{args.task}_{i:03d}.png": image for i, image in enumerate(images)}
    files[f"{args.task}_grid.png"] = image_grid(images)
    return write_pngs(files, args.out, overwrite=args.overwrite)


GRID_MAX = 100  # samples shown in sample_grid.png (the first ones)


def sample_images(pipe, args: argparse.Namespace, options: dict, labels, ranks=None) -> list[Path]:
    """``--num`` samples, ``--batch-size`` at a time, each batch written as it is done: memory
    stays one batch's however many are asked for. The samples are those of one
    ``pipe.generate(num)`` call (``first_index``); the grid shows the first GRID_MAX. With
    ``ranks`` (``mgm.parallel``), this process writes its block of batches, rank 0 the grid; the
    files are those of one process. Returns every file written (rank 0; [] on the others)."""
    from tqdm import tqdm

    from mgm.parallel import Ranks
    from mgm.pipelines.image_io import check_free, image_grid, write_pngs

    ranks = Ranks() if ranks is None else ranks
    num, batch = args.num, args.batch_size
    pipe.split_options(options)  # bad options fail before anything is decoded
    labels = pipe.resolve_labels(num, labels)
    width = max(3, len(str(num - 1)))
    names = [f"sample_{i:0{width}d}.png" for i in range(num)]
    check_free(args.out, [*names, "sample_grid.png"], args.overwrite)
    ranks.barrier()  # every rank has checked before any writes
    # Samples cycling through the classes line up as one column per class.
    by_class = not args.labels and pipe.num_classes and num % pipe.num_classes == 0
    shown = min(num, GRID_MAX - GRID_MAX % pipe.num_classes if by_class else GRID_MAX)
    block = ranks.blocks(num, batch)
    written, preview = [], []
    with tqdm(total=len(block), desc="sampling", unit="image", disable=not ranks.is_main) as bar:
        for first in range(block.start, block.stop, batch):
            rows = slice(first, min(block.stop, first + batch))
            chosen = None if labels is None else labels[rows]
            call = {**options, "first_index": first, "progress": False}  # one bar for the run, below
            images = pipe.generate(rows.stop - first, labels=chosen, **call)
            written += write_pngs(dict(zip(names[rows], images)), args.out, overwrite=True)
            preview += list(images[: max(0, shown - first)].cpu())
            bar.update(len(images))
    written, preview = ranks.gather(written), ranks.gather(preview)
    if not ranks.is_main:
        return []
    preview = [image for part in preview for image in part][:shown]
    grid = image_grid(torch.stack(preview), nrow=pipe.num_classes if by_class else None)
    return [path for part in written for path in part] + write_pngs({"sample_grid.png": grid}, args.out, overwrite=True)


def generate_audio(args: argparse.Namespace) -> list[Path]:
    from mgm.data.audio_io import read_audio, write_wavs
    from mgm.pipelines import AudioPipeline

    check_args(args)
    if args.task != "sample" and not args.input:
        raise ValueError(f"audio {args.task} needs --input FILE [FILE ...]")
    if args.task == "infill" and (args.start is None or args.end is None):
        raise ValueError("audio infill needs --start and --end (seconds)")
    from mgm.parallel import launch

    ranks = launch(args.devices, args.device)
    args.device = ranks.device
    pipe = load_pipeline(AudioPipeline, args)
    options = {**call_options(args), "labels": parse_labels(args.labels), "texts": args.texts}
    if args.task == "sample":
        return sample_audio(pipe, args, options, ranks)
    else:
        pipe.split_options(call_options(args))  # bad options fail before the inputs are read
        inputs = [read_audio(p, pipe.sample_rate, pipe.tokenizer.channels)[0] for p in args.input]
        length = min(x.shape[-1] for x in inputs)
        batch = torch.stack([x[..., :length] for x in inputs]).to(args.device)
        if args.task == "continue":
            clips = pipe.continue_(batch, args.seconds, **options)
        else:
            clips = pipe.infill(batch, args.start, args.end, **options)
    files = {f"{args.task}_{i:03d}.wav": clip for i, clip in enumerate(clips)}
    return write_wavs(files, pipe.sample_rate, args.out, overwrite=args.overwrite)


def sample_audio(pipe, args: argparse.Namespace, options: dict, ranks) -> list[Path]:
    """``--num`` clips ``sample_000.wav ...``: this rank's block of batches (``mgm.parallel``),
    the clips and files of one process. Returns every file written (rank 0; [] on the others)."""
    from mgm.data.audio_io import write_wavs

    num = args.num
    pipe.split_options({k: v for k, v in options.items() if k not in ("labels", "texts")})
    labels = pipe.resolve_labels(num, options.pop("labels"))
    texts = options.pop("texts")
    if texts is not None and len(texts) not in (1, num):
        raise ValueError(f"--texts: {len(texts)} captions for --num {num} clips; expected 1 or {num}")
    names = [f"sample_{i:03d}.wav" for i in range(num)]
    from mgm.pipelines.image_io import check_free

    check_free(args.out, names, args.overwrite)
    ranks.barrier()  # every rank has checked before any writes
    block = ranks.blocks(num, args.batch_size)
    written = []
    if block:
        rows = slice(block.start, block.stop)
        clips = pipe.generate(
            len(block), seconds=args.seconds, first_index=block.start,
            labels=None if labels is None else labels[rows],
            texts=None if texts is None else texts if len(texts) == 1 else texts[rows], **options,
        )  # fmt: skip
        written = write_wavs(dict(zip(names[rows], clips)), pipe.sample_rate, args.out, overwrite=True)
    written = ranks.gather(written)
    return [path for part in written for path in part] if ranks.is_main else []


def sample_motions(pipe, args: argparse.Namespace, options: dict, ranks) -> list[Path]:
    """One motion per caption (or ``--num`` of one caption), ``sample_000.npy`` (+ joints, GIF) ...:
    this rank's block of batches (``mgm.parallel``), the files of one process (rank 0 returns them all)."""
    from mgm.pipelines.image_io import check_free
    from mgm.pipelines.motion_io import motion_files, write_motions

    texts = list(args.texts)
    num = args.num if len(texts) == 1 else len(texts)
    names = [f"sample_{i:03d}" for i in range(num)]
    render = not args.no_render
    check_free(args.out, [p.name for n in names for p in motion_files(n, Path(args.out), render)], args.overwrite)
    ranks.barrier()  # every rank has checked before any writes
    block = ranks.blocks(num, args.batch_size)
    written = []
    if block:
        shard = texts if len(texts) == 1 else texts[block.start : block.stop]
        motions = pipe.generate(len(block), texts=shard, seconds=args.seconds, first_index=block.start,
                                steps_per_second=args.steps_per_second, **options)  # fmt: skip
        files = {names[block.start + i]: motion.cpu() for i, motion in enumerate(motions)}
        written = write_motions(files, args.out, overwrite=True, render=render)
    written = ranks.gather(written)
    return [path for part in written for path in part] if ranks.is_main else []


def generate_motions(args: argparse.Namespace) -> list[Path]:
    from mgm.pipelines.motion import MotionPipeline
    from mgm.pipelines.motion_io import read_motion, write_motions

    check_args(args)
    if args.labels:
        raise ValueError("motion is conditioned on captions, not --labels")
    if args.task in ("inbetween", "complete", "edit-part") and not args.input:
        raise ValueError(f"motion --task {args.task} needs --input FILE.npy")
    if args.steps_per_second is not None and args.task != "sample":
        raise ValueError("--steps-per-second goes with --task sample")
    from mgm.parallel import launch

    ranks = launch(args.devices, args.device)
    args.device = ranks.device
    pipe = load_pipeline(MotionPipeline, args)
    options = call_options(args)
    pipe.split_options(options)  # bad options fail before the input is read
    given = None if not args.input else read_motion(args.input)[None]
    if args.task == "sample":
        return sample_motions(pipe, args, options, ranks)
    elif args.task == "long":
        motions = pipe.long_sequence(args.texts, args.seconds or 2.0, **options)
    elif args.task == "inbetween":
        motions = pipe.inbetween(given, args.keep_start, args.keep_end, texts=args.texts, **options)
    elif args.task == "complete":
        motions = pipe.complete(given, args.seconds, args.keep, texts=args.texts, **options)
    else:
        motions = pipe.edit_part(given, args.part, texts=args.texts, **options)
    files = {f"{args.task}_{i:03d}": motion.cpu() for i, motion in enumerate(motions)}
    return write_motions(files, args.out, overwrite=args.overwrite, render=not args.no_render)


def generate_videos(args: argparse.Namespace) -> list[Path]:
    """``video`` sample / predict / interpolate: GIFs (and MP4s with ``--mp4``) of T frames each, and
    a grid clip of the first GRID_MAX."""
    from mgm.pipelines import VideoPipeline
    from mgm.pipelines.image_io import check_free
    from mgm.pipelines.video_io import clip_grid, read_video, write_videos

    check_args(args)
    if args.task != "sample" and not args.input:
        raise ValueError(f"video {args.task} needs --input CLIP.gif [CLIP.gif ...]")
    if args.fps <= 0:
        raise ValueError(f"--fps {args.fps}: expected a positive number")
    if args.mp4:
        import shutil

        if shutil.which("ffmpeg") is None:
            raise ValueError("--mp4 needs an ffmpeg binary on PATH and none was found; leave --mp4 off for GIFs")
    from mgm.parallel import launch

    ranks = launch(args.devices, args.device)
    args.device = ranks.device
    pipe = load_pipeline(VideoPipeline, args)
    options, labels = call_options(args), parse_labels(args.labels)
    pipe.split_options(options)  # bad options fail before the inputs are read
    suffixes = (".gif", ".mp4") if args.mp4 else (".gif",)
    if args.task == "sample":
        num = args.num
        names = [f"sample_{i:03d}" for i in range(num)]
        check_free(args.out, [n + s for n in [*names, "sample_grid"] for s in suffixes], args.overwrite)
        ranks.barrier()  # every rank has checked before any writes
        block = ranks.blocks(num, args.batch_size)
        labels = pipe.resolve_labels(num, labels)
        clips = torch.zeros(0)
        written = []
        if block:
            chosen = None if labels is None else labels[block.start : block.stop]
            clips = pipe.generate(len(block), labels=chosen, first_index=block.start, **options).cpu()
            files = {names[block.start + i] + s: clip for i, clip in enumerate(clips) for s in suffixes}
            written = write_videos(files, args.out, args.fps, overwrite=True)
        written, shown = ranks.gather(written), ranks.gather(clips[:GRID_MAX])
        if not ranks.is_main:
            return []
        preview = torch.cat([part for part in shown if len(part)])[:GRID_MAX]
        grid = {f"sample_grid{s}": clip_grid(preview) for s in suffixes}
        return [path for part in written for path in part] + write_videos(grid, args.out, args.fps, overwrite=True)
    inputs = [read_video(p) for p in args.input]
    length = min(len(clip) for clip in inputs)
    batch = torch.stack([clip[:length] for clip in inputs]).to(args.device)
    if args.task == "predict":
        given = args.given if args.given is not None else min(length, pipe.num_frames // 4 or 1)
        if not 1 <= given <= length:
            raise ValueError(f"--given {given}: expected 1 to {length} (the frames of the shortest --input clip)")
        clips = pipe.predict(batch[:, :given], args.num_future, labels=labels, **options)
    else:
        if args.keep_start < 1 or args.keep_end < 1 or args.keep_start + args.keep_end > length:
            raise ValueError(
                f"--keep-start {args.keep_start} --keep-end {args.keep_end}: expected at least 1 frame each, "
                f"together at most the {length} frames of the shortest --input clip"
            )
        clips = pipe.interpolate(batch[:, : args.keep_start], batch[:, length - args.keep_end :], labels=labels,
                                 **options)  # fmt: skip
    files = {f"{args.task}_{i:03d}{s}": clip.cpu() for i, clip in enumerate(clips) for s in suffixes}
    return write_videos(files, args.out, args.fps, overwrite=args.overwrite)
