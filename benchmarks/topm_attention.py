"""Top-m sparse channel attention: fast single-matmul form vs the naive four-topk form.

Run:  python benchmarks/topm_attention.py [--threads 1] [--device cpu]
Writes docs/benchmarks/topm_attention.md (the table printed here).
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import date
from pathlib import Path

import torch
from torch.utils.benchmark import Timer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from reference import naive_topm  # noqa: E402

from pip_adapter.functional import DEFAULT_TOPM_RATIOS, topm_channel_attention  # noqa: E402

SHAPES = [  # (batch, heads, channels per head, pixels)
    (1, 4, 64, 128 * 128),
    (1, 1, 48, 128 * 128),
    (4, 2, 32, 64 * 64),
    (8, 8, 16, 32 * 32),
]


def _time(fn, device: torch.device) -> float:
    """Median seconds per call, from torch.utils.benchmark's adaptive measurement."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    return Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=1.0).median


def measure(shape: tuple[int, int, int, int], device: torch.device, dtype: torch.dtype) -> dict:
    q, k, v = (
        torch.randn(*shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3)
    )
    temperature = torch.ones(shape[1], 1, 1, device=device, requires_grad=True)
    weights = torch.full((4,), 0.2, device=device, requires_grad=True)
    args = (q, k, v, temperature, DEFAULT_TOPM_RATIOS, weights)

    def forward(f):
        def run():
            with torch.no_grad():
                f(*args)

        return run

    def training(f):
        return lambda: f(*args).sum().backward()

    row = {}
    for mode, wrap in (("forward", forward), ("forward+backward", training)):
        naive = _time(wrap(naive_topm), device)
        fast = _time(wrap(topm_channel_attention), device)
        row[mode] = (naive, fast)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {args.threads} thread(s)"
    )
    lines = [
        f"Top-m channel attention, fast vs naive, float32, {machine}, torch {torch.__version__}, "
        f"{date.today()}.",
        "Command: `python benchmarks/topm_attention.py "
        f"--threads {args.threads} --device {args.device}`",
        "",
        "| B×heads×c×N | mode | naive (ms) | fast (ms) | speed-up |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for shape in SHAPES:
        for mode, (naive, fast) in measure(shape, device, torch.float32).items():
            lines.append(
                f"| {'×'.join(map(str, shape))} | {mode} | {naive * 1e3:.2f} | {fast * 1e3:.2f} "
                f"| {naive / fast:.2f}x |"
            )
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    target = args.out / f"topm_attention{suffix}.md"
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
