"""What the benchmarks share: the one-line description of the machine that every output
carries, the command line of the scripts that compare named variants or recipes, and the word a
page gives a goal."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Collection
from datetime import date
from pathlib import Path

import torch

from pip_adapter.files import write_json


def prepare_device(device: torch.device) -> str:
    """Run matmuls and convolutions in TF32 on a GPU (how the GPU benchmarks measure) and name
    the device for a table's caption."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def cpu_name() -> str:
    """The CPU model, e.g. "AMD EPYC"."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe_machine(threads: int) -> str:
    """CPU model, core count, torch threads and torch version, e.g. for a table's caption."""
    return f"{cpu_name()} ({os.cpu_count()} cores), {threads} thread(s), torch {torch.__version__}"


def page_head(title: str, script: str, threads: int, detail: str = "") -> list[str]:
    """A page's first lines: its title, then the command that wrote it (``script`` and this
    process's arguments), the date and the machine, then ``detail`` (e.g. "; 40 min of
    training") before the sentence's full stop."""
    command = " ".join(["python", script, *sys.argv[1:]])
    machine = describe_machine(threads)
    return [f"# {title}", "", f"`{command}` — {date.today().isoformat()}, {machine}{detail}.", ""]


def comparison_parser(
    doc: str, option: str, choices: Collection[str], threads: int = 1
) -> argparse.ArgumentParser:
    """A parser for a script that compares named variants: ``--<option>`` (comma-separated names
    from ``choices``, all by default), ``--seed`` and ``--threads``; the script adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        f"--{option}",
        default=",".join(choices),
        help=f"comma-separated, from: {', '.join(choices)}",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=threads, help=f"torch CPU threads ({threads})"
    )
    return parser


def parse_comparison(
    parser: argparse.ArgumentParser, option: str, choices: Collection[str]
) -> tuple[argparse.Namespace, list[str]]:
    """The parsed command line and the names chosen with ``--<option>`` (an unknown one is a
    usage error naming the choices); sets torch's thread count."""
    args = parser.parse_args()
    names = [n.strip() for n in getattr(args, option).split(",") if n.strip()]
    unknown = sorted(set(names) - set(choices))
    if unknown:
        parser.error(f"unknown {option} {unknown}; choose from {', '.join(choices)}")
    torch.set_num_threads(args.threads)
    return args, names


def verdict(ok: bool) -> str:
    """How a page says whether a goal is met."""
    return "met" if ok else "**not met**"


def at_least(value: float, bar: float) -> bool:
    """``value >= bar`` as printed (3 decimals): a page never says "-0.100 dB ... not met"
    for a bar of -0.10 dB."""
    return round(value, 3) >= round(bar, 3)


def keep_row(path: Path, key: str, row: dict) -> dict:
    """The record at ``path`` (``{"rows": {key: row, ...}}``, one row per code measured) with
    ``row``'s fields put into row ``key``, written back; read just before it is written, so a
    run of another code that ended meanwhile keeps its row."""
    record = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    record["rows"][key] = {**record["rows"].get(key, {}), **row}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return record
