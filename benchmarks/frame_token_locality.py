"""How local a video tokenizer's frame codes are: between consecutive frames of real MovingShapes
clips, the share of token cells whose pixels are unchanged, and how often their code changes anyway.

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.frame_token_locality [--model FOLDER] [--num 48]
        [--given 4] [--out FILE]

A cell is the patch of ``downsample x downsample`` pixels under one token. With codes that see only
their own patch, an unchanged cell keeps its code; a code that changes there depends on pixels
elsewhere in the frame, and the transformer has to predict such changes from the whole frame.
Also reported: the share of future tokens equal to the last given frame's (the copy-forward
baseline of benchmarks/video.py). ``--model`` is a VideoPipeline or VideoVQ folder (default: the
shipped pipeline's tokenizer).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.timing import write_report
from mgm.data.moving_shapes import make_clips
from mgm.pipelines import VideoPipeline
from mgm.tokenizers import VideoVQ

CLIP_SEED = 3  # the held-out seed of benchmarks/video.py


def locality(tokenizer: VideoVQ, clips: torch.Tensor, given: int) -> dict:
    """clips FloatTensor[B, T, 3, S, S] -> the shares described in the module docstring."""
    b, t = clips.shape[:2]
    h = w = tokenizer.image_size // tokenizer.downsample
    codes = tokenizer.encode(clips).view(b, t, h, w)
    moved = (clips[:, 1:] != clips[:, :-1]).any(2)  # [B, T-1, S, S]: a pixel changed
    cell_moved = moved.unflatten(-2, (h, -1)).unflatten(-1, (w, -1)).any(-1).any(-2)  # [B, T-1, h, w]
    code_changed = codes[:, 1:] != codes[:, :-1]
    still = ~cell_moved
    copied = codes[:, given:] == codes[:, given - 1 : given]
    return {
        "cells_unchanged": float(still.float().mean()),
        "code_changes_where_pixels_unchanged": float(code_changed[still].float().mean()),
        "code_changes_where_pixels_changed": float(code_changed[cell_moved].float().mean()),
        "future_tokens_equal_to_last_given_frame": float(copied.float().mean()),
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a VideoPipeline or VideoVQ folder (default: the shipped pipeline)")
    parser.add_argument("--num", type=int, default=48, help="real clips")
    parser.add_argument("--given", type=int, default=4, help="the frames given to the predictor")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if args.model is None:
        tokenizer = VideoPipeline.default().tokenizer
    elif (Path(args.model) / "tokenizer").is_dir():
        tokenizer = VideoPipeline.from_pretrained(args.model).tokenizer
    else:
        tokenizer = VideoVQ.from_pretrained(args.model)
    labels = torch.arange(args.num) % 10
    clips = make_clips(args.num, tokenizer.num_frames, tokenizer.image_size, CLIP_SEED, labels).clips
    report = {"model": args.model or "shipped", "num": args.num, "given": args.given, "seed": CLIP_SEED}
    report.update(locality(tokenizer, clips, args.given))
    write_report(report, args.out)
    return report


if __name__ == "__main__":
    main()
