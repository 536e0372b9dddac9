"""The one-line description of the machine that every benchmark's output carries."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def prepare_device(device: torch.device) -> str:
    """Run matmuls and convolutions in TF32 on a GPU (how the GPU benchmarks measure) and name
    the device for a table's caption."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def describe_machine(threads: int) -> str:
    """CPU model, core count, torch threads and torch version, e.g. for a table's caption."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return f"{cpu} ({os.cpu_count()} cores), {threads} thread(s), torch {torch.__version__}"
