"""One decoding step against the bare forward, and the forward's throughput against the matmul peak.

    python -m benchmarks.gpu_step [--shape amused-256] [--device cuda] [--dtype bfloat16] [--repeats 20]
        [--compile] [--out FILE.json] [--markdown FILE.md]

On mgm's ``MaskedTransformer`` at one shape of ``benchmarks/shapes.py`` (random weights stored in
``--dtype``, prompt context precomputed), medians over ``--repeats``:

- the bare forward at batch 1 (and its guided pair of rows): eager, and on a GPU as the replay of a
  CUDA graph captured around ``model(codes, cond)``, the floor a decode step can approach;
- one ``maskgit_decode`` step at batch 1: a whole decode's time over its steps (so the few
  launches before the loop are included), eager and with ``compile=True``; the ratio to the replay;
- the forward at the large batch (64): FLOPs counted by torch's FlopCounterMode over its time,
  eager and as a graph replay, against the measured peak of a bf16 (or --dtype) matrix product.

The CPU run (graph rows skipped) exists so the script is tested where no GPU is lent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/gpu_step.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.machine import check_run_args, machine_name
from benchmarks.mgm_methods import build_masked_transformer
from benchmarks.shapes import SHAPES, prompt_context
from benchmarks.timing import time_runs, write_report
from mgm.decoding import maskgit_decode
from mgm.models import Condition


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    return statistics.median(time_runs(fn, repeats, warmup=warmup))


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int) -> dict:
    """TFLOP/s of a size^3 matrix product on random data (several operand pairs, rotated)."""
    g = torch.Generator(device=device).manual_seed(0)
    pairs = [
        (torch.randn(size, size, device=device, dtype=dtype, generator=g),
         torch.randn(size, size, device=device, dtype=dtype, generator=g))
        for _ in range(3)
    ]  # fmt: skip
    turn = iter(range(10**9))

    def product():
        a, b = pairs[next(turn) % len(pairs)]
        return a @ b

    ms = median_ms(product, repeats)
    return {"size": size, "ms": ms, "tflops": 2 * size**3 / ms / 1e9}


def forward_inputs(model, shape, batch: int, device, guided: bool):
    """(codes [R, 1, N] all masked, cond) for one step's forward: R = 2B with guidance's null rows."""
    codes = model.spec.full_mask(batch, device)
    cond = Condition(context=prompt_context(shape, batch, device))
    if guided:
        codes, cond = torch.cat([codes, codes]), Condition.cat([cond, cond.null()])
    return codes, cond


def graph_replay(model, codes, cond, repeats: int) -> float | None:
    """Median ms of replaying a CUDA graph of ``model(codes, cond)``; None off the GPU."""
    if codes.device.type != "cuda":
        return None
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capture stream, as torch.cuda.graphs asks
        for _ in range(3):
            model(codes, cond)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(codes, cond)
    ms = median_ms(graph.replay, repeats)
    del graph
    return ms


def flops_of(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def decode_step_ms(model, shape, device, guided: bool, compile: bool, repeats: int) -> float:
    cond = Condition(context=prompt_context(shape, 1, device))

    def decode():
        return maskgit_decode(
            model, model.spec, batch_size=1, num_steps=shape.num_steps, cond=cond,
            guidance_scale=9.0 if guided else 0.0, generator=torch.Generator(device=device).manual_seed(0),
            compile=compile,
        )  # fmt: skip

    return median_ms(decode, repeats) / shape.num_steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="amused-256")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--large-batch", type=int, default=64)
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--compile", action="store_true", help="also time the decode with compile=True")
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    check_run_args(parser, args)

    torch.set_grad_enabled(False)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    shape = SHAPES[args.shape]
    model = build_masked_transformer(shape, device).to(dtype)
    report = {
        "machine": machine_name(device),
        "shape": args.shape,
        "dtype": f"{args.dtype} weights",
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "num_steps": shape.num_steps,
        "matmul_peak": matmul_peak(device, dtype, args.matmul_size, args.repeats),
        "batch1": [],
    }

    def save():  # after every measurement, so a run cut short keeps what it measured
        write_report(report, args.out, args.markdown, markdown_table(report), echo=False)

    print(f"matmul peak: {report['matmul_peak']['tflops']:.1f} TFLOP/s", flush=True)

    with torch.inference_mode():
        for guided in (False, True):
            codes, cond = forward_inputs(model, shape, 1, device, guided)
            row = {
                "guided": guided,
                "forward_eager_ms": median_ms(lambda c=codes, k=cond: model(c, k), args.repeats),
                "forward_graph_ms": graph_replay(model, codes, cond, args.repeats),
                "step_eager_ms": decode_step_ms(model, shape, device, guided, False, args.repeats),
            }
            report["batch1"].append(row)
            save()
            print(row, flush=True)
        if args.compile:
            for row in report["batch1"]:
                row["step_compiled_ms"] = decode_step_ms(model, shape, device, row["guided"], True, args.repeats)
                save()
                print(row, flush=True)

        codes, cond = forward_inputs(model, shape, args.large_batch, device, False)
        flops = flops_of(lambda: model(codes, cond))
        eager = median_ms(lambda: model(codes, cond), args.repeats)
        graph = graph_replay(model, codes, cond, args.repeats)
        report["large_batch"] = {
            "batch": args.large_batch,
            "gflop": flops / 1e9,
            "eager_ms": eager,
            "eager_tflops": flops / eager / 1e9,
            "graph_ms": graph,
            "graph_tflops": None if graph is None else flops / graph / 1e9,
        }
    save()
    print(markdown_table(report), flush=True)
    return report


def _ratio(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None else f"{a / b:.2f}x"


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def markdown_table(report: dict) -> str:
    peak = report["matmul_peak"]
    lines = [
        f"`MaskedTransformer` at shape `{report['shape']}` ({report['parameters_m']:.0f}M parameters, "
        f"{report['dtype']}), {report['machine']}. Medians in ms. A decode step is a whole "
        f"{report['num_steps']}-step `maskgit_decode` over its steps; the graph is a CUDA graph of the bare "
        f"forward. Matmul peak: {peak['size']}^3 product, {peak['tflops']:.1f} TFLOP/s.",
        "",
        "| batch 1 | forward eager | forward graph | step eager | step compile=True | step eager / graph "
        "| step compiled / graph |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["batch1"]:
        lines.append(
            f"| {'guided (2 rows)' if r['guided'] else 'unguided'} | {_ms(r['forward_eager_ms'])} | "
            f"{_ms(r['forward_graph_ms'])} | {_ms(r['step_eager_ms'])} | {_ms(r.get('step_compiled_ms'))} | "
            f"{_ratio(r['step_eager_ms'], r['forward_graph_ms'])} | "
            f"{_ratio(r.get('step_compiled_ms'), r['forward_graph_ms'])} |"
        )
    large = report.get("large_batch")
    if large:
        graph = large["graph_tflops"]
        lines += [
            "",
            f"Forward at batch {large['batch']}: {large['gflop']:.0f} GFLOP; eager {large['eager_ms']:.2f} ms = "
            f"{large['eager_tflops']:.1f} TFLOP/s ({large['eager_tflops'] / peak['tflops']:.0%} of the matmul peak)"
            + (
                ""
                if graph is None
                else f"; graph {large['graph_ms']:.2f} ms = {graph:.1f} TFLOP/s ({graph / peak['tflops']:.0%})"
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
