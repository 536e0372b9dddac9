"""Where the time of a training step of NAFNet + PIP goes: per unit, per backward node, per kernel.

On an H200 the full training step with PIP took 1.47x a plain step (issue 14, goal 1.25x) while
it runs 1.22x the operators (step_operators.md): the operator count does not explain it, so
some of the units' kernels must be slow for their size, or the device waits for the host. This
profiles the step of training_cost.py (official NAFNet, L1 loss, AdamW, a batch of random
patches), plain and with PIP, with torch.profiler:

* the step: wall time per step (timed without the profiler, synchronised) and the device's busy
  time (the sum of its kernels) in the forward pass, the backward pass and the optimiser's
  update; a busy share well below 1 means the device waits for the host's launches;
* per unit: time and kernels of its forward operators and of the backward nodes its forward
  recorded (matched by sequence number, as step_operators.py matches them);
* per kind of backward node: time and count in the backbone and in the units;
* the units' kernels by name, with their mean duration: a kernel slow for its size shows.

On a GPU a kernel's time is its duration on the device (CUDA activities). On the CPU, which
runs no kernels, each operator stands for one and its time is its CPU time, so the script can
be checked on a CPU at a tiny size (``--backbone-size tiny``). Profiled steps follow warm-up
steps; every figure is per step, averaged over the profiled steps.

Run:  python benchmarks/step_profile.py --device cuda [--batch-size 8] [--patch 128] [--steps 5]
Writes docs/benchmarks/step_profile[_cuda].md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import describe_machine
from overhead import VIEWS, wrapped_units
from timing import seconds_per_call, synchronizer
from torch.autograd import DeviceType
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile
from training_cost import PLAIN, Step

from pip_adapter.files import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
WITH_PIP = "+ PIP, full"
CONFIGS = (PLAIN, WITH_PIP)
PHASES = ("forward", "backward", "optimizer")
NODE = "autograd::engine::evaluate_function: "
TOP = 12  # rows of the node and kernel tables

Kernels = list[tuple[str, float]]  # (name, microseconds) of each kernel run


def _descendants(event) -> Iterable:
    for child in event.cpu_children:
        yield child
        yield from _descendants(child)


def _operators(event) -> list:
    """The aten operators directly under ``event`` (through records that are not operators),
    views and allocations excluded, as step_operators.py counts them."""
    found = []
    for child in event.cpu_children:
        if child.name.startswith("aten::"):
            if child.name not in VIEWS:
                found.append(child)
        else:
            found += _operators(child)
    return found


def _kernels(event, on_device: bool) -> Kernels:
    """What the operators under ``event`` ran: their kernels on a device (those of the
    operators they call included); on the CPU each operator, with its CPU time."""
    operators = _operators(event)
    if not on_device:
        return [(op.name, op.cpu_time_total) for op in operators]
    return [
        (kernel.name, kernel.duration)
        for op in operators
        for e in (op, *_descendants(op))
        for kernel in e.kernels
    ]


def _inside(event, name: str) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name == name:
            return True
        parent = parent.cpu_parent
    return False


def _total(kernels: Kernels, steps: int) -> dict:
    """Milliseconds and kernels per step."""
    return {"ms": sum(us for _, us in kernels) / steps / 1e3, "kernels": len(kernels) / steps}


def tally(events, units: list[str], steps: int, on_device: bool) -> dict:
    """Per step: time and kernels per phase, per unit (forward, backward), per kind of
    backward node (in the backbone, in the units) and, in the units, per kernel name."""
    cpu = [e for e in events if e.device_type == DeviceType.CPU]
    phases: dict[str, Kernels] = {phase: [] for phase in PHASES}
    for scope in (e for e in cpu if e.name in ("forward", "optimizer")):
        phases[scope.name] += _kernels(scope, on_device)
    nodes = {e.id: e for e in cpu if e.name.startswith(NODE)}
    node_kernels = {key: _kernels(node, on_device) for key, node in nodes.items()}
    for kernels in node_kernels.values():
        phases["backward"] += kernels
    per_unit: dict[str, dict[str, Kernels]] = {
        key: {"forward": [], "backward": []} for key in units
    }
    in_units: set[int] = set()
    for scope in (e for e in cpu if e.name.startswith("unit ") and _inside(e, "forward")):
        # (a unit run again in the backward pass, recompute_units, counts in its nodes)
        recorded = {e.sequence_nr for e in _descendants(scope) if e.sequence_nr >= 0}
        unit = per_unit[scope.name.removeprefix("unit ")]
        unit["forward"] += _kernels(scope, on_device)
        for key, node in nodes.items():
            if node.sequence_nr in recorded:
                in_units.add(key)
                unit["backward"] += node_kernels[key]
    kinds: dict[str, dict[str, list[Kernels]]] = defaultdict(lambda: {"backbone": [], "units": []})
    for key, node in nodes.items():
        where = "units" if key in in_units else "backbone"
        kinds[node.name.removeprefix(NODE)][where].append(node_kernels[key])
    by_name: dict[str, Kernels] = defaultdict(list)
    for unit in per_unit.values():
        for name, us in unit["forward"] + unit["backward"]:
            by_name[name].append((name, us))
    return {
        "phases": {phase: _total(kernels, steps) for phase, kernels in phases.items()},
        "units": {
            key: {part: _total(kernels, steps) for part, kernels in parts.items()}
            for key, parts in per_unit.items()
        },
        "nodes": {
            kind: {
                where: {
                    **_total([k for node in found for k in node], steps),
                    "nodes": len(found) / steps,
                }
                for where, found in places.items()
            }
            for kind, places in kinds.items()
        },
        "unit_kernels": {name: _total(kernels, steps) for name, kernels in by_name.items()},
    }


def profile_step(label: str, args, device: torch.device) -> dict:
    """One configuration: wall time per step, then ``tally`` of ``args.steps`` profiled steps."""
    configured = Step(label, args.batch_size, args.patch, device, args.backbone_size)
    model, injected = configured.model, configured.conditioned
    synchronize = synchronizer(device)

    def step() -> None:
        with record_function("forward"):
            x, ids = configured.x, configured.ids
            out = model(x, degradation=ids) if injected else model(x)
            loss = F.l1_loss(out, configured.target)
        configured.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with record_function("optimizer"):
            configured.optimizer.step()

    def scoped(key: str, modulate: Callable) -> Callable:
        def run(*inputs, **kwargs):
            with record_function(f"unit {key}"):
                return modulate(*inputs, **kwargs)

        return run

    wall_ms = seconds_per_call(step, args.warmup, args.steps, synchronize) * 1e3
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    units = list(model.pip_units) if injected else []
    with wrapped_units(model, scoped) if injected else contextlib.nullcontext():
        step()  # the scopes' first step outside the profile
        with profile(activities=activities) as prof:
            for _ in range(args.steps):
                step()
            synchronize()
    on_device = device.type == "cuda"
    print(label, f"{wall_ms:.1f} ms per step", flush=True)
    return {"wall_ms": wall_ms, **tally(prof.events(), units, args.steps, on_device)}


def _busy(result: dict) -> float:
    return sum(phase["ms"] for phase in result["phases"].values())


def _kernel_count(result: dict) -> float:
    return sum(phase["kernels"] for phase in result["phases"].values())


def step_rows(configs: dict, on_device: bool) -> list[str]:
    busy = "device busy" if on_device else "operators' CPU time"
    lines = [
        f"| step | wall time | {busy}: forward / backward / optimiser | busy share | "
        "kernels: forward / backward / optimiser |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, result in configs.items():
        phases = [result["phases"][phase] for phase in PHASES]
        lines.append(
            f"| {label} | {result['wall_ms']:.1f} ms | {_busy(result):.1f} ms ("
            + " / ".join(f"{p['ms']:.1f}" for p in phases)
            + f") | {_busy(result) / result['wall_ms']:.2f} | {_kernel_count(result):.0f} ("
            + " / ".join(f"{p['kernels']:.0f}" for p in phases)
            + ") |"
        )
    plain, pip = configs[PLAIN], configs[WITH_PIP]
    lines.append(
        f"| with PIP / plain | {pip['wall_ms'] / plain['wall_ms']:.3f}x | "
        f"{_busy(pip) / _busy(plain):.3f}x | | {_kernel_count(pip) / _kernel_count(plain):.3f}x |"
    )
    return lines


def unit_rows(result: dict) -> list[str]:
    lines = [
        "| unit | forward | forward kernels | backward | backward kernels | µs per kernel |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    units = {key.replace("/", "."): parts for key, parts in result["units"].items()}
    units["all units"] = {
        part: {
            measure: sum(unit[part][measure] for unit in result["units"].values())
            for measure in ("ms", "kernels")
        }
        for part in ("forward", "backward")
    }
    for key, parts in units.items():
        forward, backward = parts["forward"], parts["backward"]
        kernels = forward["kernels"] + backward["kernels"]
        lines.append(
            f"| {key} | {forward['ms']:.2f} ms | {forward['kernels']:.0f} | "
            f"{backward['ms']:.2f} ms | {backward['kernels']:.0f} | "
            f"{1e3 * (forward['ms'] + backward['ms']) / max(kernels, 1):.1f} |"
        )
    total = units["all units"]
    share = (total["forward"]["ms"] + total["backward"]["ms"]) / _busy(result)
    return [*lines, "", f"The units hold {share:.0%} of the step's busy time with PIP."]


def node_rows(configs: dict) -> list[str]:
    plain, pip = configs[PLAIN]["nodes"], configs[WITH_PIP]["nodes"]
    kinds = sorted(pip, key=lambda kind: -pip[kind]["units"]["ms"])[:TOP]
    lines = [
        "| backward node | plain: ms (nodes) | with PIP, backbone: ms (nodes) | "
        "with PIP, units: ms (nodes) | units: µs per kernel |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]

    def cell(entry: dict | None) -> str:
        return (
            ""
            if entry is None or not entry["nodes"]
            else f"{entry['ms']:.2f} ({entry['nodes']:.0f})"
        )

    for kind in kinds:
        units = pip[kind]["units"]
        per_kernel = 1e3 * units["ms"] / units["kernels"] if units["kernels"] else 0.0
        lines.append(
            f"| {kind} | {cell(plain.get(kind, {}).get('backbone'))} | "
            f"{cell(pip[kind]['backbone'])} | {cell(units)} | {per_kernel:.1f} |"
        )
    return lines


def kernel_rows(result: dict) -> list[str]:
    kernels = result["unit_kernels"]
    names = sorted(kernels, key=lambda name: -kernels[name]["ms"])[:TOP]
    lines = ["| kernel | ms per step | runs | µs each |", "| --- | ---: | ---: | ---: |"]
    for name in names:
        entry = kernels[name]
        shown = name if len(name) <= 90 else name[:87] + "..."
        lines.append(
            f"| `{shown.replace('|', '/')}` | {entry['ms']:.2f} | {entry['kernels']:.0f} | "
            f"{1e3 * entry['ms'] / entry['kernels']:.1f} |"
        )
    return lines


def render(results: dict) -> str:
    run, configs = results["settings"], results["configs"]
    on_device = run["device"] == "cuda"
    kernel = "kernel" if on_device else "operator (standing for a kernel)"
    return (
        "\n".join(
            [
                f"# Where a training step's time goes (NAFNet + PIP, {run['machine']})",
                "",
                f"`{run['command']}` ({run['date']}; {run['backbone_size']} NAFNet, batch "
                f"{run['batch']}, {run['patch']}², L1 loss, AdamW, fp32; {run['steps']} profiled "
                f"steps after {run['warmup']} warm-up steps, figures per step). The step of "
                "[training_cost.md](training_cost.md), profiled with torch.profiler: wall time "
                "timed without the profiler; every other time is the sum of the "
                + (
                    "kernels' durations on the GPU (CUDA activities)"
                    if on_device
                    else "operators' CPU time (no kernels on a CPU: each operator stands for one)"
                )
                + ". Busy share: that sum over the wall time (below 1, the device waits for "
                "the host). Per unit: its forward operators and the backward nodes its forward "
                "recorded; per backward node kind: the nodes of the backbone and of the units; "
                f"per {kernel}: those of the units, forward and backward.",
                "",
                *step_rows(configs, on_device),
                "",
                "## Per unit (with PIP)",
                "",
                *unit_rows(configs[WITH_PIP]),
                "",
                f"## Backward nodes, by the units' time (top {TOP})",
                "",
                *node_rows(configs),
                "",
                f"## The units' {'kernels' if on_device else 'operators'}, by time (top {TOP})",
                "",
                *kernel_rows(configs[WITH_PIP]),
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="profiled (and timed) steps")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--backbone-size", default="official", choices=("official", "small", "tiny")
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error(f"--steps must be >= 1 and --warmup >= 0, got {args.steps}, {args.warmup}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configs = {label: profile_step(label, args, device) for label in CONFIGS}
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else describe_machine(args.threads)
    )
    command = (
        f"python benchmarks/step_profile.py --device {device.type} --batch-size {args.batch_size} "
        f"--patch {args.patch} --steps {args.steps}"
        + ("" if args.backbone_size == "official" else f" --backbone-size {args.backbone_size}")
    )
    results = {
        "settings": {
            "date": date.today().isoformat(),
            "machine": machine,
            "device": device.type,
            "command": command,
            "backbone_size": args.backbone_size,
            "batch": args.batch_size,
            "patch": args.patch,
            "steps": args.steps,
            "warmup": args.warmup,
            "torch": torch.__version__,
        },
        "configs": configs,
    }
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"step_profile{suffix}.json", results)
    page = render(results)
    write_text(args.out / f"step_profile{suffix}.md", page)
    print(page)


if __name__ == "__main__":
    main()
