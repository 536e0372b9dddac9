"""How many operators a training step of NAFNet + PIP runs, forward and backward, per unit.

On a GPU at batch 8, 128² the full training step is launch-bound (issue 14: 1.47x the plain
step on an H200, goal 1.25x): what it costs is mostly how many operators autograd runs, each
at least one kernel, not their arithmetic. This counts them on the CPU (torch.profiler) for the
same step as benchmarks/training_cost.py (official NAFNet, L1 loss, batch of random patches):

* forward: the aten operators the step's forward pass calls (those not called by another
  operator), aliasing views and bare allocations excluded;
* backward: the aten operators autograd runs for the nodes the forward recorded (each node's
  own, gradient accumulation included), counted the same way;
* per unit: the forward operators inside each unit's ``modulate`` and the backward operators
  of the nodes those recorded (matched by the nodes' sequence numbers).

The optimiser's update is left out (its count depends on the optimiser's implementation, not on
the network). Counts do not depend on the machine's speed or load, so no quiet window is needed.

Run:  python benchmarks/step_operators.py [--batch-size 8] [--patch 128] [--code LABEL]
Writes docs/benchmarks/step_operators.md and .json. ``--code LABEL`` records the rows as
measured on other code (e.g. a commit, its package first on PYTHONPATH), kept beside the rows
of the page's code for a before / after comparison.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import keep_row
from overhead import VIEWS, units_of, wrapped_units
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile
from training_cost import CONFIGS, PLAIN, Step

from pip_adapter.backbones import Size

ROOT = Path(__file__).resolve().parents[1]
UNITS_OF = "+ PIP, full"  # the configuration whose units are counted one by one
CURRENT = "this code"
PARTS = ("forward", "backward", "total")


def _kernels(event) -> list[str]:
    """The aten operators directly under ``event`` (through records that are not operators),
    views and allocations excluded."""
    found = []
    for child in event.cpu_children:
        if child.name.startswith("aten::"):
            if child.name not in VIEWS:
                found.append(child.name)
        else:
            found += _kernels(child)
    return found


def _descendants(event) -> Iterable:
    for child in event.cpu_children:
        yield child
        yield from _descendants(child)


def count_step(label: str, batch: int, patch: int, size: Size = "official") -> dict:
    """One step of configuration ``label`` (after a warm-up step), profiled: operators of the
    forward pass (loss included) and of the backward pass, in all and per unit."""
    configured = Step(label, batch, patch, torch.device("cpu"), size)
    model, injected = configured.model, configured.conditioned

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with record_function("forward"):
            x, ids = configured.x, configured.ids
            out = model(x, degradation=ids) if injected else model(x)
            loss = F.l1_loss(out, configured.target)
        loss.backward()

    def scoped(key: str, modulate: Callable) -> Callable:
        def run(*args, **kwargs):
            with record_function(f"unit {key}"):
                return modulate(*args, **kwargs)

        return run

    units = model.pip_units if injected else {}
    with wrapped_units(model, scoped) if injected else contextlib.nullcontext():
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
    events = prof.events()
    forward = next(e for e in events if e.name == "forward")
    nodes = [e for e in events if e.name.startswith("autograd::engine::evaluate_function")]
    counts: dict = {
        "forward": len(_kernels(forward)),
        "backward": sum(len(_kernels(node)) for node in nodes),
        "units": {},
    }
    if injected:
        counts["units_text"] = units_of(model)["units_text"]
    for key in units:
        # the unit's forward scope (with recompute_units it runs again in the backward pass)
        scope = min(
            (e for e in events if e.name == f"unit {key}"), key=lambda e: e.time_range.start
        )
        recorded = {e.sequence_nr for e in _descendants(scope) if e.sequence_nr >= 0}
        counts["units"][key] = {
            "forward": len(_kernels(scope)),
            "backward": sum(len(_kernels(n)) for n in nodes if n.sequence_nr in recorded),
        }
    return counts


def tables(results: dict) -> list[str]:
    """The step table (forward, backward and their sum against the plain step's, per code
    measured: the page's code last) and the per-unit table, as markdown lines."""
    rows = results["rows"]
    codes = sorted(rows, key=lambda code: code == CURRENT)
    header = " | ".join(f"{part} ({code})" for code in codes for part in PARTS)
    lines = [f"| step | {header} |", "| --- |" + " ---: |" * (len(PARTS) * len(codes))]
    for label in CONFIGS:
        cells = []
        for code in codes:
            steps = rows[code]["steps"]
            if label not in steps:  # a configuration added after that code was counted
                cells += ["", "", ""]
                continue
            step, plain = steps[label], steps[PLAIN]
            total, plain_total = sum(step.values()), sum(plain.values())
            cells += [str(step["forward"]), str(step["backward"])]
            cells.append(f"{total} ({total / plain_total:.3f}x)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"| unit ({UNITS_OF}) | {header} |",
        "| --- |" + " ---: |" * (len(PARTS) * len(codes)),
    ]
    for key in rows[codes[-1]]["units"]:
        cells = []
        for code in codes:
            unit = rows[code]["units"][key]
            cells += [str(unit["forward"]), str(unit["backward"]), str(sum(unit.values()))]
        lines.append(f"| {key.replace('/', '.')} | " + " | ".join(cells) + " |")
    return lines


def describe(results: dict) -> str:
    """What the tables count and which runs measured them."""
    rows = results["rows"]
    runs = "; ".join(
        f"{code}: {row['date']}, torch {row['torch']}, batch {row['batch']}, {row['patch']}², "
        f"{UNITS_OF}: {row.get('units_text', 'its units not recorded')}"
        for code, row in rows.items()
    )
    return (
        "Operators of one training step (`python benchmarks/step_operators.py`; a column "
        "marked with a commit: `--code COMMIT`, run with that commit's package first on "
        f"PYTHONPATH; {runs}): the training step, profiled on the CPU (torch.profiler) after a "
        "warm-up step. Forward: the aten operators of the forward pass (loss included); "
        "backward: those autograd runs for the nodes it recorded (gradient accumulation "
        "included); aliasing views and bare allocations excluded, the optimiser's update not "
        "counted; per unit: the forward operators inside the unit and the backward operators "
        "of the nodes it recorded. On a GPU each is at least one kernel launch, which on the "
        "units' small tensors (the prompt's grid: 8×8 in NAFNet's preset since 58cc416, 16×16 "
        "before) can cost more than the kernel's arithmetic. The counts do not depend on the "
        "machine or its load."
    )


def render(results: dict) -> str:
    return (
        "\n".join(
            [
                "# Operators of one training step (NAFNet + PIP)",
                "",
                "The step of [training_cost.md](training_cost.md): official NAFNet, L1 loss, "
                "the default preset of each column's code (its units: below). " + describe(results),
                "",
                *tables(results),
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--code", default=CURRENT, help="label of the code measured (default: the page's code)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = {label: count_step(label, args.batch_size, args.patch) for label in CONFIGS}
    row = {
        "date": date.today().isoformat(),
        "torch": torch.__version__,
        "batch": args.batch_size,
        "patch": args.patch,
        "steps": {label: {k: v[k] for k in ("forward", "backward")} for label, v in steps.items()},
        "units": steps[UNITS_OF]["units"],
        "units_text": steps[UNITS_OF]["units_text"],
    }
    results = keep_row(args.out / "step_operators.json", args.code, row)
    page = render(results)
    (args.out / "step_operators.md").write_text(page)
    print(page)


if __name__ == "__main__":
    main()
