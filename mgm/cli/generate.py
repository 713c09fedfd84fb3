"""``mgm-generate`` / ``python generate.py``: sample from a saved model and write the results.

    python generate.py codes --model outputs/markov_toy/model --num 8 --seed 0 --out outputs/samples

Each modality adds its subcommand here (writing images, audio or motion); ``codes`` works for any
saved MaskedTransformer and writes the raw token grid.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mgm.data.codes import save_codes
from mgm.decoding import maskgit_decode
from mgm.models import Condition, MaskedTransformer

METHODS = ("maskgit",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mgm-generate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="modality", required=True)
    codes = sub.add_parser("codes", help="raw token grids from a saved MaskedTransformer")
    codes.add_argument("--model", required=True, help="folder written by save_pretrained")
    _add_decode_args(codes)
    return parser


def _add_decode_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num", type=int, default=8, help="samples to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-steps", type=int, default=12)
    parser.add_argument("--method", choices=METHODS, default="maskgit")
    parser.add_argument("--schedule", default="cosine")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--guidance-scale", type=float, default=0.0)
    parser.add_argument("--labels", type=int, nargs="+", help="class labels, cycled over the samples")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="outputs/generate", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def generate_codes(args: argparse.Namespace) -> list[Path]:
    out = Path(args.out) / "codes.safetensors"
    if out.exists() and not args.overwrite:
        raise SystemExit(f"error: {out} exists; pass --overwrite to replace it")
    model = MaskedTransformer.from_pretrained(args.model, map_location=args.device)
    labels = None
    if args.labels:
        labels = torch.tensor(args.labels, device=args.device).repeat(args.num // len(args.labels) + 1)[: args.num]
    generator = torch.Generator(args.device).manual_seed(args.seed)
    result = maskgit_decode(
        model,
        model.spec,
        batch_size=args.num,
        num_steps=args.num_steps,
        schedule=args.schedule,
        cond=None if labels is None else Condition(labels=labels),
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        generator=generator,
    )
    return [save_codes(out, result.codes, model.spec, labels, overwrite=args.overwrite)]


def main(argv: list[str] | None = None) -> list[Path]:
    args = build_parser().parse_args(argv)
    paths = {"codes": generate_codes}[args.modality](args)
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
