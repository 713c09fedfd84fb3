"""AR sampling against Speculative Jacobi Decoding (and the masked pipeline's MaskGIT) in one process.

    .venv/bin/python benchmarks/sjd_speed.py [--model AR_PIPELINE_DIR] [--masked DIR] [--num 256] [--out FILE]
        [--markdown FILE]

Per method: forward passes per image (step compression against AR), wall time per image at
batch 1 (median of --repeats) and for a batch of 16, and quality (Shapes10 classifier accuracy and
Frechet distance to real held-out images). SJD is lossless, so its quality must match AR's
within sampling noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import torch
from timing import median_ms, write_report

from mgm.data.shapes import make_shapes
from mgm.eval import ImageClassifier, feature_statistics, frechet_distance
from mgm.eval.image_quality import classify
from mgm.pipelines import ARImagePipeline, ImagePipeline
from mgm.pipelines.ar_image import DEFAULT_AR_PIPELINE
from mgm.pipelines.image import DEFAULT_IMAGE_PIPELINE

DEFAULT_CLASSIFIER = DEFAULT_IMAGE_PIPELINE.parent / "shapes_classifier"
METHODS = {
    "ar": dict(method="ar"),
    **{
        f"sjd window {w}, {init}": dict(method="sjd", window=w, init=init)
        for w in (4, 8, 16)
        for init in ("random", "prev", "above")
    },
}


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_AR_PIPELINE), help="an ARImagePipeline folder")
    parser.add_argument("--masked", default=str(DEFAULT_IMAGE_PIPELINE), help="a masked ImagePipeline to compare")
    parser.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    parser.add_argument("--num", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = ARImagePipeline.from_pretrained(args.model)
    classifier = ImageClassifier.from_pretrained(args.classifier)
    labels = torch.arange(args.num) % pipe.num_classes
    real, _ = make_shapes(args.num, pipe.image_size, seed=2, labels=labels)
    real_stats = feature_statistics(classify(classifier, real)[1])
    report = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
              "num": args.num, "settings": {"temperature": pipe.settings.temperature,
              "guidance_scale": pipe.settings.guidance_scale, "top_k": pipe.settings.top_k}, "methods": {}}  # fmt: skip

    def quality(codes_to_images, result):
        preds, features = classify(classifier, codes_to_images(result.codes))
        return {
            "accuracy": float((preds == labels).float().mean()),
            "frechet_distance": frechet_distance(*feature_statistics(features), *real_stats),
        }

    for name, decode in METHODS.items():
        one = median_ms(lambda d=decode: pipe.generate_codes(1, labels=[3], seed=1, **d), args.repeats)
        sixteen = median_ms(lambda d=decode: pipe.generate_codes(16, seed=1, **d), 1) / 16
        result = pipe.generate_codes(args.num, labels=labels, seed=0, batch_size=args.num, **decode)
        # AR: one pass per token for the whole batch; SJD: each sample's own passes (trace).
        passes = statistics.mean(r.nfe for r in result.trace) if result.trace else result.nfe
        row = {"nfe_per_image": passes, "ms_per_image_batch1": one, "ms_per_image_batch16": sixteen}
        row.update(quality(pipe.tokenizer.decode, result))
        report["methods"][name] = row
        print(name, json.dumps(row), flush=True)
    if args.masked:
        masked = ImagePipeline.from_pretrained(args.masked)
        one = median_ms(lambda: masked.generate_codes(1, labels=[3], seed=1), args.repeats)
        sixteen = median_ms(lambda: masked.generate_codes(16, seed=1), 1) / 16
        result = masked.generate_codes(args.num, labels=labels, seed=0)
        row = {"nfe_per_image": masked.settings.num_steps, "ms_per_image_batch1": one, "ms_per_image_batch16": sixteen}
        row.update(quality(masked.tokenizer.decode, result))
        report["methods"][f"masked maskgit {masked.settings.num_steps} steps"] = row
    base = report["methods"]["ar"]
    for row in report["methods"].values():
        row["fewer_passes_than_ar"] = base["nfe_per_image"] / row["nfe_per_image"]
        row["speedup_batch1"] = base["ms_per_image_batch1"] / row["ms_per_image_batch1"]
        row["speedup_batch16"] = base["ms_per_image_batch16"] / row["ms_per_image_batch16"]
    write_report(report, args.out, args.markdown, markdown_table(report))
    return report


def markdown_table(report: dict) -> str:
    s = report["settings"]
    lines = [
        f"Machine: {report['machine']}; {report['num']} images per method; AR settings: temperature "
        f"{s['temperature']}, guidance {s['guidance_scale']}, top-k {s['top_k']}.",
        "",
        "| method | passes per image | fewer passes than AR | ms/image b=1 | speed-up b=1 | ms/image b=16 "
        "| speed-up b=16 | accuracy | Frechet distance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["methods"].items():
        lines.append(
            f"| {name} | {r['nfe_per_image']:.1f} | {r['fewer_passes_than_ar']:.2f}x | {r['ms_per_image_batch1']:.1f} "
            f"| {r['speedup_batch1']:.2f}x | {r['ms_per_image_batch16']:.1f} | {r['speedup_batch16']:.2f}x | "
            f"{r['accuracy']:.3f} | {r['frechet_distance']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
