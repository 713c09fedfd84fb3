"""Decoding speed against the peers, side by side in one run, on the same shapes.

    .venv/bin/python -m benchmarks.decode_speed [--shape small|amused-256|tiny | --pipeline image|audio|motion]
        [--device cpu|cuda] [--dtype float32|bfloat16] [--cast] [--repeats 5] [--methods mgm muse amused]
        [--batch-sizes 1 16] [--compile] [--match TEXT...] [--out FILE.json] [--markdown FILE.md]

``--dtype bfloat16`` autocasts; with ``--cast`` the weights are stored in bfloat16 instead (a
diffusers user's ``torch_dtype``). A method that fails is reported; muse's reduced-precision path
fails, and then its rows are measured on a float32 copy of the same weights (the row says so).

Methods (benchmarks/peers.py gathers them, randomly initialised, at one shape of benchmarks/shapes.py):
- mgm ``maskgit_decode`` and ``recap_decode`` on ``MaskedTransformer`` against muse-maskgit-pytorch's
  ``MaskGit.generate`` at the same width, depth, heads, MLP width, sequence length, vocabulary and
  steps, without and with classifier-free guidance;
- mgm ``maskgit_decode`` through ``UVit2DAdapter`` against diffusers' ``AmusedPipeline`` on the SAME
  UVit2DModel weights, without and with guidance.
With ``--pipeline`` the rows are a shipped pipeline's own token loop instead (benchmarks/shipped.py):
its decode settings without and with its guidance, and ReCAP where it decodes with MaskGIT.
Each at batch 1 and a large batch: one warm-up run, then ``--repeats`` timed runs (the device
synchronised around each); the median and spread (min-max, IQR) per sample, samples/s, model
calls (NFE), full-pass equivalents per sample (counting guidance's null rows), peak memory (see
``timing.PeakMemory`` for what is measured on each device) and, for the model work of one decoding
step at the large batch, its FLOPs (torch's FlopCounterMode) and achieved TFLOP/s. Only the token
loop is timed: conditions / prompt embeddings are precomputed, and no VQ decode runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/decode_speed.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.amused_peer import AMUSED_ROW
from benchmarks.machine import check_run_args, machine_name
from benchmarks.mgm_methods import ADAPTER_ROW, MASKGIT_ROW, RECAP_ROW
from benchmarks.muse_peer import MUSE_ROW
from benchmarks.peers import FAMILIES, all_methods, quiet_peers
from benchmarks.shapes import SHAPES
from benchmarks.shipped import PIPELINES, describe, pipeline_methods
from benchmarks.timed import TimedMethod
from benchmarks.timing import PeakMemory, spread, time_runs, write_report

# Each mgm row is compared with the peer that runs the same model at the same batch and guidance.
PEER_OF = {MASKGIT_ROW: MUSE_ROW, RECAP_ROW: MUSE_ROW, ADAPTER_ROW: AMUSED_ROW}


def measure(method: TimedMethod, batch: int, repeats: int, device: torch.device, vocab: int, mach: str) -> dict:
    codes = method.run(batch)  # the warm-up run, whose output is checked
    valid = bool(codes.shape == (batch, codes.shape[1]) and ((codes >= 0) & (codes < vocab)).all())
    memory = PeakMemory(device)
    times = time_runs(lambda: method.run(batch), repeats, warmup=0, around_first=memory)
    stats = spread(times)
    return {
        "method": method.name,
        "family": method.family,
        "guided": method.guided,
        "guidance": method.guidance,
        "batch": batch,
        "ms_per_sample": stats["median"] / batch,
        "ms_per_sample_min": stats["min"] / batch,
        "ms_per_sample_max": stats["max"] / batch,
        "ms_per_sample_iqr": stats["iqr"] / batch,
        "samples_per_s": 1000 * batch / stats["median"],
        "repeats": repeats,
        "nfe": method.nfe(batch),
        "full_pass_equivalents": method.full_passes(batch),
        "peak_memory_mb": None if memory.bytes is None else memory.bytes / 2**20,
        "memory_kind": memory.kind,
        "valid_codes": valid,
        "timed": method.timed,
        "settings": method.settings,
        "dtype": method.dtype,
        "machine": mach,
    }


def measure_method(method: TimedMethod, batch_sizes: list[int], args, device, vocab: int, mach: str) -> list[dict]:
    """One row per batch size; the FLOP count and throughput of one step at the largest."""
    rows = [measure(method, b, args.repeats, device, vocab, mach) for b in batch_sizes]
    if not args.no_flops:
        rows[-1].update(step_throughput(method, batch_sizes[-1], args.repeats))
    return rows


def step_throughput(method: TimedMethod, batch: int, repeats: int) -> dict:
    """FLOPs of one decoding step's model work at ``batch`` and its achieved TFLOP/s."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        method.step(batch)
    flops = counter.get_total_flops()
    ms = statistics.median(time_runs(lambda: method.step(batch), repeats, warmup=1))
    return {"step_batch": batch, "step_gflop": flops / 1e9, "step_ms": ms, "step_tflops": flops / ms / 1e9}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default=None, help="default: small on CPU, amused-256 on GPU"
    )
    parser.add_argument(
        "--pipeline", choices=PIPELINES, help="time a shipped pipeline's own decode settings instead of the peers"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="default: the shape's (CPU 1 16)")
    parser.add_argument(
        "--guidance", type=float, nargs="+", help="aMUSEd-convention scales (1 = none); default 1 and the shape's"
    )
    parser.add_argument(
        "--cast", action="store_true", help="store the weights in --dtype (diffusers' torch_dtype), not autocast"
    )
    parser.add_argument("--compile", action="store_true", help="pass compile=True to the mgm decoders that take it")
    parser.add_argument("--match", nargs="+", help="only the methods whose name contains one of these strings")
    parser.add_argument("--no-flops", action="store_true", help="skip the per-step FLOP count and throughput")
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    check_run_args(parser, args)

    quiet_peers()
    torch.set_grad_enabled(False)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.pipeline and args.shape:
        parser.error(f"--pipeline={args.pipeline} and --shape={args.shape}: expected one of the two")
    shape_name = args.shape or ("amused-256" if device.type == "cuda" else "small")
    shape = SHAPES[shape_name]
    batch_sizes = args.batch_sizes or list(shape.batch_sizes)
    guidances = args.guidance or [1.0, shape.guidance]
    mach = machine_name(device)
    if args.pipeline:
        methods, pipe = pipeline_methods(args.pipeline, device, dtype, args.compile, args.cast)
        skipped, shape_name, shape_config = {}, f"pipeline {args.pipeline}", describe(pipe)
        vocab = max(pipe.spec.codebook_sizes)
    else:
        methods, skipped = all_methods(shape, device, dtype, args.compile, guidances, set(args.methods), args.cast)
        shape_config, vocab = shape.to_dict(), shape.codebook_size
    if args.match:
        methods = [m for m in methods if any(text in m.name for text in args.match)]
    report = {
        "machine": mach,
        "device": str(device),
        "dtype": args.dtype,
        "compile": args.compile,
        "cast": args.cast,
        "failed": [],
        "shape": shape_name,
        "shape_config": shape_config,
        "guidance_convention": "uncond + g * (cond - uncond) (aMUSEd / muse cond_scale); mgm gets g - 1",
        "skipped": skipped,
        "rows": [],
    }
    for family, reason in skipped.items():
        print(f"skipped {family}: {reason}", flush=True)
    measured = []
    for method in methods:
        try:
            rows = measure_method(method, batch_sizes, args, device, vocab, mach)
        except Exception as e:  # noqa: BLE001 - a peer's failure is reported, not fatal
            failure = f"{method.name} (g {method.guidance:g}, {method.dtype}): {type(e).__name__}: {e}"
            report["failed"].append(failure)
            print(f"FAILED {failure}", flush=True)
            if method.fallback is None:
                continue
            method = method.fallback()
            rows = measure_method(method, batch_sizes, args, device, vocab, mach)
        measured.append(method)
        for row in rows:
            print(
                f"{row['method']:<72} g={row['guidance']:<4} b={row['batch']:<3} {row['ms_per_sample']:9.2f} ms/sample",
                flush=True,
            )
        report["rows"] += rows
        add_speedups(report["rows"])
        write_report(report, args.out, args.markdown, markdown_table(report), echo=False)  # kept if a later row hangs
    add_speedups(report["rows"])
    report["reveal_checks"] = reveal_checks(measured)
    for check in report["reveal_checks"]:
        print(f"tokens revealed per step, {check['method']} vs {check['peer']}: agree={check['agree']}", flush=True)
    write_report(report, args.out, args.markdown, markdown_table(report))
    return report


def add_speedups(rows: list[dict]) -> None:
    """``speedup_vs_peer``: the peer's ms/sample over this row's, at the same batch and guidance."""
    index = {(r["method"], r["batch"], r["guided"]): r for r in rows}
    for row in rows:
        peer = index.get((PEER_OF.get(row["method"]), row["batch"], row["guided"]))
        row["speedup_vs_peer"] = None if peer is None else peer["ms_per_sample"] / row["ms_per_sample"]
        row["peer"] = None if peer is None else peer["method"]


def reveal_checks(methods: list[TimedMethod]) -> list[dict]:
    """The distribution-family check of an mgm method against its peer on the same model: both
    decode only masked tokens, and reveal as many tokens at each step (one batch-1 decode each)."""
    by_key = {(m.name, m.guided): m for m in methods}
    checks = []
    for m in methods:
        peer = by_key.get((PEER_OF.get(m.name), m.guided))
        if peer is None or m.reveals is None or peer.reveals is None:
            continue
        ours, theirs = m.reveals(), peer.reveals()
        checks.append(
            {"method": m.name, "peer": peer.name, "guided": m.guided, "ours": ours, "peer_reveals": theirs,
             "agree": ours == theirs}
        )  # fmt: skip
    return checks


def markdown_table(report: dict) -> str:
    shape = report["shape_config"]
    if report["shape"].startswith("pipeline"):
        described = (
            f"Shipped {report['shape']} ({shape['spec']}, {shape['parameters_m']:.1f}M parameters), its own "
            f"settings ({shape['method']}{' ' + shape['plan'] if shape['plan'] else ''}, {shape['passes']} "
            f"passes, guidance scale {shape['guidance_scale']:g}, i.e. g = {1 + shape['guidance_scale']:g} below)"
        )
    else:
        described = (
            f"Shape `{report['shape']}` ({shape['notes']}): {shape['side']}x{shape['side']} tokens, codebook "
            f"{shape['codebook_size']}, width {shape['dim']}, depth {shape['depth']}, {shape['num_heads']} heads, "
            f"{shape['num_steps']} steps"
        )
    lines = [
        described
        + f"; device {report['device']}, {report['dtype']}"
        + (", compile" if report["compile"] else "")
        + ". Guidance g in aMUSEd's convention (1 = off; mgm runs g - 1). Token loop only (prompt embeddings "
        "precomputed, no VQ decode). ms/sample: median over the repeats; spread: min-max. NFE: model calls "
        "(muse runs guidance as two calls a step). Full passes per sample count guidance's null rows. Step: "
        "one decoding step's model work at the large batch. Memory: "
        + (report["rows"][0]["memory_kind"] if report["rows"] else "-")
        + ".",
        "",
    ]
    for family, reason in report["skipped"].items():
        lines += [f"Skipped {family}: {reason}", ""]
    for failure in report.get("failed", []):
        lines += [f"Failed, so measured in float32 where a fallback exists: {failure}", ""]
    for check in report.get("reveal_checks", []):
        verdict = "agree" if check["agree"] else "DIFFER"
        lines += [
            f"Tokens revealed per step (batch 1, g {'on' if check['guided'] else 'off'}), {check['method']} "
            f"{check['ours']} vs {check['peer']} {check['peer_reveals']}: {verdict}.",
            "",
        ]
    lines += [
        "| method | precision | g | batch | ms/sample | spread | samples/s | speed-up vs peer | NFE | full passes "
        "| peak MB | step GFLOP | step TFLOP/s | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rows"]:
        speedup = "" if r["speedup_vs_peer"] is None else f"{r['speedup_vs_peer']:.2f}x"
        memory = "" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.1f}"
        gflop = f"{r['step_gflop']:.3g}" if "step_gflop" in r else ""
        tflops = f"{r['step_tflops']:.3g}" if "step_tflops" in r else ""
        lines.append(
            f"| {r['method']} | {r['dtype']} | {r['guidance']:g} | {r['batch']} | {r['ms_per_sample']:.2f} | "
            f"{r['ms_per_sample_min']:.2f}-{r['ms_per_sample_max']:.2f} | {r['samples_per_s']:.1f} | {speedup} | "
            f"{r['nfe']:.0f} | {r['full_pass_equivalents']:.1f} | {memory} | {gflop} | {tflops} | {r['machine']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
