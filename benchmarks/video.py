"""Video prediction on MovingShapes: quality against passes and ms per clip, the masked decoders
beside frame-by-frame AR decoding of the same tokens, in one process.

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.video [--num 64] [--given 4] [--ar-num 16]
        [--match TEXT...] [--out FILE] [--markdown FILE]

Every row predicts the frames after the first ``--given`` frames of the same real held-out clips
(seed 3; the transformer saw seed 0, the judge seed 1) with the shipped VideoPipeline's model and
the same per-clip seeds, in batches of 16:

- the masked decoders on the whole future at once (MaskGIT at several step counts, ReCAP, cached
  MaskGIT, threshold decoding), through ``VideoPipeline.predict_codes``;
- frame-by-frame decoding: one future frame after another, each by MaskGIT over that frame's
  tokens with the frames after it masked (``k`` passes per frame); with one token per pass in
  raster order that is token-by-token AR decoding (64 passes per frame) on the same model, over
  ``--ar-num`` clips (its cost: one full forward per token, no KV cache).

Per row: sequential passes per clip, wall ms per clip (the row's whole decode over its clips,
divided by their number), and quality: the judge's class accuracy and Frechet distance on its
features to real clips (the FVD analogue), the exact checker's agreement (valid MovingShapes clip
of the right class), and against the real clip's own future (determined by its first frames:
constant velocities and bounces) the share of future tokens equal to the real clip's tokens and the
pixels' mean squared error. A last row samples whole clips (``generate``) for reference, and three
rows without decoding bound the figures: the real clips themselves, their VQ reconstructions (the
best the tokens allow) and the last given frame's tokens copied into every future frame (the
baseline a predictor must beat).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

if not __package__:  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.timing import write_report
from mgm.data.moving_shapes import make_clips
from mgm.decoding import DecodeResult
from mgm.decoding.registry import get_method
from mgm.eval.suite import VideoEvaluation, batched_statistics
from mgm.models import Condition
from mgm.pipelines import VideoPipeline
from mgm.pipelines.settings import sample_generators

CONTEXT_SEED, REAL_SEED, BATCH = 3, 2, 16
BASELINE = "maskgit 12 (defaults)"
# (row name, decode options for predict_codes) or (row name, ("frames", steps per frame)).
ROWS = [
    ("maskgit 4", {"num_steps": 4}),
    ("maskgit 8", {"num_steps": 8}),
    (BASELINE, {}),
    ("maskgit 16", {"num_steps": 16}),
    ("maskgit 24", {"num_steps": 24}),
    ("recap 12 (2 full, 1 cheap per full)", {"method": "recap", "num_steps": 12, "full_first": 2, "cheap_per_full": 1}),
    ("maskgit 12 cached (refresh 2)", {"cached": True, "refresh": 2}),
    ("threshold (defaults)", {"method": "threshold"}),
    ("frame-by-frame maskgit 2 per frame", ("frames", 2)),
    ("frame-by-frame maskgit 4 per frame", ("frames", 4)),
    ("frame-by-frame AR (one token per pass)", ("frames", None)),
]


class FutureMasked:
    """The transformer seeing only frames before ``frame + 1``: later frames' tokens are replaced by
    mask ids before every call, so one frame is decoded with the future unknown (no other traits)."""

    def __init__(self, model, frame: int, per_frame: int):
        self.model, self.spec, self.num_classes = model, model.spec, model.num_classes
        self.start = (frame + 1) * per_frame

    def __call__(self, codes, cond=None):
        codes = codes.clone()
        codes[..., self.start :] = self.spec.mask_ids[0]
        return self.model(codes, cond)


def frame_by_frame(
    pipe: VideoPipeline, context: torch.Tensor, labels, given: int, steps: int | None, seed: int, first_index: int = 0
):
    """Codes [B, 1, N] decoded one future frame at a time after the ``given`` frames of ``context``'s
    tokens; ``steps`` MaskGIT passes per frame, or None: one token per pass in raster order."""
    spec, t = pipe.spec, pipe.num_frames
    per_frame = spec.num_positions // t
    maskgit = get_method("maskgit")
    settings = pipe.settings.update(method="maskgit").options
    codes = context.clone()
    passes = 0
    for frame in range(given, t):
        editable = torch.zeros(spec.num_positions, dtype=torch.bool)
        editable[frame * per_frame : (frame + 1) * per_frame] = True
        options = dict(settings, num_steps=steps or per_frame)
        if steps is None:
            options["order"] = torch.arange(spec.num_positions)
        start = codes.clone()
        start[..., frame * per_frame :] = 0  # placeholders: the frame is decoded, later ones are hidden
        model = FutureMasked(pipe.transformer, frame, per_frame)
        generators = sample_generators(seed + frame, first_index, len(codes), pipe.device)
        result = maskgit.decode(model, spec, cond=Condition(labels=labels), generator=generators,
                                init_codes=start, editable=editable, **options)  # fmt: skip
        rows = slice(frame * per_frame, (frame + 1) * per_frame)
        codes[..., rows] = result.codes[..., rows]
        passes += result.nfe
    return DecodeResult(codes=codes, nfe=passes)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a VideoPipeline folder (default: the shipped one)")
    parser.add_argument("--judge", help="a ClipClassifier folder (default: the shipped one)")
    parser.add_argument("--num", type=int, default=64, help="clips per row")
    parser.add_argument("--ar-num", type=int, default=16, help="clips for the token-by-token AR row")
    parser.add_argument("--given", type=int, default=4, help="real first frames given")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--match", nargs="+", help="only the rows named with one of these (and the baseline)")
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = VideoPipeline.from_pretrained(args.model) if args.model else VideoPipeline.default()
    evaluation = VideoEvaluation(args.judge, pipe.num_frames, pipe.image_size)
    real, _ = evaluation.real_samples(512, REAL_SEED)
    reference = {"judge": batched_statistics(evaluation.extractors["judge"][0], real)}
    labels = torch.arange(args.num) % pipe.num_classes
    clips = make_clips(args.num, pipe.num_frames, pipe.image_size, CONTEXT_SEED, labels).clips
    truth = pipe.tokenizer.encode(clips)  # (num, 1, N): the real clips' tokens, future included
    per_frame = pipe.spec.num_positions // pipe.num_frames
    future = slice(args.given * per_frame, None)
    report = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
              "num": args.num, "ar_num": args.ar_num, "given": args.given, "seed": args.seed, "batch": BATCH,
              "settings": pipe.settings.resolved(), "rows": {}}  # fmt: skip
    rows = [r for r in ROWS if r[0] == BASELINE or not args.match or any(t in r[0] for t in args.match)]
    rows.append(("generate: maskgit 12 (defaults), no frames given", "generate"))
    rows += [("real clips, no decoding", "real"), ("VQ reconstructions of the real clips", "tokens"),
             ("the last given frame's tokens copied forward", "copy")]  # fmt: skip
    for name, decode in rows:
        num = args.ar_num if isinstance(decode, tuple) and decode[1] is None else args.num
        start = time.perf_counter()
        if decode in ("real", "tokens"):
            result = DecodeResult(codes=truth, nfe=0)
        elif decode == "copy":
            last = truth[..., (args.given - 1) * per_frame : args.given * per_frame]
            copied = torch.cat([truth[..., : args.given * per_frame]] + [last] * (pipe.num_frames - args.given), -1)
            result = DecodeResult(codes=copied, nfe=0)
        elif decode == "generate":
            result = pipe.generate_codes(num, labels=labels[:num], seed=args.seed, batch_size=BATCH)
        elif isinstance(decode, tuple):
            parts = [frame_by_frame(pipe, truth[i : min(num, i + BATCH)], labels[i : min(num, i + BATCH)], args.given,
                                    decode[1], args.seed, i) for i in range(0, num, BATCH)]  # fmt: skip
            result = DecodeResult.cat(parts)
        else:
            result = pipe.predict_codes(clips[:num, : args.given], labels=labels[:num], seed=args.seed,
                                        batch_size=BATCH, **decode)  # fmt: skip
        ms = None if decode in ("real", "tokens", "copy") else 1000 * (time.perf_counter() - start) / num
        decoded = clips if decode == "real" else pipe.tokenizer.decode(result.codes)
        scores = evaluation.score(decoded, labels[:num], reference)
        row = {"settings": "generate" if decode == "generate" else str(decode), "clips": num,
               "passes_per_clip": float(result.passes_per_sample().double().mean()),
               "ms_per_clip": ms, "judge_accuracy": scores["judge_accuracy"],
               "checker_agreement": scores["checker_agreement"], "checker_motion": scores["checker_motion"],
               "frechet_distance": scores["frechet_judge"]}  # fmt: skip
        if decode not in ("generate", "real"):
            row["future_token_accuracy"] = float((result.codes[..., future] == truth[:num, ..., future]).float().mean())
            row["future_mse"] = float((decoded[:, args.given :] - clips[:num, args.given :]).pow(2).mean())
        report["rows"][name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "settings"}), flush=True)
    base = report["rows"][BASELINE]
    for row in report["rows"].values():
        row["speed_vs_maskgit_12"] = base["ms_per_clip"] / row["ms_per_clip"] if row["ms_per_clip"] else None
    write_report(report, args.out, args.markdown, markdown_table(report))
    return report


def markdown_table(report: dict) -> str:
    lines = [
        f"Machine: {report['machine']}; the first {report['given']} frames of {report['num']} real held-out "
        f"clips given ({report['ar_num']} for the token-by-token AR row), batches of {report['batch']}, "
        f"sampling seed {report['seed']}.",
        "",
        "| row | passes / clip | ms / clip | vs MaskGIT-12 | future tokens right | future MSE | checker "
        "| judge accuracy | Frechet distance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["rows"].items():
        token = f"{r['future_token_accuracy']:.3f}" if "future_token_accuracy" in r else "-"
        mse = f"{r['future_mse']:.4f}" if "future_mse" in r else "-"
        ms, speed = (f"{r['ms_per_clip']:.0f}", f"{r['speed_vs_maskgit_12']:.2f}x") if r["ms_per_clip"] else ("-", "-")
        lines.append(
            f"| {name} | {r['passes_per_clip']:.1f} | {ms} | {speed} "
            f"| {token} | {mse} | {r['checker_agreement']:.3f} | {r['judge_accuracy']:.3f} "
            f"| {r['frechet_distance']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
