"""Peak memory of long sampling runs: does RSS stay flat from 500 to 5000 images?

Three ways a user generates many images from the shipped Shapes10 pipeline, each measured as its
own process's peak resident set (``ru_maxrss``), at 500 and at 5000 images:

- ``loop``: ``pipe.generate(batch, seed=..., first_index=i)`` called again and again, images
  written to PNG and dropped (what a sampling script does);
- ``call``: one ``pipe.generate(num, batch_size=batch)`` call returning every image;
- ``cli``: ``generate.py image --num NUM --batch-size BATCH``.

Decoding uses 4 MaskGIT steps instead of the pipeline's 12 to keep the run short; the memory a
step needs does not depend on how many steps there are.

    python benchmarks/long_run_memory.py                # ~10 min on 2 CPU cores
    python benchmarks/long_run_memory.py --counts 100 400   # a quick look

Writes benchmarks/results/long_run_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "long_run_memory.json"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_in_python(mode: str, num: int, batch: int, steps: int, out: str) -> dict:
    """Runs in a fresh process: sample ``num`` images the ``mode`` way; returns its peak RSS."""
    import torch

    from mgm.pipelines import ImagePipeline
    from mgm.pipelines.image_io import write_pngs

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    pipe = ImagePipeline.default()
    before = peak_mib()
    start = time.perf_counter()
    if mode == "loop":
        for first in range(0, num, batch):
            count = min(batch, num - first)
            images = pipe.generate(count, seed=0, first_index=first, num_steps=steps)
            write_pngs({f"sample_{first + i:05d}.png": image for i, image in enumerate(images)}, out)
    else:
        images = pipe.generate(num, seed=0, batch_size=batch, num_steps=steps)
        assert images.shape[0] == num
    return {"loaded_mib": before, "peak_mib": peak_mib(), "seconds": time.perf_counter() - start}


def measure(mode: str, num: int, batch: int, steps: int) -> dict:
    """One fresh process per figure, so a peak is that run's alone."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with tempfile.TemporaryDirectory() as out:
        if mode == "cli":
            command = [sys.executable, str(ROOT / "generate.py"), "image", "--num", str(num), "--batch-size",
                       str(batch), "--num-steps", str(steps), "--out", out]  # fmt: skip
        else:
            command = [sys.executable, __file__, "--child", mode, str(num), str(batch), str(steps), out]
        start = time.perf_counter()
        # Output goes to files: a pipe nobody reads until the end would fill and stall the child.
        with open(Path(out) / "stdout.txt", "w+") as stdout_file, open(Path(out) / "stderr.txt", "w+") as stderr_file:
            process = subprocess.Popen(command, env=env, stdout=stdout_file, stderr=stderr_file, text=True)
            _, status, usage = os.wait4(process.pid, 0)
            stdout_file.seek(0), stderr_file.seek(0)
            stdout, stderr = stdout_file.read(), stderr_file.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{mode} {num}: failed\n{stderr[-2000:]}")
        written = len(list(Path(out).glob("*.png")))
    row = {"mode": mode, "images": num, "batch_size": batch, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
           "seconds": round(time.perf_counter() - start, 1), "pngs_written": written}  # fmt: skip
    if mode != "cli":
        child = json.loads(stdout.strip().splitlines()[-1])
        row["after_load_mib"] = round(child["loaded_mib"], 1)
    return row


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, num, batch, steps, out = sys.argv[2], *map(int, sys.argv[3:6]), sys.argv[6]
        print(json.dumps(run_in_python(mode, num, batch, steps, out)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--num-steps", type=int, default=4)
    parser.add_argument("--modes", nargs="+", default=["loop", "call", "cli"], choices=["loop", "call", "cli"])
    args = parser.parse_args()
    if min(args.counts) < 1 or args.batch_size < 1 or args.num_steps < 1:
        parser.error("--counts, --batch-size and --num-steps: expected integers >= 1")
    sys.path.insert(0, str(ROOT))
    from benchmarks.machine import cpu_name

    rows = []
    for mode in args.modes:
        for num in args.counts:
            rows.append(measure(mode, num, args.batch_size, args.num_steps))
            print(json.dumps(rows[-1]), flush=True)
    report = {"machine": f"{cpu_name()}, {os.environ.get('OMP_NUM_THREADS', '2')} threads",
              "num_steps": args.num_steps, "rows": rows}  # fmt: skip
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
