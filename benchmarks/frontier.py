"""Quality against compute of every masked decoder on the three shipped masked pipelines.

For Shapes10 (image), Tones8 (audio) and Motions7 (motion), each masked decoder over a sweep of
its knob, all in one run on this machine through ``mgm-eval``'s own evaluation: quality (the
judge's Frechet distance and the exact checker), mean sequential passes per sample (NFE), full-pass
compute per sample, and ms per sample decoding at batch 32 (the quality run) and at batch 1 (a
few more samples, decoded one by one). Writes the JSON report, a markdown table and one PNG per
modality (Frechet distance against NFE and against compute), and runs the Markov-toy probe
(``benchmarks.parallel_probe``).

    .venv/bin/python -m benchmarks.frontier [--modalities image audio motion probe] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import parallel_probe
from benchmarks.machine import machine_name
from mgm.cli.evaluate import build_parser, evaluate

RESULTS = Path(__file__).resolve().parent / "results"


def _sweep(method: str, knob: str, values, argv) -> list[tuple[str, str, list[str]]]:
    return [(method, knob.format(v=v), [str(a).format(v=v) for a in argv]) for v in values]


# (method, knob shown, mgm-eval options); "{v}" is the swept value. The first row is the default.
IMAGE = [
    ("maskgit", "12 steps (default)", []),
    *_sweep("maskgit", "{v} steps", (4, 6, 8), ["--num-steps", "{v}"]),
    *_sweep("maskgit", "12 steps, order {v}", ("halton", "locality", "random"), ["--order", "{v}"]),
    *_sweep("cached", "maskgit 12 steps, refresh {v}", (2, 4, 12), ["--cached", "--refresh", "{v}"]),
    ("recap", "12 steps (2 full, then 1 cheap per full)", ["--method", "recap", "--full-first", "2", "--cheap-per-full", "1"]),
    *_sweep("cached", "recap 12 (2 full, then 1 cheap), refresh {v}", (4,), ["--method", "recap", "--full-first", "2", "--cheap-per-full", "1", "--cached", "--refresh", "{v}"]),
    *_sweep("threshold", "tau {v}, max 12", (0.5, 0.7, 0.9), ["--method", "threshold", "--tau", "{v}", "--max-steps", "12"]),
    *_sweep("threshold", "tau {v}, max 6", (0.5, 0.7), ["--method", "threshold", "--tau", "{v}", "--max-steps", "6"]),
    *_sweep("credit", "tau {v}, max 12", (0.5, 0.7, 0.9), ["--method", "credit", "--tau", "{v}", "--max-steps", "12"]),
    *_sweep("remask", "rerank eta {v}, 6 steps", (0.1, 0.2, 0.3, 0.4), ["--method", "remask", "--eta", "{v}", "--num-steps", "6"]),
    *_sweep("remask", "rerank eta {v}, 4 steps", (0.2, 0.4), ["--method", "remask", "--eta", "{v}", "--num-steps", "4"]),
    *_sweep("remask", "rerank eta {v}, 12 steps", (0.1,), ["--method", "remask", "--eta", "{v}", "--num-steps", "12"]),
    *_sweep("critic", "{v} steps", (3, 4, 6, 12), ["--method", "critic", "--num-steps", "{v}"]),
    *_sweep("verified", "maskgit-12 trajectory, draft {v}", (1, 4), ["--method", "verified", "--target", "maskgit", "--draft", "{v}"]),
    *_sweep("verified", "sequential halton, draft {v}", (8,), ["--method", "verified", "--draft", "{v}"]),
]  # fmt: skip
AUDIO = [
    ("group", "soundstorm (16, 1, 1, 1) (default)", []),
    *_sweep("group", "soundstorm ({v}, 1, 1, 1)", (4, 6, 8), ["--plan", "soundstorm", "--steps", "{v}", "1", "1", "1"]),
    *_sweep("group", "gipd ({v}, 2)", (4, 6), ["--plan", "gipd", "--steps", "{v}", "2"]),
    *_sweep("maskgit", "joint, {v} steps", (4, 6, 8, 10, 12), ["--method", "maskgit", "--num-steps", "{v}"]),
    *_sweep("cached", "soundstorm (16, 1, 1, 1), refresh {v}", (2, 4), ["--cached", "--refresh", "{v}"]),
    *_sweep("cached", "joint, 8 steps, refresh {v}", (2, 4), ["--method", "maskgit", "--num-steps", "8", "--cached", "--refresh", "{v}"]),
    *_sweep("threshold", "tau {v}, max 10", (0.5, 0.7, 0.9), ["--method", "threshold", "--tau", "{v}", "--max-steps", "10"]),
    *_sweep("credit", "tau {v}, max 10", (0.5, 0.7), ["--method", "credit", "--tau", "{v}", "--max-steps", "10"]),
    *_sweep("remask", "rerank eta {v}, 6 steps", (0.1, 0.2), ["--method", "remask", "--eta", "{v}", "--num-steps", "6"]),
    *_sweep("critic", "{v} steps", (3, 4, 5), ["--method", "critic", "--num-steps", "{v}"]),
    *_sweep("maskgit", "joint, 8 steps, order {v}", ("halton", "locality"), ["--method", "maskgit", "--num-steps", "8", "--order", "{v}"]),
    *_sweep("verified", "maskgit-8 trajectory, draft {v}", (2,), ["--method", "verified", "--target", "maskgit", "--num-steps", "8", "--draft", "{v}"]),
]  # fmt: skip
MOTION = [
    ("maskgit", "10 steps (default)", []),
    *_sweep("maskgit", "{v} steps", (3, 4, 5, 6), ["--num-steps", "{v}"]),
    *_sweep("maskgit", "10 steps, order {v}", ("halton", "locality", "random"), ["--order", "{v}"]),
    *_sweep("cached", "maskgit 10 steps, refresh {v}", (2, 5), ["--cached", "--refresh", "{v}"]),
    *_sweep("threshold", "tau {v}, max 10", (0.3, 0.5, 0.7), ["--method", "threshold", "--tau", "{v}", "--max-steps", "10"]),
    *_sweep("credit", "tau {v}, max 10", (0.3, 0.5), ["--method", "credit", "--tau", "{v}", "--max-steps", "10"]),
    *_sweep("remask", "rerank eta {v}, 5 steps", (0.1, 0.2, 0.3), ["--method", "remask", "--eta", "{v}", "--num-steps", "5"]),
    *_sweep("critic", "{v} steps", (2, 3, 5), ["--method", "critic", "--num-steps", "{v}"]),
    *_sweep("verified", "maskgit-10 trajectory, draft {v}", (2,), ["--method", "verified", "--target", "maskgit", "--draft", "{v}"]),
    *_sweep("verified", "sequential halton, draft {v}", (8,), ["--method", "verified", "--draft", "{v}"]),
]  # fmt: skip
SWEEPS = {"image": IMAGE, "audio": AUDIO, "motion": MOTION}
QUALITY = {  # (Frechet distance key, checker key) of each modality's scores
    "image": ("frechet_judge", "judge_accuracy"),
    "audio": ("frechet_judge", "pitch_checker_agreement"),
    "motion": ("fid", "action_agreement"),
}
SLOW_NUM = {"sequential": 64}  # the sequential-target verified rows decode fewer samples (slow)
MIN_NUM = {"motion": 32}  # motion's R-precision ranks batches of 32, so every motion run decodes at least 32


def run_eval(modality: str, options: list[str], num: int, batch_size: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [modality, *options, "--num", str(num), "--batch-size", str(batch_size), "--seed", str(seed),
                "--out", f"{tmp}/report.json"]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return evaluate(build_parser().parse_args(argv))


def measure(modality: str, num: int, batch1_num: int, seed: int) -> list[dict]:
    fd_key, check_key = QUALITY[modality]
    least = MIN_NUM.get(modality, 1)
    run_eval(modality, [], max(8, least), 8, seed)  # warm-up: first-call costs (loading, allocator) stay out of the rows
    rows = []
    for method, knob, options in SWEEPS[modality]:
        n = next((v for k, v in SLOW_NUM.items() if k in knob), num)
        report = run_eval(modality, options, n, 32, seed)
        single = run_eval(modality, options, max(batch1_num, least), 1, seed + 1)
        rows.append({
            "method": method, "knob": knob, "command": " ".join(["mgm-eval", modality, *options]), "num": n,
            "frechet": report["scores"][fd_key], "checker": report["scores"][check_key],
            "nfe": report["nfe_per_sample"], "compute": report["compute_full_passes_per_sample"],
            "ms_batch32": report["ms_per_sample_decoding"], "ms_batch1": single["ms_per_sample_decoding"],
        })  # fmt: skip
        r = rows[-1]
        print(f"{modality} {method:9s} {knob:36s} n {n:4d}  FD {r['frechet']:6.2f}  check {r['checker']:.3f}  "
              f"nfe {r['nfe']:6.2f}  compute {r['compute']:6.1f}  ms {r['ms_batch32']:7.1f} / {r['ms_batch1']:7.1f}",
              flush=True)  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| method | knob | samples | Frechet distance | checker | NFE | compute | ms / sample, batch 32 | ms / sample, batch 1 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['method']} | {r['knob']} | {r['num']} | {r['frechet']:.2f} | {r['checker']:.3f} | "
                     f"{r['nfe']:.2f} | {r['compute']:.1f} | {r['ms_batch32']:.1f} | {r['ms_batch1']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(modality: str, rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for ax, x_key, label in zip(axes, ("nfe", "compute"), ("mean sequential passes (NFE)", "full-pass compute")):
        for i, method in enumerate(methods):
            mine = [r for r in rows if r["method"] == method]
            ax.scatter([r[x_key] for r in mine], [r["frechet"] for r in mine], label=method, color=f"C{i}", s=28)
        default = rows[0]
        ax.scatter([default[x_key]], [default["frechet"]], marker="*", s=220, color="k", label="default", zorder=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Frechet distance (lower is better)")
    axes[1].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{modality}: quality against passes and compute ({machine_name(torch.device('cpu'))})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modalities", nargs="+", default=["image", "audio", "motion", "probe"],
                        choices=["image", "audio", "motion", "probe"])  # fmt: skip
    parser.add_argument("--batch1-num", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="32 samples per row (a smoke run), not 512 / 256 / 256")
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--replot", action="store_true", help="redraw the tables and plots from the saved JSON")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        for modality in (m for m in args.modalities if m != "probe"):
            rows = json.loads((out / f"frontier_{modality}.json").read_text())["rows"]
            (out / f"frontier_{modality}.md").write_text(table(rows))
            plot(modality, rows, out / f"frontier_{modality}.png")
        return
    nums = {"image": 512, "audio": 256, "motion": 256}
    if args.quick:
        nums = dict.fromkeys(nums, 32)
        SLOW_NUM["sequential"] = 8
    torch.set_grad_enabled(False)
    for modality in args.modalities:
        if modality == "probe":
            report = parallel_probe.main(["--out", str(out / "parallel_probe.json")])
            (out / "parallel_probe.md").write_text(parallel_probe.table(report))
            continue
        rows = measure(modality, nums[modality], args.batch1_num, args.seed)
        report = {"machine": machine_name(torch.device("cpu")), "modality": modality, "seed": args.seed, "rows": rows}
        (out / f"frontier_{modality}.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / f"frontier_{modality}.md").write_text(table(rows))
        plot(modality, rows, out / f"frontier_{modality}.png")


if __name__ == "__main__":
    main()
