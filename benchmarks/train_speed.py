"""Training throughput of the masked-token training step at a model shape, over a batch sweep.

    python -m benchmarks.train_speed [--shape amused-256] [--device cuda] [--batch-sizes 16 32 64 128]
        [--steps 10] [--no-compile] [--fsdp] [--out FILE.json] [--markdown FILE.md]

The step is ``MaskedTokenTraining.masked_loss`` (schedule-drawn masks, the cross-entropy on the
masked tokens, conditions dropped for guidance), backward, then AdamW (fused on a GPU), under
bf16 autocast (Lightning's "bf16-mixed": float32 weights) and ``torch.compile`` of the
transformer. Per batch size and activation checkpointing off / on (``gradient_checkpointing``):
samples/s (median step time over ``--steps`` after 3 warm-up steps), achieved TFLOP/s (the step's
FLOPs counted once by torch's FlopCounterMode on the eager model without checkpointing, so the
recomputation is not counted as useful work), MFU against a measured bf16 matrix-product peak,
and peak memory. A batch that runs out of memory is a row that says so.

``--fsdp`` also fits the same system for a few steps through Lightning's Trainer with the
FSDPStrategy on one device (the transformer block as the wrap unit, bf16-mixed): a check of its
wiring, with its steps/s. It needs CUDA; elsewhere the row says it was skipped.

On the CPU (``--shape tiny --device cpu``) the script runs end to end so it is tested where no GPU
is lent (compile off there unless asked: inductor's CPU compile takes minutes at large shapes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if not __package__:  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.gpu_step import flops_of, matmul_peak
from benchmarks.machine import machine_name
from benchmarks.mgm_methods import build_masked_transformer
from benchmarks.shapes import SHAPES, prompt_context
from benchmarks.timing import write_report
from mgm.training.masked import MaskedTokenTraining

WARMUP = 3


def make_batch(shape, batch: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(batch)
    codes = torch.randint(shape.codebook_size, (batch, 1, shape.num_positions), generator=g).to(device)
    return {"codes": codes, "context": prompt_context(shape, batch, device)}


def build_system(shape, device: torch.device, compile: bool, checkpointing: bool):
    """(system, the eager transformer, optimizer): the training system around a fresh model."""
    model = build_masked_transformer(shape, device).train()
    model.gradient_checkpointing = checkpointing
    system = MaskedTokenTraining(model, label_smoothing=0.1)
    if compile:
        system.model = torch.compile(model)
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=fused)
    return system, model, optimizer


def train_step(system, optimizer, batch: dict, device: torch.device, dtype: torch.dtype):
    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss, _ = system.masked_loss(batch, train=True)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def timed_steps(step, steps: int, device: torch.device) -> list[float]:
    times = []
    for i in range(WARMUP + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        loss = step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
        if not torch.isfinite(loss.detach()).item():
            raise RuntimeError(f"the loss is not finite at step {i}")
    return times


def measure(shape, batch: int, device, dtype, compile: bool, checkpointing: bool, steps: int, flops: float) -> dict:
    row = {"batch": batch, "checkpointing": checkpointing, "compile": compile}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        system, _, optimizer = build_system(shape, device, compile, checkpointing)
        step = train_step(system, optimizer, make_batch(shape, batch, device), device, dtype)
        times = timed_steps(step, steps, device)
    except torch.OutOfMemoryError:
        row["error"] = "out of memory"
        return row
    seconds = statistics.median(times)
    row.update({
        "step_ms": seconds * 1e3,
        "samples_per_s": batch / seconds,
        "tflops": flops / seconds / 1e12,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    })  # fmt: skip
    return row


def step_flops(shape, batch: int, device, dtype) -> float:
    """FLOPs of one eager step (forward, backward; the optimizer's elementwise work is not counted)."""
    system, _, optimizer = build_system(shape, device, compile=False, checkpointing=False)
    step = train_step(system, optimizer, make_batch(shape, batch, device), device, dtype)
    return flops_of(step)


def fsdp_check(shape, batch: int, device, steps: int) -> dict:
    """A few steps through Lightning's Trainer with FSDPStrategy on one device (blocks wrapped)."""
    if device.type != "cuda":
        return {"skipped": "Lightning's FSDPStrategy needs CUDA"}
    import lightning as L
    from lightning.pytorch.strategies import FSDPStrategy

    from mgm.models.layers import Block

    data = [make_batch(shape, batch, torch.device("cpu")) for _ in range(2)]
    loader = torch.utils.data.DataLoader(data * (steps + WARMUP), batch_size=None)
    model = build_masked_transformer(shape, torch.device("cpu")).train()
    system = MaskedTokenTraining(model, warmup_steps=1)
    trainer = L.Trainer(
        accelerator="cuda", devices=1, strategy=FSDPStrategy(auto_wrap_policy={Block}), precision="bf16-mixed",
        max_steps=steps + WARMUP, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(system, loader)
    elapsed = time.perf_counter() - start
    loss = float(trainer.callback_metrics.get("train/loss", torch.tensor(float("nan"))))
    wrapped = sum(type(m).__name__ == "FullyShardedDataParallel" for m in system.modules())
    return {"batch": batch, "steps": steps + WARMUP, "seconds": elapsed, "final_loss": loss, "wrapped_blocks": wrapped}


def nvidia_driver() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="amused-256")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--compile", dest="compile", action="store_true", default=None)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--fsdp", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    if args.steps < 1 or min(args.batch_sizes) < 1:
        parser.error("--steps and --batch-sizes: expected integers >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (run the CPU subset with --device cpu)")
    device, shape = torch.device(args.device), SHAPES[args.shape]
    compile = (device.type == "cuda") if args.compile is None else args.compile
    dtype = torch.bfloat16
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    peak = matmul_peak(device, dtype, args.matmul_size, 10)
    report = {"machine": machine_name(device), "shape": args.shape, "precision": "bf16-mixed (autocast)",
              "optimizer": "AdamW" + (" (fused)" if device.type == "cuda" else ""), "compile": compile,
              "matmul_peak": peak, "rows": []}  # fmt: skip
    if device.type == "cuda":
        report["driver"] = nvidia_driver()
    for batch in args.batch_sizes:
        flops = step_flops(shape, batch, device, dtype)
        for checkpointing in (False, True):
            row = measure(shape, batch, device, dtype, compile, checkpointing, args.steps, flops)
            row["step_tflop"] = flops / 1e12
            if "tflops" in row:
                row["mfu"] = row["tflops"] / peak["tflops"]
            report["rows"].append(row)
            print(row, flush=True)
    if args.fsdp:
        report["fsdp"] = fsdp_check(shape, args.batch_sizes[0], device, args.steps)
        print("fsdp", report["fsdp"], flush=True)
    done = [r for r in report["rows"] if "mfu" in r]
    report["best"] = max(done, key=lambda r: r["mfu"]) if done else None
    write_report(report, args.out, args.markdown, markdown_table(report), echo=False)
    return report


def markdown_table(report: dict) -> str:
    peak = report["matmul_peak"]
    lines = [
        f"Machine: {report['machine']}; shape {report['shape']}; {report['precision']}, {report['optimizer']}, "
        f"compile {report['compile']}; matmul peak {peak['tflops']:.1f} TFLOP/s ({peak['size']}^3, bf16).",
        "",
        "| batch | checkpointing | step ms | samples/s | TFLOP/s | MFU | peak memory GiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"| {r['batch']} | {r['checkpointing']} | {r['error']} | | | | |")
            continue
        memory = "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        lines.append(f"| {r['batch']} | {r['checkpointing']} | {r['step_ms']:.1f} | {r['samples_per_s']:.1f} | "
                     f"{r['tflops']:.2f} | {r['mfu']:.1%} | {memory} |")  # fmt: skip
    if "fsdp" in report:
        lines += ["", f"FSDP on one device (Lightning FSDPStrategy, blocks wrapped): {report['fsdp']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
