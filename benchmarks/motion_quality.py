"""Action agreement of a MotionPipeline's motions on Motions7 (by the exact checker), editing checks.

    .venv/bin/python -m benchmarks.motion_quality [--model DIR] [--num 256] [--out FILE]

Captions and lengths come from real held-out Motions7 clips (--data-seed, default 3: the tokenizer
and transformer saw seed 0, and the decode defaults were chosen on seed 2): each generated clip
gets one real clip's caption and length, and the checker (``classify_motion`` on the recovered
joints) must find that clip's action; for actions with a direction (walk, run, forward jumps,
turns) ``classify_direction`` must find that too. References: the real clips themselves and the
real clips through the tokenizer. In-betweening keeps the first and last second: the kept tokens
must be bit-identical, and the junction must be smooth, measured as the jump in root-relative
joint velocity at the junction frames against the same measure inside real clips.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/motion_quality.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.timing import write_report
from mgm.data.motion_features import FPS, recover_joints
from mgm.data.motions import CLASSES, classify_direction, classify_motion, make_motions
from mgm.pipelines.motion import DEFAULT_MOTION_PIPELINE, MotionPipeline


def agreement(features, lengths, clips) -> dict:
    actions = classify_motion(features, lengths)
    directions = classify_direction(features, lengths)
    has_direction = clips.params.direction >= 0
    per_class = {c: float((actions[clips.labels == i] == i).float().mean()) for i, c in enumerate(CLASSES)}
    return {
        "action": float((actions == clips.labels).float().mean()),
        "action_and_direction": float(
            ((actions == clips.labels) & (~has_direction | (directions == clips.params.direction))).float().mean()
        ),
        "per_class": per_class,
    }


def velocity_jump(features: torch.Tensor, frame: int) -> torch.Tensor:
    """Mean change of root-relative joint velocity (m/s^2 per frame, as m/s) across ``frame`` -> [B]."""
    joints = recover_joints(features)
    local = joints - joints[..., :1, :]
    velocity = local.diff(dim=-3) * FPS  # (B, F - 1, 22, 3)
    return (velocity[:, frame] - velocity[:, frame - 1]).norm(dim=-1).mean(-1)


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_MOTION_PIPELINE))
    parser.add_argument("--num", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=3, help="seed of the real clips giving captions/lengths")
    parser.add_argument("--out")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = MotionPipeline.from_pretrained(args.model)
    clips = make_motions(args.num, seed=args.data_seed, seconds=None)
    lengths = clips.lengths.clamp(max=pipe.tokenizer.frames_for_tokens(pipe.max_tokens))
    tokens = (lengths // pipe.tokenizer.downsample).clamp(min=1)
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "num": args.num,
        "data_seed": args.data_seed,
        "settings": {"method": pipe.settings.method, **pipe.settings.resolved()},
        "real": agreement(clips.features, clips.lengths, clips),
    }
    through = torch.zeros_like(clips.features)
    generated = torch.zeros_like(clips.features)
    start = time.perf_counter()
    for n in tokens.unique().tolist():  # one decode per length: every clip of it at once
        rows = (tokens == n).nonzero()[:, 0]
        frames = n * pipe.tokenizer.downsample
        real = clips.features[rows, :frames]
        through[rows, :frames] = pipe.features(pipe.encode(real))
        captions = [clips.captions[i] for i in rows.tolist()]
        generated[rows, :frames] = pipe.generate(texts=captions, seconds=frames / FPS, seed=args.seed + n)
    elapsed = time.perf_counter() - start
    decoded_lengths = tokens * pipe.tokenizer.downsample
    report["real_through_tokenizer"] = agreement(through, decoded_lengths, clips)
    report["generated"] = agreement(generated, decoded_lengths, clips)
    report["generated"]["ms_per_clip"] = 1000 * elapsed / args.num

    # In-betweening on the clips of at least 4 s: keep 1 s at each end, generate the rest.
    long = (tokens * pipe.tokenizer.downsample >= 4 * FPS).nonzero()[:, 0][:64]
    frames = 4 * FPS
    real = clips.features[long, :frames]
    given = pipe.encode(real)
    result = pipe.inbetween_codes(real, 1.0, 1.0, texts=[clips.captions[i] for i in long.tolist()], seed=args.seed)
    kept = 1 * FPS // pipe.tokenizer.downsample
    identical = torch.equal(result.codes[..., :kept], given[..., :kept]) and torch.equal(
        result.codes[..., -kept:], given[..., -kept:]
    )
    inbetween = pipe.features(result.codes)
    report["inbetween"] = {
        "clips": len(long),
        "kept_tokens_identical": identical,
        "velocity_jump_at_junctions": float(
            (velocity_jump(inbetween, FPS) + velocity_jump(inbetween, frames - FPS)).mean() / 2
        ),
        "velocity_jump_real_same_frames": float(
            (velocity_jump(real, FPS) + velocity_jump(real, frames - FPS)).mean() / 2
        ),
        "velocity_jump_through_tokenizer_same_frames": float(
            (velocity_jump(pipe.features(given), FPS) + velocity_jump(pipe.features(given), frames - FPS)).mean() / 2
        ),
    }
    write_report(report, args.out)
    return report


if __name__ == "__main__":
    main()
