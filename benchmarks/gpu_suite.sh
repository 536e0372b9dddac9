#!/usr/bin/env bash
# Every GPU figure in docs/benchmarks/*_cuda.md, in one go (about 6 minutes on an H100 / H200).
# Usage: bash benchmarks/gpu_suite.sh [OUT_DIR]   (needs the package importable, e.g. PYTHONPATH=.)
set -uo pipefail
out=${1:-docs/benchmarks}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 150 python3 benchmarks/overhead.py --device cuda --repeats 20 --out "$out" || echo "overhead: failed or timed out"
timeout 90 python3 benchmarks/topm_attention.py --device cuda --out "$out" || echo "topm: failed or timed out"
timeout 330 python3 benchmarks/gpu_training.py --device cuda --out "$out" || echo "training: failed or timed out"
