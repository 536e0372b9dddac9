#!/usr/bin/env bash
# The GPU transfer page (docs/benchmarks/transfer_cuda.md, issue 12) completed on a lent GPU in
# one command of about 7 minutes: the variants of the committed GPU record that did not finish
# (a training seed cut at the deadline) train, and the cost probes run again for the adapter
# default with and without recomputing its units beside full fine-tuning (the time-per-step
# goal), plus those the last run left out. Everything the last run finished is reused.
# Usage: bash benchmarks/gpu_transfer.sh OUT_DIR [DEADLINE_S]   (PYTHONPATH=. or the package
# installed; peft installed). It needs runs/transfer_cuda: the last GPU run's runs folder (each
# variant's result.json and cost.json; no weights, no checkpoint), carried to the machine. The
# pretrained network is trained again (about 100 s; deterministic on one GPU model and torch)
# and evaluated again: the script checks that it is the network the reused results started
# from, and else puts no page in OUT_DIR. OUT_DIR receives the page, its record (to be copied
# to docs/benchmarks/transfer_cuda.json), the log and the runs folder's small files.
set -euo pipefail
out=${1:?usage: bash benchmarks/gpu_transfer.sh OUT_DIR [DEADLINE_S]}
deadline=${2:-440}
runs=runs/transfer_cuda
committed=docs/benchmarks/transfer_cuda.json
if [ ! -f "$runs/pretrained/result.json" ]; then
  echo "$runs/pretrained/result.json is missing: carry the last GPU run's runs folder" >&2
  exit 2
fi
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# the pretrained network is evaluated again, to compare with the run whose results are reused
rm "$runs/pretrained/result.json"
# first in the order, so probed first: the adapter default with its units kept and recomputed,
# and full fine-tuning, all three probed in this session (the time-per-step goal)
first=pip_ffn_rank64_units_kept,pip_ffn_rank64,full_low
for name in ${first//,/ }; do
  rm -f "$runs/$name/cost.json"
done
variants=$(python3 -c "
import json, sys
first = sys.argv[2].split(',')
named = json.load(open(sys.argv[1]))['variants']
print(','.join(first + [name for name in named if name not in first]))
" "$committed" "$first")
python3 benchmarks/transfer.py --device cuda --jobs 4 --deadline "$deadline" --variants "$variants" \
  2>&1 | tee "$out/transfer_cuda.log"
tar -czf "$out/runs.tar.gz" --exclude='*.safetensors' --exclude='*.pth' --exclude='*.png' \
  --exclude='lora' --exclude='adapter' "$runs"
python3 - "$committed" "$runs/record.json" <<'CHECK'
import json, sys

sys.path.insert(0, "benchmarks")
from transfer import same_network

earlier, now = (json.load(open(path)) for path in sys.argv[1:])
if not same_network(earlier, now):
    sys.exit("DIFFERENT pretrained network: the reused results do not compare; no page")
print("same pretrained network as the reused results (evaluation equal to the last bit)")
CHECK
cp "$runs/record.json" "$out/transfer_cuda.json"
cp docs/benchmarks/transfer_cuda.md "$out/"
