"""The one-line description of the machine that every benchmark's output carries."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


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
