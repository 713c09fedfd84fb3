"""Label agreement of an AudioPipeline's clips on Tones8 (by the exact pitch checker), per decoding plan.

    .venv/bin/python benchmarks/audio_quality.py [--model DIR] [--num 256] [--out FILE]

For each plan: the share of generated clips whose dominant pitch (mgm.data.tones.classify_tones)
is the requested class, NFE per clip, and wall time per second of audio. Reference: real held-out
Tones8 clips (seed 2; the codec and transformer saw seed 0), as they are and through the codec.
Also checks that continuation and infill keep the given tokens bit-identical.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from timing import write_report

from mgm.data.tones import classify_tones, make_tones
from mgm.pipelines import AudioPipeline
from mgm.pipelines.audio import DEFAULT_AUDIO_PIPELINE

PLANS = {
    "soundstorm (16,1,1,1)": dict(method="group", plan="soundstorm", plan_options={}),
    "magnet (20,10,10,10), span 3": dict(method="group", plan="magnet", plan_options={}),
    "gipd (8,4) over 2+2 levels": dict(method="group", plan="gipd", plan_options={}),
    "joint maskgit 12 steps": dict(method="maskgit", num_steps=12),
}


def agreement(audio: torch.Tensor, labels: torch.Tensor, sample_rate: int) -> float:
    return float((classify_tones(audio, sample_rate) == labels).float().mean())


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_AUDIO_PIPELINE))
    parser.add_argument("--num", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = AudioPipeline.from_pretrained(args.model)
    rate, seconds = pipe.sample_rate, pipe.max_seconds
    labels = torch.arange(args.num) % pipe.num_classes
    real, _ = make_tones(args.num, seconds, rate, seed=2, labels=labels)
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "num": args.num,
        "seconds": seconds,
        "defaults": {"guidance_scale": pipe.settings.guidance_scale, "temperature": pipe.settings.temperature},
        "real": agreement(real, labels, rate),
        "real_through_codec": agreement(pipe.tokenizer.decode(pipe.tokenizer.encode(real)), labels, rate),
        "plans": {},
    }
    for name, decode in PLANS.items():
        start = time.perf_counter()
        result = pipe.generate_codes(args.num, labels=labels, seed=args.seed, **decode)
        audio = pipe.tokenizer.decode(result.codes)
        elapsed = time.perf_counter() - start
        report["plans"][name] = {
            "agreement": agreement(audio, labels, rate),
            "nfe_per_batch": result.nfe // -(-args.num // 64),
            "ms_per_second_of_audio": 1000 * elapsed / (args.num * seconds),
        }
        print(name, report["plans"][name], flush=True)

    # Editing keeps the given tokens bit-identical; the checker reads the edited clips' pitch.
    prompt = real[:64, :, : int(0.5 * rate)]
    cont = pipe.continue_codes(prompt, labels=labels[:64])
    kept = torch.equal(cont.codes[..., : pipe.tokenizer.frames_for(prompt.shape[-1])], pipe.tokenizer.encode(prompt))
    infill = pipe.infill_codes(real[:64], 0.5, 1.5, labels=labels[:64])
    frames = pipe.tokenizer.encode(real[:64])
    lo, hi = int(0.5 * pipe.frame_rate), int(1.5 * pipe.frame_rate)
    infill_kept = torch.equal(infill.codes[..., :lo], frames[..., :lo]) and torch.equal(
        infill.codes[..., hi:], frames[..., hi:]
    )
    report["continuation"] = {
        "prompt_tokens_identical": kept,
        "agreement": agreement(pipe.tokenizer.decode(cont.codes), labels[:64], rate),
    }
    report["infill_0.5_to_1.5s"] = {
        "other_tokens_identical": infill_kept,
        "agreement": agreement(pipe.tokenizer.decode(infill.codes), labels[:64], rate),
    }
    write_report(report, args.out)
    return report


if __name__ == "__main__":
    main()
