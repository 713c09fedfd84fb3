"""MaskGIT against ReCAP feature reuse on the shipped image pipeline: speed, compute and quality.

    .venv/bin/python benchmarks/recap_speed.py [--model DIR] [--num 512] [--out FILE] [--markdown FILE]

All methods run in one process on the same model and seeds. Per method: wall time per sample at
batch 1 (median of --repeats single-sample decodes) and at batch 32 (median of --repeats
batches), full-pass-equivalent compute per sample, and quality on --num samples: the Shapes10
classifier's conditional accuracy and the Frechet distance between its features of the samples
and of real held-out images (seed 2). Decoding only (the VQ decode is not timed).
"""

from __future__ import annotations

import argparse
import json
import platform

import torch
from timing import median_ms

from mgm.data.shapes import make_shapes
from mgm.eval import ImageClassifier, feature_statistics, frechet_distance
from mgm.eval.image_quality import classify
from mgm.pipelines import ImagePipeline
from mgm.pipelines.image import DEFAULT_IMAGE_PIPELINE

DEFAULT_CLASSIFIER = DEFAULT_IMAGE_PIPELINE.parent / "shapes_classifier"

METHODS = {
    "maskgit 12": dict(method="maskgit", num_steps=12),
    "recap 12 (2 full, then 1 cheap per full)": dict(method="recap", num_steps=12, plan_options={"full_first": 2}),
    "recap 12 (2 full, then 2 cheap per full)": dict(
        method="recap", num_steps=12, plan_options={"full_first": 2, "cheap_per_full": 2}
    ),
    "recap 12 (1 full, then 3 cheap per full)": dict(
        method="recap", num_steps=12, plan_options={"full_first": 1, "cheap_per_full": 3}
    ),
    "maskgit 6": dict(method="maskgit", num_steps=6),
    "recap 18 (2 full, then 2 cheap per full)": dict(
        method="recap", num_steps=18, plan_options={"full_first": 2, "cheap_per_full": 2}
    ),
}


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_IMAGE_PIPELINE))
    parser.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = ImagePipeline.from_pretrained(args.model)
    classifier = ImageClassifier.from_pretrained(args.classifier)
    labels = torch.arange(args.num) % pipe.num_classes
    real, _ = make_shapes(args.num, pipe.image_size, seed=2, labels=labels)
    real_stats = feature_statistics(classify(classifier, real)[1])
    cpu = platform.processor() or platform.machine()
    report = {
        "machine": f"{cpu}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "num": args.num,
        "settings": {"guidance_scale": pipe.settings.guidance_scale, "temperature": pipe.settings.temperature},
        "methods": {},
    }
    for name, decode in METHODS.items():
        one = median_ms(lambda d=decode: pipe.generate_codes(1, labels=[3], seed=1, **d), args.repeats)
        batch = median_ms(lambda d=decode: pipe.generate_codes(32, seed=1, **d), max(2, args.repeats // 2)) / 32
        result = pipe.generate_codes(args.num, labels=labels, seed=0, **decode)
        preds, features = classify(classifier, pipe.tokenizer.decode(result.codes))
        row = {
            "ms_per_sample_batch1": one,
            "ms_per_sample_batch32": batch,
            "nfe": result.nfe / -(-args.num // 64),
            "compute_full_passes": result.compute / -(-args.num // 64),
            "accuracy": float((preds == labels).float().mean()),
            "frechet_distance": frechet_distance(*feature_statistics(features), *real_stats),
        }
        report["methods"][name] = row
        print(name, json.dumps(row), flush=True)
    base = report["methods"]["maskgit 12"]
    for row in report["methods"].values():
        row["speedup_batch1"] = base["ms_per_sample_batch1"] / row["ms_per_sample_batch1"]
        row["speedup_batch32"] = base["ms_per_sample_batch32"] / row["ms_per_sample_batch32"]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_table(report))
    return report


def markdown_table(report: dict) -> str:
    lines = [
        f"Machine: {report['machine']}; {report['num']} samples per method; guidance "
        f"{report['settings']['guidance_scale']}, temperature {report['settings']['temperature']}.",
        "",
        "| method | NFE | full-pass compute | ms/sample b=1 | speed-up b=1 | ms/sample b=32 | speed-up b=32 "
        "| accuracy | Frechet distance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["methods"].items():
        lines.append(
            f"| {name} | {r['nfe']:.0f} | {r['compute_full_passes']:.2f} | {r['ms_per_sample_batch1']:.1f} | "
            f"{r['speedup_batch1']:.2f}x | {r['ms_per_sample_batch32']:.2f} | {r['speedup_batch32']:.2f}x | "
            f"{r['accuracy']:.3f} | {r['frechet_distance']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
