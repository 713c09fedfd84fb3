"""MaskGIT against ReCAP feature reuse and cached decoding on the shipped pipelines: speed, compute and quality.

    .venv/bin/python -m benchmarks.recap_speed [--modality image|audio|motion] [--num 512] [--repeats 7]
        [--match TEXT...] [--out FILE] [--markdown FILE]

All methods run in one process on the same model and seeds. Per method: wall time per sample at
batch 1 (median of --repeats single-sample decodes) and at batch 32 (median of --repeats
batches), full-pass-equivalent compute per sample, and quality on --num samples: the embedded
judge's conditional accuracy (``mgm.eval``'s ImageEvaluation / AudioEvaluation: the Shapes10 or Tones8
classifier, for audio also the exact pitch checker; for motion the exact action checker) and the
Frechet distance between the judge's features (motion: the MotionVQ encoder's pooled latents) of the
samples and of real held-out data (seed 2).
Decoding only (the tokenizer's decode is not timed).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/recap_speed.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.timing import median_ms, write_report
from mgm.decoding.group import GROUP
from mgm.decoding.maskgit import MASKGIT
from mgm.decoding.recap import RECAP
from mgm.eval import FeatureStatistics
from mgm.eval.suite import AudioEvaluation, ImageEvaluation, batched_statistics
from mgm.pipelines import AudioPipeline, ImagePipeline
from mgm.pipelines.audio import DEFAULT_AUDIO_PIPELINE
from mgm.pipelines.image import DEFAULT_IMAGE_PIPELINE
from mgm.pipelines.settings import DEFAULT_BATCH_SIZE

REAL_SEED = 2  # held-out real data: the tokenizers and transformers saw seed 0, the judges seed 1


def _recap(num_steps: int, full_first: int, cheap_per_full: int, **decode) -> dict:
    """ReCAP's reuse pattern on MaskGIT (``num_steps`` steps), or on each group of a group plan (``decode``)."""
    reuse = {"full_first": full_first, "cheap_per_full": cheap_per_full}
    if decode.get("method") == GROUP.name:
        return {**decode, **reuse}
    return {"method": RECAP.name, "num_steps": num_steps, **reuse, **decode}


def _maskgit(num_steps: int) -> dict:
    return {"method": MASKGIT.name, "num_steps": num_steps}


def _cached(decode: dict, refresh: int) -> dict:
    """Cached decoding (dKV-Cache, ``mgm.decoding.cached``) on ``decode``: a full pass every ``refresh`` steps."""
    return {**decode, "cached": True, "refresh": refresh}


IMAGE_METHODS = {
    "maskgit 12": _maskgit(12),
    "recap 12 (2 full, then 1 cheap per full)": _recap(12, 2, 1),
    "recap 12 (2 full, then 2 cheap per full)": _recap(12, 2, 2),
    "recap 12 (1 full, then 3 cheap per full)": _recap(12, 1, 3),
    "maskgit 6": _maskgit(6),
    "recap 18 (2 full, then 2 cheap per full)": _recap(18, 2, 2),
    "maskgit 12, cached (refresh 2)": _cached(_maskgit(12), 2),
    "maskgit 12, cached (refresh 4)": _cached(_maskgit(12), 4),
    "maskgit 12, cached (refresh 12)": _cached(_maskgit(12), 12),
    "recap 12 (2 full, then 1 cheap per full), cached (refresh 4)": _cached(_recap(12, 2, 1), 4),
    "recap 12 (1 full, then 3 cheap per full), cached (refresh 12)": _cached(_recap(12, 1, 3), 12),
}
_SOUNDSTORM = {"method": GROUP.name, "plan": "soundstorm"}
_GIPD = {"method": GROUP.name, "plan": "gipd", "steps": [12, 6]}
AUDIO_METHODS = {
    "soundstorm (16,1,1,1)": _SOUNDSTORM,
    "soundstorm + reuse (2 full, then 1 cheap per full)": _recap(0, 2, 1, **_SOUNDSTORM),
    "soundstorm + reuse (2 full, then 2 cheap per full)": _recap(0, 2, 2, **_SOUNDSTORM),
    "gipd (12,6)": _GIPD,
    "gipd (12,6) + reuse (2 full, then 1 cheap per full)": _recap(0, 2, 1, **_GIPD),
    "joint maskgit 12": _maskgit(12),
    "joint recap 12 (2 full, then 1 cheap per full)": _recap(12, 2, 1),
    "soundstorm, cached (refresh 4)": _cached(_SOUNDSTORM, 4),
    "joint maskgit 12, cached (refresh 4)": _cached(_maskgit(12), 4),
}


class ImageBench:
    """Shapes10 through ``mgm.eval``'s ImageEvaluation: the embedded judge's conditional accuracy and the
    Frechet distance on its features."""

    methods, baseline = IMAGE_METHODS, "maskgit 12"

    @property
    def num_labels(self) -> int:
        return self.pipe.num_classes

    def __init__(self, model: str | None):
        self.pipe = ImagePipeline.from_pretrained(model or DEFAULT_IMAGE_PIPELINE)
        self.evaluation = ImageEvaluation(image_size=self.pipe.image_size)

    def real(self, labels: torch.Tensor) -> torch.Tensor:
        samples, real_labels = self.evaluation.real_samples(len(labels), REAL_SEED)
        if not torch.equal(real_labels, labels):
            raise ValueError(f"{type(self).__name__}: the evaluation's {len(self.evaluation.classes)} classes are "
                             f"not the pipeline's {self.num_labels}")  # fmt: skip
        return samples

    def generate_codes(self, num: int, labels, seed: int, decode: dict):
        return self.pipe.generate_codes(num, labels=labels, seed=seed, **decode)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.pipe.tokenizer.decode(codes)

    def accuracy(self, samples: torch.Tensor, labels: torch.Tensor) -> float:
        """The judge's conditional accuracy."""
        return self.evaluation.label_scores(samples, labels)["judge_accuracy"]

    def reference(self, real: torch.Tensor) -> dict:
        """The judge's feature statistics of the real samples."""
        return {"judge": batched_statistics(self.evaluation.extractors["judge"][0], real)}

    def scores(self, samples: torch.Tensor, labels: torch.Tensor, reference: dict) -> dict:
        """{"accuracy", "frechet_distance"} (and "checker_agreement" where an exact checker exists)."""
        scores = self.evaluation.score(samples, labels, reference)
        row = {"accuracy": scores["judge_accuracy"], "frechet_distance": scores["frechet_judge"]}
        if "pitch_checker_agreement" in scores:
            row["checker_agreement"] = scores["pitch_checker_agreement"]
        return row


class AudioBench(ImageBench):
    """Tones8 through AudioEvaluation: the judge's accuracy, the exact pitch checker's agreement and the
    Frechet distance on the judge's features."""

    methods, baseline = AUDIO_METHODS, "soundstorm (16,1,1,1)"

    def __init__(self, model: str | None):
        self.pipe = AudioPipeline.from_pretrained(model or DEFAULT_AUDIO_PIPELINE)
        self.evaluation = AudioEvaluation(seconds=self.pipe.max_seconds)
        if self.evaluation.sample_rate != self.pipe.sample_rate:
            raise ValueError(f"the judge reads {self.evaluation.sample_rate} Hz; the pipeline makes "
                             f"{self.pipe.sample_rate} Hz")  # fmt: skip


MOTION_METHODS = {
    "maskgit 10": _maskgit(10),
    "recap 10 (2 full, then 1 cheap per full)": _recap(10, 2, 1),
    "recap 10 (1 full, then 2 cheap per full)": _recap(10, 1, 2),
    "maskgit 5": _maskgit(5),
    "maskgit 10, cached (refresh 2)": _cached(_maskgit(10), 2),
    "maskgit 10, cached (refresh 5)": _cached(_maskgit(10), 5),
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

        clips = make_motions(len(labels), seed=REAL_SEED, labels=labels, seconds=self.seconds)
        self.captions = {int(c): clips.captions[i] for i, c in enumerate(clips.labels.tolist())}
        self.by_label = clips.captions
        return clips.features[:, : self.pipe.tokenizer.frames_for_tokens(self.pipe.tokens_for_seconds(self.seconds))]

    def generate_codes(self, num: int, labels, seed: int, decode: dict):
        texts = self.by_label[:num] if labels is None else [self.captions[int(c)] for c in labels]
        return self.pipe.generate_codes(texts=texts, seconds=self.seconds, seed=seed, **decode)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.pipe.features(codes)

    def features(self, samples: torch.Tensor) -> torch.Tensor:
        tokenizer = self.pipe.tokenizer
        latents = tokenizer.encode_latents(tokenizer.normalise(samples))  # (M, 2, C, N)
        return latents.mean(-1).flatten(1)

    def reference(self, real: torch.Tensor) -> dict:
        return {"latents": FeatureStatistics().update(self.features(real))}

    def accuracy(self, samples: torch.Tensor, labels: torch.Tensor) -> float:
        from mgm.data.motions import classify_motion

        return float((classify_motion(samples) == labels).float().mean())

    def scores(self, samples: torch.Tensor, labels: torch.Tensor, reference: dict) -> dict:
        return {
            "accuracy": self.accuracy(samples, labels),
            "frechet_distance": FeatureStatistics().update(self.features(samples)).distance(reference["latents"]),
        }


def selected(methods: dict, baseline: str, match: list[str] | None) -> dict:
    """The methods whose name contains one of ``match`` (all when None), and always the baseline."""
    return {n: d for n, d in methods.items() if n == baseline or not match or any(t in n for t in match)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modality", choices=["image", "audio", "motion"], default="image")
    parser.add_argument("--model", help="pipeline folder (default: the shipped one)")
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--match", nargs="+", help="only the methods named with one of these (and the baseline)")
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    bench = {"image": ImageBench, "audio": AudioBench, "motion": MotionBench}[args.modality](args.model)
    pipe = bench.pipe
    labels = torch.arange(args.num) % bench.num_labels
    real = bench.real(labels)
    reference = bench.reference(real)
    settings = pipe.settings.resolved()
    cpu = platform.processor() or platform.machine()
    report = {
        "machine": f"{cpu}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "modality": args.modality,
        "num": args.num,
        "settings": {"guidance_scale": settings["guidance_scale"], "temperature": settings["temperature"]},
        "real_judge_accuracy": bench.accuracy(real, labels),
        "methods": {},
    }
    batches = -(-args.num // DEFAULT_BATCH_SIZE)  # the pipeline decodes in batches; compute adds up over them
    for name, decode in selected(bench.methods, bench.baseline, args.match).items():
        one = median_ms(lambda d=decode: bench.generate_codes(1, [3], 1, d), args.repeats)
        batch = median_ms(lambda d=decode: bench.generate_codes(32, None, 1, d), max(2, args.repeats // 2)) / 32
        result = bench.generate_codes(args.num, labels, 0, decode)
        samples = bench.decode(result.codes)
        row = {
            "ms_per_sample_batch1": one,
            "ms_per_sample_batch32": batch,
            "nfe": float(result.passes_per_sample().double().mean()),
            "compute_full_passes": result.compute / batches,
            **bench.scores(samples, labels, reference),
        }
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
