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

``--decoders`` also times this turn's decoders side by side at the shape with random weights, per
sample at batch 1 and 32 (median of 3 after a warm-up, bf16 autocast, guidance at the shape's
scale): MaskGIT-12 eager and compiled, ReCAP, cached decoding (refresh 2 and 4), threshold and
verified (maskgit target) decoding, all compiled; and an AR transformer of about 300M parameters
over 256 tokens (width 1024, 24 blocks) with ``ar`` against batched ``sjd`` at batch 1 and 16.
Random weights give near-uniform distributions, which SJD accepts readily, so its pass counts
here are an upper bound of what a trained model gets; the row says its passes per sample.

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
        # enable_grad: a caller (another benchmark in the same process) may have turned gradients off.
        with torch.enable_grad():
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


MASKED_DECODERS = {  # row -> (method, options); compile applies to every row but the eager one
    "maskgit 12, eager": ("maskgit", {"num_steps": 12}),
    "maskgit 12, compiled": ("maskgit", {"num_steps": 12}),
    "recap 12 (2 full, 1 cheap per full), compiled": ("recap", {"num_steps": 12}),
    "maskgit 12 cached (refresh 2), compiled": ("maskgit", {"num_steps": 12, "cached": True, "refresh": 2}),
    "maskgit 12 cached (refresh 4), compiled": ("maskgit", {"num_steps": 12, "cached": True, "refresh": 4}),
    "threshold tau 0.9, max 12, compiled": ("threshold", {"tau": 0.9, "max_steps": 12}),
    "verified maskgit-12 trajectory, draft 1, compiled": ("verified", {"target": "maskgit", "draft": 1}),
}


def decoder_rows(shape, device, repeats: int, batches=(1, 32), compile: bool = True) -> list[dict]:
    """Per-sample decode times of the masked decoders at ``shape`` (random weights); without
    ``compile`` the "compiled" rows run eager (and say so)."""
    from benchmarks.timing import time_runs
    from mgm.decoding import METHODS
    from mgm.models import Condition

    model = build_masked_transformer(shape, device)
    rows = []
    for name, (method, options) in MASKED_DECODERS.items():
        if not compile:
            if name == "maskgit 12, compiled":
                continue  # it would repeat the eager row
            name = name.replace("compiled", "eager")
        for batch in batches:
            cond = Condition(context=prompt_context(shape, batch, device))
            run = dict(batch_size=batch, cond=cond, guidance_scale=shape.guidance, dtype="bfloat16",
                       compile="eager" not in name, **options)  # fmt: skip
            result = {}

            def decode(run=run, method=method, result=result):
                generator = torch.Generator(device).manual_seed(0)
                result["r"] = METHODS[method].decode(model, model.spec, generator=generator, **run)

            ms = statistics.median(time_runs(decode, repeats, warmup=1))
            r = result["r"]
            rows.append({"method": name, "batch": batch, "ms_per_sample": ms / batch, "nfe": r.nfe,
                         "compute": r.compute})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def ar_rows(device, repeats: int, small: bool, batches=(1, 16)) -> list[dict]:
    """AR against batched SJD on an AR transformer of ~300M parameters over 256 tokens (random weights)."""
    from benchmarks.timing import time_runs
    from mgm.decoding import METHODS
    from mgm.models import ARTransformer, Condition

    torch.manual_seed(0)
    size = dict(vocab_size=64, max_length=16, dim=32, depth=1) if small else dict(vocab_size=8192, max_length=256,
                                                                                 dim=1024, depth=24)  # fmt: skip
    model = ARTransformer(**size, num_heads=2 if small else 16, num_classes=10).to(device).eval()
    length = size["max_length"]
    rows = []
    for method, options in (("ar", {}), ("sjd", {"window": 16}), ("sjd", {"window": 8})):
        for batch in batches:
            cond = Condition(labels=torch.arange(batch, device=device) % 10)
            result = {}

            def decode(method=method, options=options, cond=cond, batch=batch, result=result):
                generator = torch.Generator(device).manual_seed(0)
                result["r"] = METHODS[method].decode(model, length, batch_size=batch, cond=cond, generator=generator,
                                                     **options)  # fmt: skip

            ms = statistics.median(time_runs(decode, repeats, warmup=1))
            passes = float(result["r"].passes_per_sample().double().mean())
            name = method + "".join(f", {k} {v}" for k, v in options.items())
            rows.append({"method": name, "batch": batch, "ms_per_sample": ms / batch, "passes_per_sample": passes,
                         "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


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
    parser.add_argument("--decoders", action="store_true", help="also time the decoders side by side")
    parser.add_argument("--no-training", dest="training", action="store_false", help="skip the training sweep")
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
    for batch in args.batch_sizes if args.training else []:
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
    if args.decoders:
        small = args.shape == "tiny"
        report["decoders"] = decoder_rows(shape, device, 3, (1, 2) if small else (1, 32), compile)
        report["ar"] = ar_rows(device, 3, small, (1, 2) if small else (1, 16))
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
    for key, title in (("decoders", "masked decoders"), ("ar", "AR against batched SJD")):
        if key in report:
            lines += ["", f"{title} (random weights):", "", "| method | batch | ms / sample | passes |",
                      "| --- | --- | --- | --- |"]  # fmt: skip
            for r in report[key]:
                passes = r.get("passes_per_sample", r.get("nfe"))
                lines.append(f"| {r['method']} | {r['batch']} | {r['ms_per_sample']:.2f} | {passes:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
