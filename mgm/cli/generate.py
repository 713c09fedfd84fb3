"""``mgm-generate`` / ``python generate.py``: sample from a saved model and write the results.

    python generate.py image                      # the shipped Shapes10 pipeline, a grid of samples
    python generate.py image --labels 2 --num 16 --out outputs/triangles
    python generate.py image inpaint --input in.png --mask mask.png
    python generate.py audio --labels 4 --seconds 2          # the shipped Tones8 pipeline, WAV files
    python generate.py audio continue --input prompt.wav --seconds 2
    python generate.py audio infill --input clip.wav --start 0.5 --end 1.0 --plan magnet
    python generate.py motion "a person walks forward and waves" --seconds 4   # .npy + GIF per motion
    python generate.py motion "someone waves" --task edit-part --part upper --input walk.npy
    python generate.py video --labels ring --num 4            # the shipped MovingShapes pipeline, GIFs
    python generate.py video predict --input clip.gif --given 4  # the rest of the clip after its first 4 frames
    python generate.py video interpolate --input clip.gif --keep-start 2 --keep-end 2
    python generate.py codes --model outputs/markov_toy/model --num 8

Each modality has its subcommand; ``codes`` works for any saved MaskedTransformer and writes the
raw token grid. Files are written into ``--out`` and their paths printed. The decoding methods
and their options come from the registry (``mgm.decoding.registry``): see ``--help``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mgm.cli import tasks
from mgm.cli.options import CLIParser, add_decode_options, cli_main, positive_int
from mgm.decoding.registry import AR, FLEX_AR, MASKED

IMAGE_TASKS = ("sample", "inpaint", "outpaint", "variations")
AUDIO_TASKS = ("sample", "continue", "infill")
MOTION_TASKS = ("sample", "inbetween", "complete", "edit-part", "long")
VIDEO_TASKS = ("sample", "predict", "interpolate")


def build_parser() -> argparse.ArgumentParser:
    parser = CLIParser(prog="mgm-generate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="modality", required=True)
    image = sub.add_parser(
        "image", help="images from a masked, AR or flexible-order AR image pipeline (default: the shipped one)"
    )
    image.add_argument("task", nargs="?", choices=IMAGE_TASKS, default="sample")
    image.add_argument("--model", help="pipeline folder or hub id org/name (default: the shipped Shapes10 pipeline)")
    image.add_argument("--input", nargs="+", help="input image file(s) for inpaint / outpaint / variations")
    image.add_argument("--mask", help="mask image for inpaint: white = regenerate")
    image.add_argument("--direction", default="right", help="outpaint: left, right, up or down")
    image.add_argument("--amount", type=int, help="outpaint: pixels to slide (default: a quarter)")
    image.add_argument("--strength", type=float, default=0.5, help="variations: share of tokens re-drawn")
    audio = sub.add_parser("audio", help="audio clips from an AudioPipeline (default: the shipped one)")
    audio.add_argument("task", nargs="?", choices=AUDIO_TASKS, default="sample")
    audio.add_argument("--model", help="pipeline folder or hub id org/name (default: the shipped Tones8 pipeline)")
    audio.add_argument("--input", nargs="+", help="audio file(s): the prompt to continue or the clip to infill")
    audio.add_argument("--seconds", type=float, help="clip length (default: the longest the model takes)")
    audio.add_argument("--start", type=float, help="infill: start of the span to re-decode (s)")
    audio.add_argument("--end", type=float, help="infill: end of the span to re-decode (s)")
    audio.add_argument("--texts", nargs="+", help="caption(s) for a text-conditioned model: one, or one per clip")
    motion = sub.add_parser("motion", help="motions from a MotionPipeline (default: the shipped one)")
    motion.add_argument("texts", nargs="+", help="caption(s): one motion each (long: one segment each)")
    motion.add_argument("--task", choices=MOTION_TASKS, default="sample")
    motion.add_argument("--model", help="pipeline folder or hub id org/name (default: the shipped Motions7 pipeline)")
    motion.add_argument("--input", help="inbetween / complete / edit-part: a .npy of 263-dim features [F, 263]")
    motion.add_argument("--seconds", type=float, help="length (default: the longest the model takes)")
    motion.add_argument("--keep-start", type=float, default=1.0, help="inbetween: seconds kept at the start")
    motion.add_argument("--keep-end", type=float, default=1.0, help="inbetween: seconds kept at the end")
    motion.add_argument("--keep", choices=["prefix", "suffix"], default="prefix", help="complete: which end is given")
    motion.add_argument("--part", choices=["upper", "lower"], default="upper", help="edit-part: the part regenerated")
    motion.add_argument("--steps-per-second", type=float, help="sample / long: decoding steps scaled with length")
    motion.add_argument("--no-render", action="store_true", help="write .npy files only (no GIF)")
    video = sub.add_parser("video", help="video clips from a VideoPipeline (default: the shipped one), as GIFs")
    video.add_argument("task", nargs="?", choices=VIDEO_TASKS, default="sample")
    video.add_argument("--model", help="pipeline folder or hub id org/name (default: the shipped MovingShapes one)")
    video.add_argument("--input", nargs="+", help="predict / interpolate: GIF clip(s); the shortest sets the length")
    video.add_argument("--given", type=positive_int, help="predict: the input's first frames given (default: T / 4)")
    video.add_argument(
        "--num-future", type=positive_int, help="predict: frames to predict (default: the rest of T; more: windows)"
    )
    video.add_argument("--keep-start", type=int, default=1, help="interpolate: the input's first frames kept")
    video.add_argument("--keep-end", type=int, default=1, help="interpolate: the input's last frames kept")
    video.add_argument("--fps", type=float, default=8.0, help="frames per second of the written clips")
    video.add_argument("--mp4", action="store_true", help="also write MP4 (H.264) files; needs ffmpeg on PATH")
    codes = sub.add_parser("codes", help="raw token grids from a saved MaskedTransformer")
    codes.add_argument("--model", required=True, help="folder written by save_pretrained, or a hub id org/name")
    modality_kinds = ((image, (MASKED, AR, FLEX_AR)), (audio, (MASKED,)), (motion, (MASKED,)), (video, (MASKED,)),
                      (codes, (MASKED,)))  # fmt: skip
    for p, kinds in modality_kinds:
        _add_common_args(p, kinds)
    return parser


def _add_common_args(parser: argparse.ArgumentParser, kinds: tuple[str, ...]) -> None:
    parser.add_argument("--num", type=positive_int, default=8, help="samples to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=positive_int, default=64, help="samples decoded together")
    parser.add_argument("--labels", nargs="+", help="class labels (ids or names), cycled over the samples")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--devices",
        type=positive_int,
        default=1,
        help="processes (one per GPU, or CPU processes) sharing the samples (sampling)",
    )
    parser.add_argument("--out", default="outputs/generate", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    add_decode_options(parser, kinds)


def run(args: argparse.Namespace) -> list[Path]:
    generators = {
        "codes": tasks.generate_codes,
        "image": tasks.generate_images,
        "audio": tasks.generate_audio,
        "motion": tasks.generate_motions,
        "video": tasks.generate_videos,
    }
    paths = generators[args.modality](args)
    for path in paths:
        print(path)
    return paths


def main(argv: list[str] | None = None) -> list[Path]:
    return cli_main(run, build_parser(), argv)


if __name__ == "__main__":
    main()
