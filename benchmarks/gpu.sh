#!/usr/bin/env bash
# The GPU measurements of BENCHMARKS.md ("on a GPU") in one call, each stage under its own time limit,
# every result file written as it grows. Results and one log go to $OUT (default benchmarks/results/gpu).
# On the lent device machine the wheels it lacks come first (../shared/tools/device-wheels, carried as .whl).
# The scripts run as modules of the `benchmarks` package (python -m benchmarks.X) from the repo root.
set -u
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
log=$out/gpu_log.txt
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-}:$PWD
py=${PYTHON:-python3}
stage() {  # stage SECONDS NAME COMMAND...: run with a limit, log it, go on whatever happens
    local limit=$1 name=$2
    shift 2
    echo "=== $name ($(date +%T), limit ${limit}s)" | tee -a "$log"
    SECONDS=0
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "=== $name: exit $? after ${SECONDS}s" | tee -a "$log"
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv >>"$log" 2>&1
$py -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" >>"$log" 2>&1
stage 60 "GPU tests" $py -m pytest -q -m gpu -p no:cacheprovider tests/decoding/test_speed.py
stage 230 "peers, eager" $py -m benchmarks.decode_speed --device cuda --dtype bfloat16 --cast --batch-sizes 1 32 \
    --repeats 5 --out "$out/decode_speed_cuda.json"
stage 120 "step vs graph" $py -m benchmarks.gpu_step --compile --out "$out/gpu_step.json"
stage 150 "mgm, compile=True" $py -m benchmarks.decode_speed --device cuda --dtype bfloat16 --cast --compile \
    --methods mgm --match maskgit_decode --batch-sizes 1 32 --repeats 5 --out "$out/decode_speed_cuda_compile.json"
stage 300 "training step" $py -m benchmarks.train_speed --batch-sizes 32 64 128 --steps 8 --fsdp \
    --out "$out/train_speed.json" --markdown "$out/train_speed.md"
stage 240 "decoders side by side" $py -m benchmarks.train_speed --no-training --decoders \
    --out "$out/decoders_side_by_side.json" --markdown "$out/decoders_side_by_side.md"
grep -E "^=== |FAILED|passed|failed|Error" "$log" | tail -40
