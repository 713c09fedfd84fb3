"""Parallel AR decoding (ARPG, LPD) beside AR, SJD and the masked decoders, on Shapes10, in one process.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.parallel_ar [--num 512] [--repeats 5] [--match TEXT...]
        [--out FILE] [--markdown FILE]

Every row decodes the same labels with the same seeds: the shipped FlexARImagePipeline (arpg,
lpd), the shipped ARImagePipeline (ar, sjd) and the shipped masked ImagePipeline (maskgit,
threshold, cached, recap). Per row: sequential passes per image, wall time per image at batch 1
(median of --repeats decodes of one image) and at batch 16 (median of 3 batches), and quality
(``mgm.eval``'s ImageEvaluation: the Shapes10 judge's accuracy and the Frechet distance on its
features to real held-out images). Ratios are against MaskGIT-12 (the goal's baseline).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

if not __package__:  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.sjd_speed import B16_REPEATS, DEFAULT_CLASSIFIER, REAL_SEED, passes_per_image
from benchmarks.timing import median_ms, write_report
from mgm.eval.suite import ImageEvaluation, batched_statistics
from mgm.pipelines import ARImagePipeline, FlexARImagePipeline, ImagePipeline

BASELINE = "masked maskgit 12 (defaults)"
# (row name, pipeline, decode options): the pipelines' saved settings apply where a row names none.
ROWS = [
    ("flex-ar lpd 12 (defaults)", "flex", {}),
    ("flex-ar lpd 8", "flex", {"method": "lpd", "num_steps": 8}),
    ("flex-ar lpd 16", "flex", {"method": "lpd", "num_steps": 16}),
    ("flex-ar arpg 12", "flex", {"method": "arpg", "num_steps": 12}),
    ("flex-ar arpg 8", "flex", {"method": "arpg", "num_steps": 8}),
    ("flex-ar lpd 64 (one token per pass)", "flex", {"method": "lpd", "num_steps": 64}),
    ("ar", "ar", {"method": "ar"}),
    ("sjd window 16, random", "ar", {"method": "sjd", "window": 16, "init": "random"}),
    (BASELINE, "masked", {}),
    ("masked threshold (defaults)", "masked", {"method": "threshold"}),
    ("masked maskgit 12, cached (refresh 2)", "masked", {"cached": True, "refresh": 2}),
    ("masked recap 12 (2 full, 1 cheap per full)", "masked", {"method": "recap", "full_first": 2, "cheap_per_full": 1}),
]
PIPELINES = {"flex": FlexARImagePipeline, "ar": ARImagePipeline, "masked": ImagePipeline}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flex", help="a FlexARImagePipeline folder (default: the shipped one)")
    parser.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the quality run")
    parser.add_argument("--match", nargs="+", help="only the rows named with one of these (and the baseline)")
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipes = {key: cls.default() for key, cls in PIPELINES.items()}
    if args.flex:
        pipes["flex"] = FlexARImagePipeline.from_pretrained(args.flex)
    evaluation = ImageEvaluation(args.classifier, image_size=pipes["masked"].image_size)
    real, labels = evaluation.real_samples(args.num, REAL_SEED)
    reference = {"judge": batched_statistics(evaluation.extractors["judge"][0], real)}
    report = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
              "num": args.num, "seed": args.seed,
              "settings": {key: pipe.settings.resolved() for key, pipe in pipes.items()}, "rows": {}}  # fmt: skip
    rows = [r for r in ROWS if r[0] == BASELINE or not args.match or any(t in r[0] for t in args.match)]
    for name, key, decode in rows:
        pipe = pipes[key]
        one = median_ms(lambda p=pipe, d=decode: p.generate_codes(1, labels=[3], seed=1, **d), args.repeats)
        sixteen = median_ms(lambda p=pipe, d=decode: p.generate_codes(16, seed=1, batch_size=16, **d), B16_REPEATS)
        result = pipe.generate_codes(args.num, labels=labels, seed=args.seed, batch_size=64, **decode)
        scores = evaluation.score(pipe.tokenizer.decode(result.codes), labels, reference)
        row = {"settings": pipe.settings.update(**decode).to_config(), "passes_per_image": passes_per_image(result),
               "ms_per_image_batch1": one, "ms_per_image_batch16": sixteen / 16,
               "accuracy": scores["judge_accuracy"], "frechet_distance": scores["frechet_judge"]}  # fmt: skip
        report["rows"][name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "settings"}), flush=True)
    base = report["rows"][BASELINE]
    for row in report["rows"].values():
        row["throughput_vs_maskgit_batch1"] = base["ms_per_image_batch1"] / row["ms_per_image_batch1"]
        row["throughput_vs_maskgit_batch16"] = base["ms_per_image_batch16"] / row["ms_per_image_batch16"]
    write_report(report, args.out, args.markdown, markdown_table(report))
    return report


def markdown_table(report: dict) -> str:
    lines = [
        f"Machine: {report['machine']}; {report['num']} images per row, sampling seed {report['seed']}.",
        "",
        "| row | passes / image | ms / image b=1 | vs MaskGIT-12 b=1 | ms / image b=16 | vs MaskGIT-12 b=16 "
        "| accuracy | Frechet distance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["rows"].items():
        lines.append(
            f"| {name} | {r['passes_per_image']:.1f} | {r['ms_per_image_batch1']:.1f} | "
            f"{r['throughput_vs_maskgit_batch1']:.2f}x | {r['ms_per_image_batch16']:.1f} | "
            f"{r['throughput_vs_maskgit_batch16']:.2f}x | {r['accuracy']:.3f} | {r['frechet_distance']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
