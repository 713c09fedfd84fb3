"""MaskGIT against ReCAP feature reuse on the shipped pipelines: speed, compute and quality.

    .venv/bin/python benchmarks/recap_speed.py [--modality image|audio] [--num 512] [--out FILE] [--markdown FILE]

All methods run in one process on the same model and seeds. Per method: wall time per sample at
batch 1 (median of --repeats single-sample decodes) and at batch 32 (median of --repeats
batches), full-pass-equivalent compute per sample, and quality on --num samples: the embedded
judge's conditional accuracy (Shapes10 classifier; for audio also the exact pitch checker) and the
Frechet distance between the judge's features of the samples and of real held-out data (seed 2).
Decoding only (the tokenizer's decode is not timed).
"""

from __future__ import annotations

import argparse
import json
import platform

import torch
from timing import median_ms, write_report

from mgm.eval import AudioClassifier, ImageClassifier, feature_statistics, frechet_distance
from mgm.eval.image_quality import classify
from mgm.pipelines import AudioPipeline, ImagePipeline
from mgm.pipelines.audio import DEFAULT_AUDIO_PIPELINE
from mgm.pipelines.image import DEFAULT_IMAGE_PIPELINE

PRETRAINED = DEFAULT_IMAGE_PIPELINE.parent


def _recap(num_steps: int, full_first: int, cheap_per_full: int, **decode) -> dict:
    reuse = {"full_first": full_first, "cheap_per_full": cheap_per_full}
    if decode.get("method") == "group":
        return {**decode, "plan_options": {**decode.get("plan_options", {}), **reuse}}
    return {"method": "recap", "num_steps": num_steps, "plan_options": reuse, **decode}


IMAGE_METHODS = {
    "maskgit 12": dict(method="maskgit", num_steps=12),
    "recap 12 (2 full, then 1 cheap per full)": _recap(12, 2, 1),
    "recap 12 (2 full, then 2 cheap per full)": _recap(12, 2, 2),
    "recap 12 (1 full, then 3 cheap per full)": _recap(12, 1, 3),
    "maskgit 6": dict(method="maskgit", num_steps=6),
    "recap 18 (2 full, then 2 cheap per full)": _recap(18, 2, 2),
}
_SOUNDSTORM = dict(method="group", plan="soundstorm", plan_options={})
_GIPD = dict(method="group", plan="gipd", plan_options={"steps": [12, 6]})
AUDIO_METHODS = {
    "soundstorm (16,1,1,1)": _SOUNDSTORM,
    "soundstorm + reuse (2 full, then 1 cheap per full)": _recap(0, 2, 1, **_SOUNDSTORM),
    "soundstorm + reuse (2 full, then 2 cheap per full)": _recap(0, 2, 2, **_SOUNDSTORM),
    "gipd (12,6)": _GIPD,
    "gipd (12,6) + reuse (2 full, then 1 cheap per full)": _recap(0, 2, 1, **_GIPD),
    "joint maskgit 12": dict(method="maskgit", num_steps=12),
    "joint recap 12 (2 full, then 1 cheap per full)": _recap(12, 2, 1),
}


class ImageBench:
    methods, baseline = IMAGE_METHODS, "maskgit 12"

    @property
    def num_labels(self) -> int:
        return self.pipe.num_classes

    def __init__(self, model: str | None):
        self.pipe = ImagePipeline.from_pretrained(model or DEFAULT_IMAGE_PIPELINE)
        self.judge = ImageClassifier.from_pretrained(PRETRAINED / "shapes_classifier")

    def real(self, labels: torch.Tensor) -> torch.Tensor:
        from mgm.data.shapes import make_shapes

        return make_shapes(len(labels), self.pipe.image_size, seed=2, labels=labels)[0]

    def generate_codes(self, num: int, labels, seed: int, decode: dict):
        return self.pipe.generate_codes(num, labels=labels, seed=seed, **decode)

    def checker_accuracy(self, samples: torch.Tensor, labels: torch.Tensor) -> float | None:
        return None

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.pipe.tokenizer.decode(codes)

    def judge_outputs(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted labels [M], features [M, F]) of the embedded judge."""
        return classify(self.judge, samples)


class AudioBench(ImageBench):
    methods, baseline = AUDIO_METHODS, "soundstorm (16,1,1,1)"

    def __init__(self, model: str | None):
        self.pipe = AudioPipeline.from_pretrained(model or DEFAULT_AUDIO_PIPELINE)
        self.judge = AudioClassifier.from_pretrained(PRETRAINED / "tones_classifier")

    def real(self, labels: torch.Tensor) -> torch.Tensor:
        from mgm.data.tones import make_tones

        return make_tones(len(labels), self.pipe.max_seconds, self.pipe.sample_rate, seed=2, labels=labels)[0]

    def checker_accuracy(self, samples: torch.Tensor, labels: torch.Tensor) -> float:
        from mgm.data.tones import classify_tones

        return float((classify_tones(samples, self.pipe.sample_rate) == labels).float().mean())


MOTION_METHODS = {
    "maskgit 10": dict(method="maskgit", num_steps=10),
    "recap 10 (2 full, then 1 cheap per full)": _recap(10, 2, 1),
    "recap 10 (1 full, then 2 cheap per full)": _recap(10, 1, 2),
    "maskgit 5": dict(method="maskgit", num_steps=5),
}


class MotionBench(ImageBench):
    """Motions7, 3 s clips: the judge is the exact action checker on recovered joints; the features
    for the Frechet distance are the MotionVQ encoder's time-pooled latents (both parts)."""

    methods, baseline = MOTION_METHODS, "maskgit 10"
    seconds = 3.0
    num_labels = 7  # Motions7's actions, given to the model through their captions

    def __init__(self, model: str | None):
        from mgm.pipelines.motion import DEFAULT_MOTION_PIPELINE, MotionPipeline

        self.pipe = MotionPipeline.from_pretrained(model or DEFAULT_MOTION_PIPELINE)
        self.captions = {}

    def real(self, labels: torch.Tensor) -> torch.Tensor:
        from mgm.data.motions import make_motions

        clips = make_motions(len(labels), seed=2, labels=labels, seconds=self.seconds)
        self.captions = {int(c): clips.captions[i] for i, c in enumerate(clips.labels.tolist())}
        self.by_label = clips.captions
        return clips.features[:, : self.pipe.tokenizer.frames_for(self.pipe.tokens_for(self.seconds))]

    def generate_codes(self, num: int, labels, seed: int, decode: dict):
        texts = self.by_label[:num] if labels is None else [self.captions[int(c)] for c in labels]
        return self.pipe.generate_codes(texts, self.seconds, seed=seed, **decode)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.pipe.features(codes)

    def judge_outputs(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from mgm.data.motions import classify_motion

        tokenizer = self.pipe.tokenizer
        latents = tokenizer.encode_latents(tokenizer.normalise(samples))  # (M, 2, C, N)
        return classify_motion(samples), latents.mean(-1).flatten(1)


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modality", choices=["image", "audio", "motion"], default="image")
    parser.add_argument("--model", help="pipeline folder (default: the shipped one)")
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    bench = {"image": ImageBench, "audio": AudioBench, "motion": MotionBench}[args.modality](args.model)
    pipe = bench.pipe
    labels = torch.arange(args.num) % bench.num_labels
    real = bench.real(labels)
    real_preds, real_features = bench.judge_outputs(real)
    real_stats = feature_statistics(real_features)
    cpu = platform.processor() or platform.machine()
    report = {
        "machine": f"{cpu}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "modality": args.modality,
        "num": args.num,
        "settings": {"guidance_scale": pipe.settings.guidance_scale, "temperature": pipe.settings.temperature},
        "real_judge_accuracy": float((real_preds == labels).float().mean()),
        "methods": {},
    }
    batches = -(-args.num // 64)  # the pipeline decodes in batches of 64; nfe and compute add up over them
    for name, decode in bench.methods.items():
        one = median_ms(lambda d=decode: bench.generate_codes(1, [3], 1, d), args.repeats)
        batch = median_ms(lambda d=decode: bench.generate_codes(32, None, 1, d), max(2, args.repeats // 2)) / 32
        result = bench.generate_codes(args.num, labels, 0, decode)
        samples = bench.decode(result.codes)
        preds, features = bench.judge_outputs(samples)
        row = {
            "ms_per_sample_batch1": one,
            "ms_per_sample_batch32": batch,
            "nfe": result.nfe / batches,
            "compute_full_passes": result.compute / batches,
            "accuracy": float((preds == labels).float().mean()),
            "frechet_distance": frechet_distance(*feature_statistics(features), *real_stats),
        }
        checker = bench.checker_accuracy(samples, labels)
        if checker is not None:
            row["checker_agreement"] = checker
        report["methods"][name] = row
        print(name, json.dumps(row), flush=True)
    base = report["methods"][bench.baseline]
    for row in report["methods"].values():
        row["speedup_batch1"] = base["ms_per_sample_batch1"] / row["ms_per_sample_batch1"]
        row["speedup_batch32"] = base["ms_per_sample_batch32"] / row["ms_per_sample_batch32"]
    write_report(report, args.out, args.markdown, markdown_table(report))
    return report


def markdown_table(report: dict) -> str:
    checker = any("checker_agreement" in r for r in report["methods"].values())
    lines = [
        f"Machine: {report['machine']}; {report['modality']}, {report['num']} samples per method; guidance "
        f"{report['settings']['guidance_scale']}, temperature {report['settings']['temperature']}; the judge "
        f"classifies real held-out data with accuracy {report['real_judge_accuracy']:.3f}.",
        "",
        "| method | NFE | full-pass compute | ms/sample b=1 | speed-up b=1 | ms/sample b=32 | speed-up b=32 "
        "| accuracy |" + (" pitch checker |" if checker else "") + " Frechet distance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if checker else "") + " --- |",
    ]
    for name, r in report["methods"].items():
        lines.append(
            f"| {name} | {r['nfe']:.0f} | {r['compute_full_passes']:.2f} | {r['ms_per_sample_batch1']:.1f} | "
            f"{r['speedup_batch1']:.2f}x | {r['ms_per_sample_batch32']:.2f} | {r['speedup_batch32']:.2f}x | "
            f"{r['accuracy']:.3f} |"
            + (f" {r['checker_agreement']:.3f} |" if checker else "")
            + f" {r['frechet_distance']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
