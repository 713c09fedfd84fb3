"""AR against Speculative Jacobi Decoding on transformers' image-token models through ``TransformersAR``.

    .venv/bin/python -m benchmarks.transformers_sjd [--family janus] [--length 64] [--sharpen 1 200]
        [--repeats 5] [--out FILE]

Offline, on a tiny random instance (``mgm.models.transformers_tiny``): forward passes per image
(AR's is the length) and wall time per image at batch 1 and 8, greedy and sampled (temperature 1).
``--sharpen`` scales the image head's weights: random weights give a near-uniform law, under
which random drafts are rarely accepted; a sharpened head is a peaked law, closer to a trained
model's. A user with real weights swaps the tiny model for ``from_pretrained``; these figures say
how SJD behaves on the adapter, not what Janus-Pro or Lumina-mGPT reach.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.machine import machine_name
from benchmarks.timing import median_ms, write_report
from mgm.decoding.ar import ar_decode
from mgm.decoding.jacobi import sjd_decode
from mgm.models import TransformersAR
from mgm.models.transformers_tiny import tiny_hf_model

PROMPT = [1, 5, 6, 7]


def rows(family: str, length: int, sharpen: float, repeats: int) -> list[dict]:
    hf = tiny_hf_model(family, seed=0)
    head = hf.model.generation_head.vision_head if family == "janus" else hf.lm_head
    head.weight.data.mul_(sharpen)
    model = TransformersAR(hf, max_length=length)
    out = []
    for batch in (1, 8):
        cond = model.prompt(torch.tensor([PROMPT]).repeat(batch, 1))
        for temperature in (0.0, 1.0):
            for name, decode in (("ar", ar_decode), ("sjd w16", sjd_decode)):
                seeds = iter(range(1, 10**6))

                def run(decode=decode, cond=cond, temperature=temperature, seeds=seeds):
                    generator = torch.Generator().manual_seed(next(seeds))
                    return decode(model, length, cond=cond, temperature=temperature, generator=generator)

                passes = float(run().passes_per_sample().double().mean())
                ms = median_ms(run, repeats) / batch
                out.append(dict(family=family, sharpen=sharpen, batch=batch, temperature=temperature, method=name,
                                passes_per_image=passes, ms_per_image=round(ms, 2)))  # fmt: skip
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", default="janus", choices=("janus", "chameleon", "emu3"))
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--sharpen", type=float, nargs="+", default=[1.0, 200.0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.length < 1 or args.length > 100:
        parser.error(f"--length={args.length}: expected 1..100 (the tiny model has 128 positions)")
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats}: expected at least 1")
    torch.set_grad_enabled(False)
    table = [row for s in args.sharpen for row in rows(args.family, args.length, s, args.repeats)]
    write_report(dict(machine=machine_name(torch.device("cpu")), length=args.length, rows=table), args.out)


if __name__ == "__main__":
    main()
