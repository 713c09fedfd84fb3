"""Label agreement of an AudioPipeline's clips on Tones8 (by the exact pitch checker), per decoding plan.

    .venv/bin/python -m benchmarks.audio_quality [--model DIR] [--num 256] [--out FILE]

For each plan: the share of generated clips whose dominant pitch (the exact checker of ``mgm.eval``'s
AudioEvaluation, mgm.data.tones.classify_tones) is the requested class, NFE per clip, and wall time
per second of audio. Reference: real held-out Tones8 clips (seed 2; the codec and transformer saw
seed 0), as they are and through the codec.
Also checks that continuation and infill keep the given tokens bit-identical.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/audio_quality.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.timing import write_report
from mgm.decoding.group import GROUP
from mgm.decoding.maskgit import MASKGIT
from mgm.eval.suite import AudioEvaluation
from mgm.pipelines import AudioPipeline
from mgm.pipelines.audio import DEFAULT_AUDIO_PIPELINE
from mgm.pipelines.settings import DEFAULT_BATCH_SIZE

REAL_SEED = 2  # held-out real clips: the codec and transformer saw seed 0
PLANS = {
    "soundstorm (16,1,1,1)": {"method": GROUP.name, "plan": "soundstorm"},
    "magnet (20,10,10,10), span 3": {"method": GROUP.name, "plan": "magnet"},
    "gipd (8,4) over 2+2 levels": {"method": GROUP.name, "plan": "gipd"},
    "joint maskgit 12 steps": {"method": MASKGIT.name, "num_steps": 12},
}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_AUDIO_PIPELINE))
    parser.add_argument("--num", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = AudioPipeline.from_pretrained(args.model)
    rate, seconds = pipe.sample_rate, pipe.max_seconds
    evaluation = AudioEvaluation(seconds=seconds)
    if evaluation.sample_rate != rate:
        raise ValueError(f"the checker reads {evaluation.sample_rate} Hz; the pipeline makes {rate} Hz")
    real, labels = evaluation.real_samples(args.num, REAL_SEED)
    if pipe.num_classes != len(evaluation.classes):
        raise ValueError(f"the pipeline has {pipe.num_classes} classes; Tones8 has {len(evaluation.classes)}")

    def agreement(audio: torch.Tensor, labels: torch.Tensor) -> float:
        """The share of clips whose dominant pitch (the exact checker) is the requested class."""
        return evaluation.label_scores(audio, labels)["pitch_checker_agreement"]

    defaults = pipe.settings.resolved()
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "num": args.num,
        "seconds": seconds,
        "defaults": {"guidance_scale": defaults["guidance_scale"], "temperature": defaults["temperature"]},
        "real": agreement(real, labels),
        "real_through_codec": agreement(pipe.tokenizer.decode(pipe.tokenizer.encode(real)), labels),
        "plans": {},
    }
    batches = -(-args.num // DEFAULT_BATCH_SIZE)
    for name, decode in PLANS.items():
        start = time.perf_counter()
        result = pipe.generate_codes(args.num, labels=labels, seed=args.seed, **decode)
        audio = pipe.tokenizer.decode(result.codes)
        elapsed = time.perf_counter() - start
        report["plans"][name] = {
            "agreement": agreement(audio, labels),
            "nfe_per_batch": result.nfe // batches,
            "ms_per_second_of_audio": 1000 * elapsed / (args.num * seconds),
        }
        print(name, report["plans"][name], flush=True)

    # Editing keeps the given tokens bit-identical; the checker reads the edited clips' pitch.
    prompt = real[:64, :, : int(0.5 * rate)]
    cont = pipe.continue_codes(prompt, labels=labels[:64])
    given = pipe.tokenizer.tokens_for_samples(prompt.shape[-1])
    kept = torch.equal(cont.codes[..., :given], pipe.tokenizer.encode(prompt))
    infill = pipe.infill_codes(real[:64], 0.5, 1.5, labels=labels[:64])
    frames = pipe.tokenizer.encode(real[:64])
    lo, hi = int(0.5 * pipe.frame_rate), int(1.5 * pipe.frame_rate)
    infill_kept = torch.equal(infill.codes[..., :lo], frames[..., :lo]) and torch.equal(
        infill.codes[..., hi:], frames[..., hi:]
    )
    report["continuation"] = {
        "prompt_tokens_identical": kept,
        "agreement": agreement(pipe.tokenizer.decode(cont.codes), labels[:64]),
    }
    report["infill_0.5_to_1.5s"] = {
        "other_tokens_identical": infill_kept,
        "agreement": agreement(pipe.tokenizer.decode(infill.codes), labels[:64]),
    }
    write_report(report, args.out)
    return report


if __name__ == "__main__":
    main()
