"""AR sampling against Speculative Jacobi Decoding (and the masked pipeline's MaskGIT) in one process.

    .venv/bin/python -m benchmarks.sjd_speed [--model AR_PIPELINE_DIR] [--masked DIR] [--num 256] [--repeats 5]
        [--match TEXT...] [--out FILE] [--markdown FILE]

Per method: forward passes per image (step compression against AR), wall time per image at
batch 1 (median of --repeats) and for a batch of 16 (median of 3), and quality (``mgm.eval``'s ImageEvaluation:
the Shapes10 classifier's accuracy and the Frechet distance on its features to real held-out
images). SJD is lossless, so its quality must match AR's within sampling noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/sjd_speed.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.timing import median_ms, write_report
from mgm.decoding.ar import AR_METHOD
from mgm.decoding.jacobi import SJD
from mgm.eval.suite import ImageEvaluation, batched_statistics
from mgm.pipelines import ARImagePipeline, ImagePipeline
from mgm.pipelines.ar_image import DEFAULT_AR_PIPELINE
from mgm.pipelines.image import DEFAULT_IMAGE_PIPELINE
from mgm.pipelines.settings import DEFAULT_BATCH_SIZE

DEFAULT_CLASSIFIER = DEFAULT_IMAGE_PIPELINE.parent / "shapes_classifier"
REAL_SEED = 2  # held-out real images: the tokenizer and transformers saw seed 0, the classifier seed 1
BASELINE = AR_METHOD.name
B16_REPEATS = 3  # batches of 16 timed per row (the median)
METHODS = {
    BASELINE: {"method": AR_METHOD.name},
    **{
        f"{SJD.name} window {w}, {init}": {"method": SJD.name, "window": w, "init": init}
        for w in (4, 8, 16)
        for init in ("random", "prev", "above")
    },
}


# The masked pipeline's rows: its default (MaskGIT 12) and the cheaper masked decoders, for the
# issue-20 goal (masked decoding at batch 16 within 1.5x of AR's wall clock).
MASKED_METHODS = {
    "masked maskgit 12 steps": {},
    "masked maskgit 12, cached (refresh 2)": {"cached": True, "refresh": 2},
    "masked maskgit 12, cached (refresh 4)": {"cached": True, "refresh": 4},
    "masked recap 12 (2 full, then 1 cheap per full)": {"method": "recap", "full_first": 2, "cheap_per_full": 1},
    "masked recap 12 (2 full, then 1 cheap per full), cached (refresh 4)": {
        "method": "recap", "full_first": 2, "cheap_per_full": 1, "cached": True, "refresh": 4,
    },
}


def selected(methods: dict, baseline: str, match: list[str] | None) -> dict:
    """The methods whose name contains one of ``match`` (all when None), and always the baseline."""
    return {n: d for n, d in methods.items() if n == baseline or not match or any(t in n for t in match)}


def passes_per_image(result) -> float:
    """AR: one pass per token for the whole batch; SJD: the mean of each sample's own passes."""
    return float(result.passes_per_sample().double().mean())


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_AR_PIPELINE), help="an ARImagePipeline folder")
    parser.add_argument("--masked", default=str(DEFAULT_IMAGE_PIPELINE), help="a masked ImagePipeline to compare")
    parser.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    parser.add_argument("--num", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--match", nargs="+", help="only the methods named with one of these (and the baseline)")
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = ARImagePipeline.from_pretrained(args.model)
    evaluation = ImageEvaluation(args.classifier, image_size=pipe.image_size)
    real, labels = evaluation.real_samples(args.num, REAL_SEED)
    if pipe.num_classes != len(evaluation.classes):
        raise ValueError(f"the pipeline has {pipe.num_classes} classes; the judge {len(evaluation.classes)}")
    reference = {"judge": batched_statistics(evaluation.extractors["judge"][0], real)}
    settings = pipe.settings.resolved()
    report = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
              "num": args.num, "settings": {"temperature": settings["temperature"],
              "guidance_scale": settings["guidance_scale"], "top_k": settings["top_k"]}, "methods": {}}  # fmt: skip

    def quality(codes_to_images, result):
        scores = evaluation.score(codes_to_images(result.codes), labels, reference)
        return {"accuracy": scores["judge_accuracy"], "frechet_distance": scores["frechet_judge"]}

    for name, decode in selected(METHODS, BASELINE, args.match).items():
        one = median_ms(lambda d=decode: pipe.generate_codes(1, labels=[3], seed=1, **d), args.repeats)
        sixteen = median_ms(lambda d=decode: pipe.generate_codes(16, seed=1, **d), B16_REPEATS) / 16
        result = pipe.generate_codes(args.num, labels=labels, seed=0, batch_size=args.num, **decode)
        row = {"nfe_per_image": passes_per_image(result), "ms_per_image_batch1": one, "ms_per_image_batch16": sixteen}
        row.update(quality(pipe.tokenizer.decode, result))
        report["methods"][name] = row
        print(name, json.dumps(row), flush=True)
    if args.masked:
        masked = ImagePipeline.from_pretrained(args.masked)
        for name, decode in MASKED_METHODS.items():
            one = median_ms(lambda d=decode: masked.generate_codes(1, labels=[3], seed=1, **d), args.repeats)
            sixteen = median_ms(lambda d=decode: masked.generate_codes(16, seed=1, **d), B16_REPEATS) / 16
            result = masked.generate_codes(args.num, labels=labels, seed=0, **decode)
            batches = -(-args.num // DEFAULT_BATCH_SIZE)  # the pipeline's batches; compute adds up over them
            row = {"nfe_per_image": passes_per_image(result), "ms_per_image_batch1": one,
                   "ms_per_image_batch16": sixteen, "compute_full_passes": result.compute / batches}
            row.update(quality(masked.tokenizer.decode, result))
            report["methods"][name] = row
            print(name, json.dumps(row), flush=True)
    base = report["methods"][BASELINE]
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
