"""The host's work and the memory of one adapter training step, counted on the CPU (issue 12).

On a GPU the adapter's training step at transfer.py's setting is host-bound (the GPU is busy
15-24% of a step, docs/benchmarks/step_profile_cuda.md): its time follows what the host runs
(Python, dispatch, autograd), not the arithmetic. This counts that work, and the memory a step
holds, for transfer.py's network (NAFNet of width 32 with halved blocks, random weights) and
its variants: one step of the library's Trainer (``Trainer._train_step``: forward, loss and
prompt regulariser, backward, clipping, AdamW on the path it takes on a GPU, ``foreach``), after
two warm-up steps, on a fixed batch with every degradation (the counts below).

* Python calls: how many Python-level calls one step makes (cProfile's count);
* instructions (``--instructions``): callgrind's count of one step (two steps counted, every
  variant in turn in one process of its own, one thread) at batch 1, 16², where the arithmetic
  is a small part and what is counted is mostly the host's work per operator and per call;
* memory at transfer.py's GPU setting (batch 8, 64²): parameters, gradients and AdamW state;
  the peak of the C heap in use during one step (glibc's ``mallinfo2``, read after every
  operator) above the heap before the model was built, as the GPU's peak is measured; and the
  bytes saved for the backward pass (``saved_tensors_hooks``).

What this is: counts of the host's work on the adapter's path that do not depend on the
machine's load (they do on the CPU's instruction set, the torch build and the C library). What
it is not: a prediction of the GPU's ratio to full fine-tuning. The CPU counts include the
CPU's own kernels, where a GPU's host only launches them, and see neither the GPU's launch
latency nor its caching allocator; the page shows the GPU's time per step and peak memory of
the same variants (docs/benchmarks/transfer_cuda.json, where measured) beside them, and the
GPU's verdict stays that page's.

Run:  python benchmarks/adapter_step.py [--code LABEL]                 (calls, memory)
      python benchmarks/adapter_step.py --instructions [--code LABEL]  (adds instructions)
Writes docs/benchmarks/adapter_step.md and .json; ``--code LABEL`` records the rows as measured
on other code (a commit, its package first on PYTHONPATH), kept beside the page's code's; each
row records the digest of the library it ran (a row of "this code" on other code is marked).
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import functools
import gc
import json
import os
import pstats
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch
import transfer
from digests import code_digest
from machine import describe_machine, keep_row, page_head
from spandrel.architectures.NAFNet import NAFNet
from timing import count_instructions, instrument_from_here, run_counted
from torch.utils._python_dispatch import TorchDispatchMode

from pip_adapter.files import write_text
from pip_adapter.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
CURRENT = "this code"
FULL = "full_low"
DEFAULT = transfer.ADAPTER_DEFAULT
VARIANTS = (FULL, DEFAULT, f"{DEFAULT}_units_kept", "promptir")
HOST_SIZE = (1, 16)  # batch, patch side: the arithmetic a small share of the count
MEMORY_SIZE = (8, 64)  # transfer.py's GPU setting


class _Batches(torch.utils.data.Dataset):
    """A fixed set of random patches, every degradation in turn (the Trainer's data)."""

    degradations = transfer.TASKS

    def __init__(self, patch: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.pairs = torch.rand(16, 2, 3, patch, patch, generator=generator)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        degraded, clean = self.pairs[index]
        return degraded, clean, index % len(self.degradations)


def trainer_step(
    name: str, batch: int, patch: int, folder: Path
) -> tuple[Trainer, Callable[[], float]]:
    """Variant ``name``'s Trainer after two warm-up steps, and a call that runs one more step
    on the next batch."""
    checkpoint = folder / "nafnet.pth"
    if not checkpoint.is_file():  # a BasicSR file, as transfer.py's pretrained network
        torch.manual_seed(0)
        torch.save({"params": NAFNet(**transfer.PRETRAIN_ARCH).state_dict()}, checkpoint)
    variant = transfer.VARIANTS[name]
    context = transfer.Context(checkpoint, ("noise",))
    args = argparse.Namespace(seed=0, batch_size=batch, device="cpu")
    torch.manual_seed(0)
    trainer: Trainer = transfer.make_trainer(
        variant, variant.build(context), args, 100, None, _Batches(patch)
    )
    for group in trainer.optimizer.param_groups:  # the multi-tensor update, as on a GPU
        group["foreach"] = True
    batches = iter(list(trainer._batches(0, 0)) * 2)
    trainer.model.train()
    for _ in range(2):
        trainer._train_step(*next(batches))
    return trainer, lambda: trainer._train_step(*next(batches))


def python_calls(step: Callable[[], object]) -> int:
    profiler = cProfile.Profile()
    profiler.enable()
    step()
    profiler.disable()
    return sum(calls for _, calls, *_ in pstats.Stats(profiler).stats.values())  # type: ignore[attr-defined]


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class _MallInfo(ctypes.Structure):
    _fields_ = [
        (field, ctypes.c_size_t)
        for field in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo]:
    """glibc's ``mallinfo2``, looked up once (``_in_use`` runs after every operator)."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        raise RuntimeError("the memory counts read glibc's mallinfo2 (glibc 2.33 or later)")
    libc.mallinfo2.restype = _MallInfo
    return libc.mallinfo2


def _in_use() -> int:
    """Bytes the C heap holds in use (glibc's ``mallinfo2``: blocks and mapped regions), where
    torch's CPU tensors live."""
    info = _mallinfo2()()
    return info.uordblks + info.hblkhd


class _Peak(TorchDispatchMode):
    """The most bytes in use above ``start``, read after every operator that runs."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start, self.bytes = start, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.bytes = max(self.bytes, _in_use() - self.start)
        return out


def memory(name: str, folder: Path, size: tuple[int, int] = MEMORY_SIZE) -> dict[str, int]:
    """Bytes of variant ``name``'s state (parameters, gradients, AdamW state), the peak in use
    during one step above the heap before the model was built, and the bytes its forward pass
    saves for the backward pass."""
    batch, patch = size
    gc.collect()
    start = _in_use()
    trainer, step = trainer_step(name, batch, patch, folder)
    model = trainer.model
    state = [t for s in trainer.optimizer.state.values() for t in s.values() if t.dim()]
    with _Peak(start) as peak:
        step()
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    degraded, clean, ids = next(iter(trainer._batches(1, 0)))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        trainer._loss(degraded, clean, ids)
    return {
        "parameters": _bytes(model.parameters()),
        "gradients": _bytes(p for p in model.parameters() if p.requires_grad),
        "optimizer": _bytes(state),
        "peak": peak.bytes,
        "saved": sum(saved.values()),
    }


def child(names: list[str]) -> None:
    """Inside callgrind: the instructions of two steps of each variant, as JSON."""
    torch.set_num_threads(1)
    prefix = os.environ["PIP_CALLGRIND_PREFIX"]
    with tempfile.TemporaryDirectory() as folder:
        steps = {name: trainer_step(name, *HOST_SIZE, Path(folder))[1] for name in names}
        instrument_from_here()
        counts = {
            name: [run_counted(step, prefix) for _ in range(2)] for name, step in steps.items()
        }
    print(json.dumps(counts))


def gpu_record() -> dict:
    """transfer.py's GPU record (its costs and date), or nothing where none is kept."""
    path = OUT / "transfer_cuda.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def ranks_as_on_gpu(counts: dict[str, list[int]], costs: dict[str, dict[str, float]]) -> bool:
    """Whether the instructions order the variants the GPU timed as the GPU's times do."""
    timed = [name for name in VARIANTS if name in counts and name in costs]
    by_count = sorted(timed, key=lambda name: min(counts[name]))
    return by_count == sorted(timed, key=lambda name: costs[name]["seconds_per_step"])


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def _measured_on(code: str, row: dict) -> str:
    """When and on what a row was measured, marked where the page's own row ran other code."""
    earlier = code == CURRENT and row.get("code") != code_digest()[:12]
    mark = " (measured on earlier code)" if earlier else ""
    counted = row.get("instructions_machine", row.get("machine"))
    where = "" if counted == row.get("machine") else f"; instructions counted on {counted}"
    return f"{code}: {row.get('date', '')}, {row.get('machine', '')}{where}{mark}"


def render(results: dict) -> str:
    rows, record = results["rows"], gpu_record()
    gpu = record.get("costs", {})
    codes = sorted(rows, key=lambda code: code == CURRENT)
    label = {name: transfer.VARIANTS[name].label for name in VARIANTS}

    def ratio(value: float, base: float) -> str:
        return f"{value:,.0f} ({value / base:.3f}x)"

    lines = [
        *page_head(
            "The host's work and the memory of one adapter training step (CPU counts)",
            "benchmarks/adapter_step.py",
            1,
        ),
        " ".join((__doc__ or "").split("\n\n")[1].split()),
        "",
        " ".join((__doc__ or "").split("\n\n")[3].split()),
        "",
        "Codes: " + "; ".join(_measured_on(code, rows[code]) for code in codes) + ".",
        "",
        "## Host work per step (batch 1, 16²)",
        "",
        "Python calls: cProfile's count of one step. Instructions: callgrind, the lower of the "
        "two steps counted, every variant in turn in one process (the earlier ones warm the "
        "allocator and oneDNN's caches for the later). GPU: transfer.py's time per step on "
        + (
            f"the GPU of transfer_cuda.md (batch 8, 64²; {record.get('date')}, on the code of "
            "that run)"
            if gpu
            else "no GPU recorded"
        )
        + ", against full fine-tuning's.",
        "",
        "| variant | "
        + " | ".join(f"Python calls ({c}) | instructions ({c})" for c in codes)
        + " | GPU time per step |",
        "| --- | " + " | ".join("---: | ---:" for _ in codes) + " | ---: |",
    ]
    for name in VARIANTS:
        cells = []
        for code in codes:
            calls, counts = rows[code].get("calls", {}), rows[code].get("instructions", {})
            cells.append(ratio(calls[name], calls[FULL]) if name in calls else "")
            cells.append(ratio(min(counts[name]), min(counts[FULL])) if name in counts else "")
        seconds = gpu.get(name, {}).get("seconds_per_step")
        full = gpu.get(FULL, {}).get("seconds_per_step")
        cells.append(f"{seconds:.3f} s ({seconds / full:.2f}x)" if seconds and full else "")
        lines.append(f"| {label[name]} | " + " | ".join(cells) + " |")
    for code in codes:
        counts = rows[code].get("instructions", {})
        if gpu and counts:
            same = ranks_as_on_gpu(counts, gpu)
            lines += [
                "",
                f"The instructions ({code}) rank the variants the GPU timed "
                + ("as that run's times do." if same else "otherwise than that run's times."),
            ]
    lines += [
        "",
        "## Memory of a step (batch 8, 64²: transfer.py's GPU setting)",
        "",
        "State: parameters, gradients and AdamW state. Saved: the bytes the forward pass keeps "
        "for the backward pass (storages, parameters included; a recomputed unit's inputs are "
        "held by reference, outside this count). Peak: the C heap's peak during one step, as "
        "above. GPU: peak training memory on the GPU of transfer_cuda.md, where measured.",
        "",
        "| variant | code | state | saved | peak | peak vs full fine-tuning "
        "| GPU peak vs full fine-tuning |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in VARIANTS:
        for code in codes:
            measured = rows[code].get("memory", {})
            if name not in measured:
                continue
            m = measured[name]
            state = m["parameters"] + m["gradients"] + m["optimizer"]
            peak, full_peak = (gpu.get(n, {}).get("peak_mib") for n in (name, FULL))
            on_gpu = f"{peak / full_peak:.0%}" if peak and full_peak else ""
            lines.append(
                f"| {label[name]} | {code} | {_mib(state)} | {_mib(m['saved'])} | "
                f"{_mib(m['peak'])} | {m['peak'] / measured[FULL]['peak']:.0%} | {on_gpu} |"
            )
    lines += [
        "",
        "A proxy of the GPU's memory, which decides nothing: the CUDA caching allocator rounds "
        "and keeps blocks, and the GPU's kernels take workspaces of their own. "
        "`recompute_units` stays on by default; the GPU decides with "
        "`benchmarks/gpu_transfer.sh`, which probes the units kept "
        f"(`{DEFAULT}_units_kept`) first, beside the default and full fine-tuning.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--instructions",
        action="store_true",
        help="count the instructions (callgrind) and add them to the code's row",
    )
    what.add_argument("--page", action="store_true", help="re-render from the JSON")
    parser.add_argument("--code", default=CURRENT, help="label of the code measured")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    json_path = args.out / "adapter_step.json"
    if args.page and not json_path.is_file():
        parser.error(f"no record {json_path} to render: measure first (without --page)")
    row: dict = {"code": code_digest()[:12]}
    if args.instructions:  # added to a row of the same code only, with the machine they ran on
        kept = json.loads(json_path.read_text())["rows"] if json_path.is_file() else {}
        if kept.get(args.code, row)["code"] != row["code"]:
            parser.error(
                f"row {args.code!r} was measured on code {kept[args.code]['code']}, this code is "
                f"{row['code']}: name another --code"
            )
        row["instructions"] = count_instructions([__file__, "--child", *VARIANTS], warm_start=True)
        row["instructions_machine"] = describe_machine(1)
    elif not args.page:
        torch.set_num_threads(1)
        row |= {"date": date.today().isoformat(), "machine": describe_machine(1)}
        with tempfile.TemporaryDirectory() as folder:
            row["calls"] = {
                name: python_calls(trainer_step(name, *HOST_SIZE, Path(folder))[1])
                for name in VARIANTS
            }
            row["memory"] = {name: memory(name, Path(folder)) for name in VARIANTS}
    if args.page:
        results = json.loads(json_path.read_text())
    else:
        results = keep_row(json_path, args.code, row)
    page = render(results)
    write_text(args.out / "adapter_step.md", page)
    print(page)


if __name__ == "__main__":
    sys.exit(main())
