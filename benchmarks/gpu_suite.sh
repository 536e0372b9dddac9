#!/usr/bin/env bash
# Every GPU figure in docs/benchmarks/*_cuda.md, in one go: about 7 minutes on an H100 / H200,
# most important first, each step with its own time limit and writing its page as it goes.
# Usage: bash benchmarks/gpu_suite.sh [OUT_DIR]   (needs the package importable, e.g. PYTHONPATH=.)
set -uo pipefail
out=${1:-docs/benchmarks}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
step() {  # step SECONDS NAME COMMAND...: run with a time limit, report how it ended
  local limit=$1 name=$2 start=$SECONDS
  shift 2
  timeout "$limit" "$@"
  echo "== $name: exit $? after $((SECONDS - start)) s"
}
# latency at batch 1: eager fp32 / bf16, CUDA graphs fp32 / bf16, compiled (NAFNet)
step 240 latency python3 benchmarks/gpu_latency.py --device cuda --sizes 128,256 \
  --modes eager,eager-bf16,cudagraph,cudagraph-bf16,compile --out "$out"
# the default-preset overhead table, the NAFNet designs tried, operators per unit
step 120 overhead python3 benchmarks/overhead.py --device cuda --rounds 4 --repeats 5 --out "$out"
# one training step: plain / adapter only / full, compact and paper designs, with peak memory
step 60 training-cost python3 benchmarks/training_cost.py --device cuda --repeats 10 --out "$out"
# training throughput, Restormer and NAFNet (fp32, bf16); the compiled step is left out: it
# recompiles spandrel's NAFNet per dtype and took more than the 120 s on an H100
step 120 training python3 benchmarks/gpu_training.py --device cuda --backbones restormer,nafnet \
  --compile-backbones none --skip-trainer --out "$out"
