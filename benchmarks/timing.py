"""Wall-clock timing and report writing shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import ctypes
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


def write_report(
    report: dict, out: str | None = None, markdown: str | None = None, table: str | None = None, echo: bool = True
) -> None:
    """Print the report as JSON (unless not ``echo``); write it to ``out`` and ``table`` (a markdown
    table) to ``markdown``."""
    text = json.dumps(report, indent=2)
    if echo:
        print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    if markdown and table is not None:
        with open(markdown, "w") as f:
            f.write(table)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_runs(fn, repeats: int, warmup: int = 1, around_first=None) -> list[float]:
    """Wall times in ms of ``repeats`` runs of ``fn()`` after ``warmup`` untimed runs.

    The device is synchronised around each run. ``around_first``, a context manager (e.g. a
    ``PeakMemory``), is entered and left outside the timed region of the first timed run.
    """
    for _ in range(warmup):
        fn()
    times = []
    for i in range(repeats):
        probe = around_first if i == 0 and around_first is not None else contextlib.nullcontext()
        with probe:
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(1000 * (time.perf_counter() - start))
    return times


def spread(times: list[float]) -> dict:
    """Median, min, max and interquartile range of ``times``."""
    ordered = sorted(times)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1], "iqr": q3 - q1}


class PeakMemory:
    """Peak memory of the code inside ``with PeakMemory(device) as m:`` -> ``m.bytes``; ``m.kind`` says how.

    CUDA: ``torch.cuda.max_memory_allocated`` above what was allocated on entry (tensors only,
    not the caching allocator's reserve). CPU: the process's peak resident set (VmHWM) above its
    resident set on entry, after returning freed heap to the OS (``malloc_trim``) and resetting
    the peak (``/proc/self/clear_refs``); whole process, so approximate. Without /proc:
    ``resource.getrusage`` maxrss growth (0 unless the run sets a new lifetime peak).
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.bytes: int | None = None
        self.kind = ""

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            sync()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            self.kind = "torch.cuda.max_memory_allocated above the allocation at the start"
            return self
        _malloc_trim()
        if _reset_peak_rss():
            self._start = _proc_status_kb("VmRSS") * 1024
            self.kind = "CPU peak RSS above the RSS at the start (VmHWM after /proc/self/clear_refs, malloc_trim)"
        else:
            self._start = _maxrss_bytes()
            self.kind = "CPU getrusage maxrss growth (0 unless a new lifetime peak)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync()
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._start
        elif self.kind.startswith("CPU peak RSS"):
            self.bytes = max(0, _proc_status_kb("VmHWM") * 1024 - self._start)
        else:
            self.bytes = max(0, _maxrss_bytes() - self._start)


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_status_kb("VmHWM") > 0
    except OSError:
        return False


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _maxrss_bytes() -> int:
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB
