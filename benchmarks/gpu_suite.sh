#!/usr/bin/env bash
# Every GPU figure in docs/benchmarks/*_cuda.md, in one go: about 18 minutes on an H100 / H200,
# most important first (issue 14's open questions: compiled NAFNet on the current code, the
# training step and its profile, compiled Restormer and SwinIR; then the rest), each step with
# its own time limit and writing its page as it goes. The latency page is merged into the one
# in docs/ (copied to OUT_DIR first): its rows name their GPU.
# Usage: bash benchmarks/gpu_suite.sh [OUT_DIR] [BUDGET_S]   (needs the package importable, e.g.
# PYTHONPATH=.). BUDGET_S caps the whole run: each step's limit is cut to the seconds left, and a
# step with less than 20 s left is skipped, so a short budget measures the first steps only.
set -uo pipefail
out=${1:-docs/benchmarks}
budget=${2:-100000}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
step() {  # step SECONDS NAME COMMAND...: run within its limit and the budget, report how it ended
  local limit=$1 name=$2 start=$SECONDS left=$((budget - SECONDS))
  shift 2
  if ((left < 20)); then
    echo "== $name: skipped, $left s of the budget left"
    return
  fi
  timeout "$((limit < left ? limit : left))" "$@"
  echo "== $name: exit $? after $((SECONDS - start)) s"
}
latency=(python3 benchmarks/gpu_latency.py --device cuda --out "$out")
# the latency page's rows so far (each names its GPU): this run's rows replace or join them
if [ ! -e "$out/gpu_latency_cuda.json" ]; then
  cp docs/benchmarks/gpu_latency_cuda.json "$out/"
fi
# NAFNet compiled (reduce-overhead, fp32) at 256², the current code: about a minute of compiling
step 100 compile-nafnet "${latency[@]}" --merge --backbones nafnet --sizes 256 --modes compile
# one training step: plain / adapter only / full (each also with recompute_units), compact and
# paper designs, with peak memory
step 80 training-cost python3 benchmarks/training_cost.py --device cuda --repeats 10 --out "$out"
# where the full step's time goes, plain and with PIP: kernel time per unit, per backward node
# kind and per kernel (about 40 s)
step 90 step-profile python3 benchmarks/step_profile.py --device cuda --out "$out"
# Restormer and SwinIR compiled at 256², one backbone per step (a step cut short keeps the rows
# measured before it)
for name in restormer swinir; do
  step 200 "compile-$name" "${latency[@]}" --merge --backbones "$name" --compile-backbones \
    "$name" --sizes 256 --modes compile
done
# latency at batch 1, 256² (the goal): eager, CUDA graphs fp32 / bf16
step 90 latency-256 "${latency[@]}" --merge --sizes 256 --modes eager,cudagraph,cudagraph-bf16
# the same modes at 128², then bf16 autocast without graphs
step 60 latency-128 "${latency[@]}" --merge --sizes 128 --modes eager,cudagraph,cudagraph-bf16
step 60 latency-bf16 "${latency[@]}" --merge --sizes 128,256 --modes eager-bf16
# the default-preset overhead table, the NAFNet designs tried, operators per unit
step 120 overhead python3 benchmarks/overhead.py --device cuda --rounds 4 --repeats 5 --out "$out"
# training throughput, Restormer and NAFNet (fp32, bf16); the compiled step is left out: it
# recompiles spandrel's NAFNet per dtype and took more than the 120 s on an H100
step 120 training python3 benchmarks/gpu_training.py --device cuda --backbones restormer,nafnet \
  --compile-backbones none --skip-trainer --out "$out"
