"""Wall-clock timing and report writing shared by the benchmark scripts."""

from __future__ import annotations

import json
import statistics
import time

import torch


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs, after one warm-up run.

    On a GPU the device is synchronised around each run, so queued kernels are counted.
    """
    fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def write_report(report: dict, out: str | None = None, markdown: str | None = None, table: str | None = None) -> None:
    """Print the report as JSON; write it to ``out`` and ``table`` (a markdown table) to ``markdown``."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    if markdown and table is not None:
        with open(markdown, "w") as f:
            f.write(table)
