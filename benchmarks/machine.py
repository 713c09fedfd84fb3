"""Where a speed benchmark runs: the machine's name for the report, and the device checks of its CLI."""

from __future__ import annotations

import torch


def machine_name(device: torch.device) -> str:
    """The GPU (with CUDA and torch versions) or the CPU (with its thread count) a row ran on."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}, torch {torch.__version__}"
    return f"{cpu_name()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def check_run_args(parser, args) -> None:
    """The --repeats and --device checks both speed scripts share (argparse errors, before any work)."""
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats}: expected an integer >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (run the CPU subset with --device cpu)")
