#!/usr/bin/env bash
# Run the demo with its defaults and keep its table, pictures and timing under docs/.
# Usage: bash benchmarks/demo.sh   (on a quiet machine: the timing is part of the result)
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/demo-benchmark
rm -rf "$out"
start=$(date +%s)
pip-adapter demo --out "$out"
seconds=$(( $(date +%s) - start ))
mkdir -p docs/benchmarks docs/images
{
  echo "# The demo: NAFNet with and without PIP on the bundled photos"
  echo
  echo "\`pip-adapter demo\` (defaults), $(date -u +%Y-%m-%d), $(nproc) CPU cores," \
       "$(python -c 'import torch; print("torch", torch.__version__)'); wall time ${seconds} s" \
       "including start-up. Command: \`bash benchmarks/demo.sh\`."
  echo
  cat "$out/results.md"
  echo
  echo "![comparison](../images/demo_comparison.png)"
  echo
  echo "![interactive control](../images/demo_interactive_control.png)"
  echo
  echo "![training curves](../images/demo_training_curves.png)"
} > docs/benchmarks/demo.md
cp "$out/comparison.png" docs/images/demo_comparison.png
cp "$out/interactive_control.png" docs/images/demo_interactive_control.png
cp "$out/training_curves.png" docs/images/demo_training_curves.png
echo "wrote docs/benchmarks/demo.md"
