"""Write docs/benchmarks.md from the result files the benchmark scripts write.

Each section is a file under docs/benchmarks/, written by the script its first lines name,
with its command, date and machine. Run:  python tools/gen_benchmarks_page.py
(tests/test_docs.py checks that docs/benchmarks.md is current).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTIONS = [  # (file, what it shows)
    (
        "quality.md",
        "Quality at equal budget, and ablations (`benchmarks/quality.py`), last run with NAFNet's"
        " previous default preset (16×16 units at every stage); today's default: the"
        " blur_strength.md section's goals",
    ),
    (
        "transfer.md",
        "Adapter mode: a pretrained network turned all-in-one (`benchmarks/transfer.py`)",
    ),
    (
        "transfer_cuda.md",
        "Adapter mode on a GPU, three training seeds (`benchmarks/transfer.py --device cuda`)",
    ),
    (
        "transfer_quick.md",
        "Adapter mode, the quick fresh check at low fidelity (`benchmarks/transfer.py --quick`)",
    ),
    ("no_harm.md", "Do no harm: the blur failure, the training recipe (`benchmarks/no_harm.py`)"),
    (
        "blur_strength.md",
        "Do no harm: blur's strength per image, no retraining (`benchmarks/blur_strength.py`)",
    ),
    (
        "haze_strength.md",
        "Do no harm: haze's strength, blind mode against the labels "
        "(`benchmarks/haze_strength.py`)",
    ),
    (
        "sensor_haze.md",
        "Do no harm: the sensor on hazy photos, faint haze and soft crops in its training "
        "(`benchmarks/sensor_haze.py`)",
    ),
    (
        "local_pooling.md",
        "Whole photos: local pooling (TLC), no retraining (`benchmarks/local_pooling.py`)",
    ),
    ("grow.md", "Teaching a trained model new degradations (`benchmarks/grow.py`)"),
    ("demo.md", "The demo (`benchmarks/demo.sh`)"),
    ("overhead.md", "What PIP costs on a CPU (`benchmarks/overhead.py`)"),
    ("overhead_cuda.md", "What PIP costs on a GPU (`benchmarks/overhead.py --device cuda`)"),
    ("gpu_latency_cuda.md", "Latency on a GPU, each way to run it (`benchmarks/gpu_latency.py`)"),
    ("training_cost.md", "What PIP costs in training, CPU (`benchmarks/training_cost.py`)"),
    ("training_cost_cuda.md", "What PIP costs in training, GPU (`benchmarks/training_cost.py`)"),
    (
        "step_operators.md",
        "Operators of a training step, per unit (`benchmarks/step_operators.py`)",
    ),
    (
        "step_profile_cuda.md",
        "Where a training step's time goes, GPU (`benchmarks/step_profile.py --device cuda`)",
    ),
    (
        "adapter_step.md",
        "The adapter step's host work and memory, CPU counts (`benchmarks/adapter_step.py`)",
    ),
    ("topm_attention.md", "Top-m attention, fast vs naive, CPU (`benchmarks/topm_attention.py`)"),
    ("topm_attention_cuda.md", "Top-m attention, fast vs naive, GPU"),
    ("gpu_training_cuda.md", "Training throughput on a GPU (`benchmarks/gpu_training.py`)"),
    ("sensor.md", "Blind mode: the degradation sensor (`benchmarks/sensor_accuracy.py`)"),
    (
        "sensor_tuning.md",
        "Blind mode: choosing the sensor's training recipe (`benchmarks/sensor_tuning.py`)",
    ),
    ("export.md", "Deployment: onnxruntime vs PyTorch on a CPU (`benchmarks/export.py`)"),
]


def render() -> str:
    lines = [
        "# Benchmarks",
        "",
        "Every number below is written by a script in `benchmarks/` (each section names its",
        "command, date and machine); this page is assembled from their outputs by",
        "`python tools/gen_benchmarks_page.py`. Rerun a script to refresh its section.",
        "",
    ]
    for name, title in SECTIONS:
        path = DOCS / "benchmarks" / name
        if not path.is_file():
            continue
        body = path.read_text().strip()
        body = re.sub(r"^# .*\n+", "", body)  # the section title replaces the file's own
        body = re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M)  # one level deeper
        # links were relative to docs/benchmarks/: a sibling page moves down, a parent's up
        body = re.sub(
            r"\]\((?![a-z]+:|/|#|\.\./)([^)/]+\.md(?:#[^)]*)?)\)", r"](benchmarks/\1)", body
        )
        body = body.replace("](../", "](")
        lines += [
            f"## {title}",
            "",
            f"Source: [benchmarks/{name}](benchmarks/{name})",
            "",
            body,
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    # no options: argparse answers --help (and refuses anything else) before the page is written
    argparse.ArgumentParser(description=__doc__).parse_args()
    page = DOCS / "benchmarks.md"
    page.write_text(render())
    print(f"wrote {page}", file=sys.stderr)
