"""Conditional accuracy and diversity of an ImagePipeline on Shapes10, against real held-out images.

    .venv/bin/python -m benchmarks.image_quality [--model DIR] [--num 512] [--num-steps 12] [--out FILE]

Prints a JSON report (and writes it to --out). Real reference: Shapes10 images from seed 2, which
neither the tokenizer/transformer (seed 0) nor the classifier (seed 1) saw.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/image_quality.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.timing import write_report
from mgm.data.shapes import make_shapes
from mgm.eval import ImageClassifier, image_quality
from mgm.pipelines import ImagePipeline
from mgm.pipelines.image import DEFAULT_IMAGE_PIPELINE

DEFAULT_CLASSIFIER = DEFAULT_IMAGE_PIPELINE.parent / "shapes_classifier"


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_IMAGE_PIPELINE))
    parser.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--num-steps", type=int, nargs="+", default=[12])
    parser.add_argument("--guidance-scale", type=float, nargs="+", default=[0.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = ImagePipeline.from_pretrained(args.model)
    classifier = ImageClassifier.from_pretrained(args.classifier)
    labels = torch.arange(args.num) % pipe.num_classes
    real, _ = make_shapes(args.num, pipe.image_size, seed=2, labels=labels)
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "num": args.num,
        "real": image_quality(classifier, real, labels),
        "real_through_tokenizer": image_quality(classifier, pipe.tokenizer.decode(pipe.tokenizer.encode(real)), labels),
        "generated": [],
    }
    # Inpainting: the right half of held-out real images regenerated with their true label.
    half = torch.zeros(pipe.image_size, pipe.image_size, dtype=torch.bool)
    half[:, pipe.image_size // 2 :] = True
    report["inpaint_right_half"] = image_quality(classifier, pipe.inpaint(real, half, labels=labels), labels)
    for steps in args.num_steps:
        for scale in args.guidance_scale:
            start = time.perf_counter()
            images = pipe.generate(num=args.num, labels=labels, num_steps=steps, guidance_scale=scale, seed=args.seed)
            seconds = time.perf_counter() - start
            row = {
                "num_steps": steps,
                "guidance_scale": scale,
                "temperature": pipe.settings.resolved()["temperature"],
                **image_quality(classifier, images, labels),
                "ms_per_image": 1000 * seconds / args.num,
            }
            report["generated"].append(row)
    write_report(report, args.out)
    return report


if __name__ == "__main__":
    main()
