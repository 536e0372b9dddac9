"""Deployment cost: onnxruntime vs PyTorch eager (and torch.compile) on the official NAFNet + PIP.

The official NAFNet configuration (width 32, SIDD) with PIP injected by the default preset, its
units randomised as after training (they start as the identity), exported with
``pip_adapter.export`` (weights as an input). For 256² and 512² inputs, batch 1, one CPU thread:
the forward time of PyTorch eager, ``torch.compile`` (inductor, static shapes; its compile
time reported apart) and onnxruntime on the exported file, the largest difference of each from
eager, and the files' sizes and export times.

Run:  python benchmarks/export.py [--rounds 5] [--no-compile]
The backends' CPU times are taken in turns within each round (best of the rounds), so that a
busy machine slows them alike. Writes docs/benchmarks/export.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine
from timing import interleaved_rounds

import pip_adapter as pa
from pip_adapter import export
from pip_adapter.backbones import build_backbone
from pip_adapter.onnx_graph import OnnxGraph

ROOT = Path(__file__).resolve().parents[1]
SIZES = (256, 512)


def build_model() -> pa.PIPModel:
    torch.manual_seed(0)
    model = pa.inject_pip(build_backbone("nafnet", "official")).eval()
    with torch.no_grad():  # trained units are not the identity they start as
        for param in model.pip_units.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return model


def timed(action: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def measure(
    model: pa.PIPModel, graph: OnnxGraph, size: int, rounds: int, compile_too: bool
) -> dict[str, float]:
    """Times (seconds) and largest differences from eager at one input size."""
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    weights = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    row: dict[str, float] = {"size": size}
    with torch.inference_mode():
        expected = model(x, degradation=weights)  # also the eager warm-up
        runners: dict[str, Callable[[], object]] = {
            "eager": lambda: model(x, degradation=weights),
            "onnx": lambda: graph(x.numpy(), weights.numpy()),
        }
        got = graph(x.numpy(), weights.numpy())[0]  # warm-up (onnxruntime's first-run planning)
        row["onnx_error"] = float(np.abs(got - expected.numpy()).max())
        if compile_too:
            compiled = torch.compile(model, dynamic=False)
            out, row["compile_first"] = timed(lambda: compiled(x, weights))
            row["compile_error"] = float((out - expected).abs().max())
            runners["compile"] = lambda: compiled(x, weights)
        # CPU time: unlike the wall-clock time, it leaves out the time other processes hold
        # the cores; the order rotates each round so that no backend always follows another
        measured = interleaved_rounds(runners, rounds, 1, clock=time.process_time, rotate=True)
        row |= {name: min(bests) for name, bests in measured.best.items()}
    print(row, file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per size (5)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = build_model()
    folder = Path(tempfile.mkdtemp(prefix="pip-export-"))
    onnx_path, onnx_seconds = timed(lambda: export.to_onnx(model, folder / "nafnet.onnx"))
    _, pt2_seconds = timed(lambda: export.to_torch_export(model, folder / "nafnet.pt2"))
    graph = OnnxGraph(onnx_path, threads=1)
    rows = [measure(model, graph, size, args.rounds, not args.no_compile) for size in SIZES]
    model.save_adapter(folder / "adapter")
    sizes = {
        "onnx": os.path.getsize(onnx_path),
        "pt2": os.path.getsize(folder / "nafnet.pt2"),
        "adapter": os.path.getsize(folder / "adapter" / "adapter.safetensors"),
    }
    write_page(args, rows, sizes, onnx_seconds, pt2_seconds, model)


def write_page(args, rows, sizes, onnx_seconds, pt2_seconds, model) -> None:
    parameters = sum(p.numel() for p in model.parameters())
    command = "python benchmarks/export.py" + (" --no-compile" if args.no_compile else "")
    if args.rounds != 5:
        command += f" --rounds {args.rounds}"
    lines = [
        "# Export: onnxruntime vs PyTorch on a CPU",
        "",
        f"{describe_machine(1)}; onnxruntime {_ort_version()}; "
        f"{date.today()}. Command: `{command}`. Official NAFNet (width 32) + PIP (default "
        f"preset, {parameters / 1e6:.2f}M parameters), exported with weights as an input; "
        f"batch 1, one thread. Times are CPU time of the forward pass (`time.process_time`), the "
        f"best of {args.rounds} rounds after a warm-up. The machine was shared (other jobs "
        "running on its 2 cores, under the `slot` scheduler), so the backends take turns in one "
        "process, round after round, and CPU time rather than wall-clock time is reported: "
        "contention for caches and memory bandwidth still slows every backend, so absolute "
        "times on a quiet machine may be lower. Compile and export times are wall-clock. The "
        "error columns are the largest absolute difference from PyTorch eager (images in "
        "[0, 1]).",
        "",
        "| input | PyTorch eager (CPU time) | onnxruntime | speed-up | ONNX error |"
        + (" torch.compile | compile error | first call (compiling) |" if "compile" in rows[0]
           else ""),
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: | ---: | ---: |" if "compile" in rows[0]
                                                   else ""),
    ]  # fmt: skip
    for row in rows:
        line = (
            f"| {row['size']}² | {row['eager'] * 1e3:.0f} ms | {row['onnx'] * 1e3:.0f} ms | "
            f"{row['eager'] / row['onnx']:.2f}x | {row['onnx_error']:.1e} |"
        )
        if "compile" in row:
            line += (
                f" {row['compile'] * 1e3:.0f} ms ({row['eager'] / row['compile']:.2f}x) | "
                f"{row['compile_error']:.1e} | {row['compile_first']:.0f} s |"
            )
        lines.append(line)
    lines += [
        "",
        "| file | size | export time (incl. the check on 3 sizes) |",
        "| --- | ---: | ---: |",
        f"| ONNX (`pip-adapter export --format onnx`) | {sizes['onnx'] / 2**20:.1f} MiB | "
        f"{onnx_seconds:.0f} s |",
        f"| torch.export (`--format pt2`) | {sizes['pt2'] / 2**20:.1f} MiB | {pt2_seconds:.0f} s |",
        f"| the adapter alone (`adapter.safetensors`) | {sizes['adapter'] / 2**20:.1f} MiB | |",
        "",
    ]
    out = ROOT / "docs" / "benchmarks" / "export.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    main()
