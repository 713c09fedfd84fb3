"""``mgm-generate`` / ``python generate.py``: sample from a saved model and write the results.

    python generate.py image                      # the shipped Shapes10 pipeline, a grid of samples
    python generate.py image --labels 2 --num 16 --out outputs/triangles
    python generate.py image inpaint --input in.png --mask mask.png
    python generate.py audio --labels 4 --seconds 2          # the shipped Tones8 pipeline, WAV files
    python generate.py audio continue --input prompt.wav --seconds 2
    python generate.py audio infill --input clip.wav --start 0.5 --end 1.0 --plan magnet
    python generate.py motion "a person walks forward and waves" --seconds 4   # .npy + GIF per motion
    python generate.py motion "someone waves" --task edit-part --part upper --input walk.npy
    python generate.py codes --model outputs/markov_toy/model --num 8

Each modality has its subcommand; ``codes`` works for any saved MaskedTransformer and writes the
raw token grid. Files are written into ``--out`` and their paths printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mgm.data.codes import save_codes
from mgm.decoding import MASKED_DECODERS, get_masked_decoder
from mgm.models import Condition, MaskedTransformer
from mgm.schedules.reuse import ReusePlan

IMAGE_TASKS = ("sample", "inpaint", "outpaint", "variations")
AUDIO_TASKS = ("sample", "continue", "infill")
MOTION_TASKS = ("sample", "inbetween", "complete", "edit-part", "long")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mgm-generate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="modality", required=True)
    image = sub.add_parser("image", help="images from an ImagePipeline (default: the shipped one)")
    image.add_argument("task", nargs="?", choices=IMAGE_TASKS, default="sample")
    image.add_argument("--model", help="pipeline folder (default: the shipped Shapes10 pipeline)")
    image.add_argument("--input", nargs="+", help="input image file(s) for inpaint / outpaint / variations")
    image.add_argument("--mask", help="mask image for inpaint: white = regenerate")
    image.add_argument("--direction", default="right", help="outpaint: left, right, up or down")
    image.add_argument("--amount", type=int, help="outpaint: pixels to slide (default: a quarter)")
    image.add_argument("--strength", type=float, default=0.5, help="variations: share of tokens re-drawn")
    image.add_argument("--window", type=int, help="sjd: draft window length (AR pipelines)")
    image.add_argument("--init", choices=["random", "prev", "above"], help="sjd: how drafts are initialised")
    _add_decode_args(image, defaults_from_model=True)
    audio = sub.add_parser("audio", help="audio clips from an AudioPipeline (default: the shipped one)")
    audio.add_argument("task", nargs="?", choices=AUDIO_TASKS, default="sample")
    audio.add_argument("--model", help="pipeline folder (default: the shipped Tones8 pipeline)")
    audio.add_argument("--input", nargs="+", help="audio file(s): the prompt to continue or the clip to infill")
    audio.add_argument("--seconds", type=float, help="clip length (default: the longest the model takes)")
    audio.add_argument("--start", type=float, help="infill: start of the span to re-decode (s)")
    audio.add_argument("--end", type=float, help="infill: end of the span to re-decode (s)")
    audio.add_argument("--texts", nargs="+", help="caption(s) for a text-conditioned model: one, or one per clip")
    add_plan_options(audio)
    _add_decode_args(audio, defaults_from_model=True)
    motion = sub.add_parser("motion", help="motions from a MotionPipeline (default: the shipped one)")
    motion.add_argument("texts", nargs="+", help="caption(s): one motion each (long: one segment each)")
    motion.add_argument("--task", choices=MOTION_TASKS, default="sample")
    motion.add_argument("--model", help="pipeline folder (default: the shipped Motions7 pipeline)")
    motion.add_argument("--input", help="inbetween / complete / edit-part: a .npy of 263-dim features [F, 263]")
    motion.add_argument("--seconds", type=float, help="length (default: the longest the model takes)")
    motion.add_argument("--keep-start", type=float, default=1.0, help="inbetween: seconds kept at the start")
    motion.add_argument("--keep-end", type=float, default=1.0, help="inbetween: seconds kept at the end")
    motion.add_argument("--keep", choices=["prefix", "suffix"], default="prefix", help="complete: which end is given")
    motion.add_argument("--part", choices=["upper", "lower"], default="upper", help="edit-part: the part regenerated")
    motion.add_argument("--steps-per-second", type=float, help="sample / long: decoding steps scaled with length")
    motion.add_argument("--no-render", action="store_true", help="write .npy files only (no GIF)")
    _add_decode_args(motion, defaults_from_model=True)
    codes = sub.add_parser("codes", help="raw token grids from a saved MaskedTransformer")
    codes.add_argument("--model", required=True, help="folder written by save_pretrained")
    _add_decode_args(codes)
    return parser


def _add_decode_args(parser: argparse.ArgumentParser, defaults_from_model: bool = False) -> None:
    parser.add_argument("--num", type=int, default=8, help="samples to generate")
    parser.add_argument("--seed", type=int, default=0)
    add_decode_options(parser, defaults_from_model, ar=defaults_from_model)
    parser.add_argument("--labels", type=int, nargs="+", help="class labels, cycled over the samples")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="outputs/generate", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def add_decode_options(parser: argparse.ArgumentParser, defaults_from_model: bool = True, ar: bool = False) -> None:
    """The decoding options (method, steps, schedule, sampling, reuse plan) shared by mgm-generate and mgm-eval."""
    # With a pipeline, unset decode options fall back to the pipeline's saved defaults.
    default = (lambda value: None) if defaults_from_model else (lambda value: value)
    parser.add_argument("--num-steps", type=int, default=default(12))
    methods = sorted(MASKED_DECODERS) + (["ar", "sjd"] if ar else [])
    parser.add_argument("--method", choices=methods, default=default("maskgit"))
    parser.add_argument("--schedule", default=default("cosine"))
    parser.add_argument("--temperature", type=float, default=default(1.0))
    parser.add_argument("--guidance-scale", type=float, default=default(0.0))
    parser.add_argument("--full-first", type=int, help="recap (or group): full steps at the start (default 2)")
    parser.add_argument(
        "--cheap-per-full", type=int, help="recap (or group): cheap steps after each later full step (default 1)"
    )
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], help="masked decoding: autocast dtype")
    parser.add_argument("--compile", action="store_true", help="masked decoding: torch.compile the transformer")


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", help="codebook-group plan for --method group: soundstorm, magnet, gipd, joint")
    parser.add_argument("--plan-steps", type=int, nargs="+", help="decoding steps per group of the plan")


def generate_codes(args: argparse.Namespace) -> list[Path]:
    out = Path(args.out) / "codes.safetensors"
    if out.exists() and not args.overwrite:
        raise SystemExit(f"error: {out} exists; pass --overwrite to replace it")
    model = MaskedTransformer.from_pretrained(args.model, map_location=args.device)
    labels = None
    if args.labels:
        labels = torch.tensor(args.labels, device=args.device).repeat(args.num // len(args.labels) + 1)[: args.num]
    if args.method == "group":
        raise SystemExit("error: codes supports --method maskgit or recap (group plans: generate.py audio)")
    extra = {"reuse": ReusePlan.from_options(_reuse_options(args) or {})} if args.method == "recap" else {}
    generator = torch.Generator(args.device).manual_seed(args.seed)
    if args.compile:
        extra["compile"] = True
    result = get_masked_decoder(args.method)(
        model,
        model.spec,
        batch_size=args.num,
        num_steps=args.num_steps,
        schedule=args.schedule,
        cond=None if labels is None else Condition(labels=labels),
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        generator=generator,
        dtype=args.dtype,
        **extra,
    )
    return [save_codes(out, result.codes, model.spec, labels, overwrite=args.overwrite)]


def decode_overrides(args: argparse.Namespace, pipe) -> dict:
    """A masked pipeline's decode overrides from the options of ``add_decode_options`` (and, where the
    parser has them, ``add_plan_options``); None values keep the pipeline's saved defaults.
    The speed options (--dtype, --compile) are set on ``pipe.settings`` directly."""
    speed = {"dtype": getattr(args, "dtype", None), "compile": True if getattr(args, "compile", False) else None}
    pipe.settings = pipe.settings.update(**speed)
    decode = _decode_overrides(args, pipe.settings.method)
    plan, plan_steps = getattr(args, "plan", None), getattr(args, "plan_steps", None)
    reuse = _reuse_options(args, pipe.settings.method) or {}
    if plan:
        decode.update(method=args.method or "group", plan=plan, plan_options=dict(reuse))
    if plan_steps:
        plan = plan or pipe.settings.plan
        if plan in ("soundstorm",):
            raise SystemExit("error: --plan-steps does not apply to soundstorm (use magnet, gipd or joint)")
        steps = plan_steps[0] if plan == "joint" else plan_steps
        decode.update(method="group", plan=plan, plan_options={"steps": steps, **reuse})
    elif reuse and not plan and decode["method"] in (None, "group") and pipe.settings.method == "group":
        decode["plan_options"] = {**pipe.settings.plan_options, **reuse}  # the saved plan, decoded with reuse
    return decode


def _decode_overrides(args: argparse.Namespace, saved_method: str) -> dict:
    """The masked pipelines' decode overrides from the shared options (None = the pipeline's default,
    whose method is ``saved_method``)."""
    decode = dict(
        num_steps=args.num_steps,
        schedule=args.schedule,
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        method=args.method,
    )
    reuse = _reuse_options(args, saved_method)
    if reuse is not None:
        decode["plan_options"] = reuse
    return decode


def _reuse_options(args: argparse.Namespace, saved_method: str | None = None) -> dict | None:
    """ReCAP's plan options from --full-first / --cheap-per-full (None when neither is given)."""
    options = {"full_first": args.full_first, "cheap_per_full": args.cheap_per_full}
    options = {k: v for k, v in options.items() if v is not None}
    method = args.method or saved_method
    if options and method not in ("recap", "group") and getattr(args, "plan", None) is None:
        raise SystemExit("error: --full-first / --cheap-per-full go with --method recap (or a group plan)")
    return options or None


def _pipeline_class(folder: str) -> str | None:
    from mgm.io import load_json

    path = Path(folder) / "pipeline.json"
    return load_json(path).get("_class_name") if path.is_file() else None


def generate_ar_images(args: argparse.Namespace) -> list[Path]:
    from mgm.pipelines import ARImagePipeline
    from mgm.pipelines.image_io import image_grid, write_pngs

    if args.task != "sample":
        raise SystemExit(f"error: an AR pipeline samples images; {args.task} needs a masked ImagePipeline")
    if args.method not in (None, "ar", "sjd"):
        raise SystemExit(f"error: an AR pipeline decodes with --method ar or sjd, not {args.method}")
    if args.dtype or args.compile:
        raise SystemExit("error: --dtype / --compile apply to masked pipelines, not to an AR pipeline")
    pipe = ARImagePipeline.from_pretrained(args.model, args.device)
    decode = dict(method=args.method, temperature=args.temperature, guidance_scale=args.guidance_scale,
                  window=args.window, init=args.init)  # fmt: skip
    images = pipe.generate(args.num, args.labels, args.seed, progress=True, **decode)
    files = {f"sample_{i:03d}.png": image for i, image in enumerate(images)}
    files["sample_grid.png"] = image_grid(images)
    try:
        return write_pngs(files, args.out, overwrite=args.overwrite)
    except FileExistsError as e:
        raise SystemExit(f"error: {e}") from e


def generate_images(args: argparse.Namespace) -> list[Path]:
    from mgm.pipelines import ImagePipeline
    from mgm.pipelines.image_io import image_grid, read_image, read_mask, write_pngs

    if args.model and _pipeline_class(args.model) == "ARImagePipeline":
        return generate_ar_images(args)
    if args.method in ("ar", "sjd"):
        raise SystemExit(
            f"error: --method {args.method} needs an AR image pipeline (--model DIR of an ARImagePipeline)"
        )
    pipe = ImagePipeline.from_pretrained(args.model, args.device) if args.model else ImagePipeline.default(args.device)
    decode = decode_overrides(args, pipe)
    if args.task == "sample":
        images = pipe.generate(num=args.num, labels=args.labels, seed=args.seed, progress=True, **decode)
    else:
        if not args.input:
            raise SystemExit(f"error: image {args.task} needs --input IMAGE [IMAGE ...]")
        inputs = torch.stack([read_image(p) for p in args.input]).to(args.device)
        labels = args.labels
        if args.task == "inpaint":
            if not args.mask:
                raise SystemExit("error: image inpaint needs --mask MASK (white = regenerate)")
            images = pipe.inpaint(inputs, read_mask(args.mask).to(args.device), labels, args.seed, **decode)
        elif args.task == "outpaint":
            images = pipe.outpaint(inputs, args.direction, args.amount, labels, args.seed, **decode)
        else:
            images = pipe.variations(inputs, args.strength, labels, args.seed, **decode)
    files = {f"{args.task}_{i:03d}.png": image for i, image in enumerate(images)}
    # Samples cycling through the classes line up as one column per class.
    by_class = args.task == "sample" and not args.labels and pipe.num_classes and args.num % pipe.num_classes == 0
    files[f"{args.task}_grid.png"] = image_grid(images, nrow=pipe.num_classes if by_class else None)
    try:
        return write_pngs(files, args.out, overwrite=args.overwrite)
    except FileExistsError as e:
        raise SystemExit(f"error: {e}") from e


def generate_audio(args: argparse.Namespace) -> list[Path]:
    from mgm.data.audio_io import read_audio, write_wavs
    from mgm.pipelines import AudioPipeline

    try:
        pipe = (
            AudioPipeline.from_pretrained(args.model, args.device) if args.model else AudioPipeline.default(args.device)
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from e
    decode = decode_overrides(args, pipe)
    if args.texts:
        decode["texts"] = args.texts
    if args.task != "sample" and not args.input:
        raise SystemExit(f"error: audio {args.task} needs --input FILE [FILE ...]")
    if args.task == "infill" and (args.start is None or args.end is None):
        raise SystemExit("error: audio infill needs --start and --end (seconds)")
    try:
        if args.task == "sample":
            clips = pipe.generate(args.num, args.labels, args.seconds, args.seed, progress=True, **decode)
        else:
            inputs = [read_audio(p, pipe.sample_rate, pipe.tokenizer.channels)[0] for p in args.input]
            length = min(x.shape[-1] for x in inputs)
            batch = torch.stack([x[..., :length] for x in inputs]).to(args.device)
            if args.task == "continue":
                clips = pipe.continue_(batch, args.seconds, args.labels, seed=args.seed, progress=True, **decode)
            else:
                clips = pipe.infill(batch, args.start, args.end, args.labels, seed=args.seed, progress=True, **decode)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from e
    files = {f"{args.task}_{i:03d}.wav": clip for i, clip in enumerate(clips)}
    try:
        return write_wavs(files, pipe.sample_rate, args.out, overwrite=args.overwrite)
    except FileExistsError as e:
        raise SystemExit(f"error: {e}") from e


def generate_motions(args: argparse.Namespace) -> list[Path]:
    from mgm.pipelines.motion import MotionPipeline
    from mgm.pipelines.motion_io import read_motion, write_motions

    if args.labels:
        raise SystemExit("error: motion is conditioned on captions, not --labels")
    if args.task in ("inbetween", "complete", "edit-part") and not args.input:
        raise SystemExit(f"error: motion --task {args.task} needs --input FILE.npy")
    try:
        pipe = (
            MotionPipeline.from_pretrained(args.model, args.device)
            if args.model
            else MotionPipeline.default(args.device)
        )
        decode = decode_overrides(args, pipe)
        decode.update(progress=True)
        given = None if not args.input else read_motion(args.input)[None]
        if args.steps_per_second is not None:
            if args.task not in ("sample", "long"):
                raise SystemExit("error: --steps-per-second goes with --task sample or long")
            decode["steps_per_second"] = args.steps_per_second
        if args.task == "sample":
            num = args.num if len(args.texts) == 1 else None
            motions = pipe.generate(args.texts, args.seconds, num=num, seed=args.seed, **decode)
        elif args.task == "long":
            motions = pipe.long_sequence(args.texts, args.seconds or 2.0, seed=args.seed, **decode)
        elif args.task == "inbetween":
            motions = pipe.inbetween(given, args.keep_start, args.keep_end, args.texts, seed=args.seed, **decode)
        elif args.task == "complete":
            motions = pipe.complete(given, args.texts, args.seconds, keep=args.keep, seed=args.seed, **decode)
        else:
            motions = pipe.edit_part(given, args.texts, part=args.part, seed=args.seed, **decode)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from e
    files = {f"{args.task}_{i:03d}": motion.cpu() for i, motion in enumerate(motions)}
    try:
        return write_motions(files, args.out, overwrite=args.overwrite, render=not args.no_render)
    except FileExistsError as e:
        raise SystemExit(f"error: {e}") from e


def main(argv: list[str] | None = None) -> list[Path]:
    args = build_parser().parse_args(argv)
    generators = {
        "codes": generate_codes,
        "image": generate_images,
        "audio": generate_audio,
        "motion": generate_motions,
    }
    paths = generators[args.modality](args)
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
