"""What PIP costs in training: one optimiser step on the official NAFNet, plain or with PIP.

Configurations, each a real training step (forward, L1 loss, backward, AdamW step) on a batch
of 8 random 128² patches: the plain network fine-tuned in full; NAFNet + PIP with only the
adapter trained (backbone frozen); NAFNet + PIP trained in full; the last two also with the
units recomputed in the backward pass (``recompute_units``: activation checkpointing, on by
default in ``Trainer`` for adapter training) and with the paper design of the unit; and the
adapter as the recipe trains it on a pretrained backbone (the full units at every stage, each
degradation's own rank-``ADAPTER_FFN_RANK`` feed-forward update, units recomputed). The other
configurations with PIP take ``inject_pip``'s defaults (NAFNet's preset). Time: best
of several steps per configuration, all configurations interleaved in one process. Memory:
peak of one step above the memory before it (weights, gradients and optimiser state already
allocated by a warm-up step), in a fresh process (CPU: Linux's VmHWM; CUDA: peak allocated).
The page also shows the operators of the step (benchmarks/step_operators.py's counts).

Run:  python benchmarks/training_cost.py [--device cpu|cuda] [--threads 2] [--repeats 3]
      python benchmarks/training_cost.py --device cuda --page (re-render from the JSON)
Writes docs/benchmarks/training_cost[_DEVICE].md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import describe_machine
from timing import interleaved_rounds, synchronizer

import pip_adapter as pa
from pip_adapter.backbones import Size, build_backbone
from pip_adapter.recipes import ADAPTER_FFN_RANK, default_pip

ROOT = Path(__file__).resolve().parents[1]
# label -> (PIP design or None for the plain network, adapter only, units recomputed in the
# backward pass: PIPModel.recompute_units, which Trainer turns on for adapter training, and
# whether the units are the recipe's adapter default: each degradation's own
# rank-ADAPTER_FFN_RANK update of the full units at every stage (recipes.default_pip), where
# inject_pip's default shares the feed-forwards and takes the preset's unit sizes)
ADAPTER_DEFAULT = (
    f"+ PIP, rank-{ADAPTER_FFN_RANK} updates (the recipe's adapter default), adapter only, "
    "`recompute_units`"
)
CONFIGS: dict[str, tuple[str | None, bool, bool, bool]] = {
    "plain NAFNet, full fine-tuning": (None, False, False, False),
    "+ PIP, adapter only": ("compact", True, False, False),
    "+ PIP, adapter only, `recompute_units`": ("compact", True, True, False),
    ADAPTER_DEFAULT: ("compact", True, True, True),
    "+ PIP, full": ("compact", False, False, False),
    "+ PIP, full, `recompute_units`": ("compact", False, True, False),
    "+ PIP (paper design), adapter only": ("paper", True, False, False),
    "+ PIP (paper design), full": ("paper", False, False, False),
}
PLAIN = "plain NAFNet, full fine-tuning"


class Step:
    """One configuration's model, optimiser and fixed batch; calling it runs one step."""

    def __init__(
        self, label: str, batch: int, patch: int, device: torch.device, size: Size = "official"
    ) -> None:
        design, adapter_only, recompute, recipe = CONFIGS[label]
        torch.manual_seed(0)
        backbone = build_backbone("nafnet", size)
        if design is None:
            self.model = backbone
        elif recipe:  # the recipe's settings for an adapter on a pretrained backbone (any)
            self.model = pa.inject_pip(backbone, default_pip(Path("pretrained.pth"), full=False))
        else:
            self.model = pa.inject_pip(backbone, design=design)
        if adapter_only:
            self.model.freeze_backbone()
        if recompute:
            self.model.recompute_units = True
        self.model.to(device).train()
        self.conditioned = design is not None
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.trainable = sum(p.numel() for p in params)
        self.optimizer = torch.optim.AdamW(params, lr=1e-4)
        generator = torch.Generator().manual_seed(0)
        self.x = torch.rand(batch, 3, patch, patch, generator=generator).to(device)
        self.target = torch.rand(batch, 3, patch, patch, generator=generator).to(device)
        self.ids = (torch.arange(batch) % len(pa.DEFAULT_DEGRADATIONS)).to(device)
        self.device = device

    def __call__(self) -> None:
        """One training step."""
        out = self.model(self.x, degradation=self.ids) if self.conditioned else self.model(self.x)
        loss = F.l1_loss(out, self.target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def _status_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field)))


def step_memory(label: str, args, device: torch.device) -> float:
    """MiB at the peak of one step above the memory before it, after a warm-up step."""
    if device.type == "cuda":
        step = Step(label, args.batch_size, args.patch, device)
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    command = [sys.executable, __file__, "--memory-probe", label, "--threads", str(args.threads)]
    command += ["--batch-size", str(args.batch_size), "--patch", str(args.patch)]
    # a fixed mmap threshold makes glibc return every large tensor to the OS when it is freed
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.split()[-1]) / 1024


def memory_probe(label: str, args) -> None:
    step = Step(label, args.batch_size, args.patch, torch.device("cpu"))
    step()
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
    step()
    print(_status_kib("VmHWM") - before)


def duration(seconds: float) -> str:
    """A step's time: milliseconds below a second (a GPU's steps), else seconds."""
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def render(results: dict) -> str:
    """The page of a run's ``results`` (its times, memory, trainable counts and settings)."""
    run, seconds, memory = results["settings"], results["seconds"], results["step_mib"]
    trainable = results["trainable"]
    plain_s, plain_mib = seconds[PLAIN], memory[PLAIN]
    rows = [
        f"| {label} | {trainable[label] / 1e6:.2f}M | {duration(seconds[label])} "
        f"({seconds[label] / plain_s:.2f}x) | {memory[label]:.0f} MiB "
        f"({memory[label] / plain_mib:.2f}x) |"
        for label in CONFIGS
    ]
    adapter = seconds["+ PIP, adapter only"] / plain_s
    recipe = seconds[ADAPTER_DEFAULT] / plain_s
    full = seconds["+ PIP, full"] / plain_s
    lines = [
        f"# PIP training cost ({run['device'].split(':')[0]})",
        "",
        f"`python benchmarks/training_cost.py --device {run['device']} --threads "
        f"{run['threads']} --repeats {run['repeats']}` — {run['date']}, {run['machine']}.",
        "",
        f"Official NAFNet (width 32, 29.2M parameters), one AdamW step on a batch of "
        f"{run['batch_size']} random {run['patch']}² patches (forward, L1 loss, backward, "
        f"update). Time: the best of {run['repeats']} steps per configuration, configurations "
        "interleaved in one process, after one warm-up step each. Memory: the peak of one step "
        "above the memory held before it (weights, gradients and optimiser state), in a fresh "
        "process.",
        "",
        "| configuration | trained parameters | time per step | step memory |",
        "| --- | ---: | ---: | ---: |",
        *rows,
        "",
        f"- Adapter-only step vs a full fine-tuning step of the plain network: {adapter:.2f}x "
        f"(goal ≤ 1.00x): {'met' if adapter <= 1.0 else '**not met**'}.",
        f"- The same with the recipe's adapter default (the full units, rank-{ADAPTER_FFN_RANK} "
        f"updates, units recomputed as Trainer does): {recipe:.2f}x (goal ≤ 1.00x): "
        f"{'met' if recipe <= 1.0 else '**not met**'}.",
        f"- Full step with PIP vs a plain step: {full:.2f}x (goal ≤ 1.25x): "
        f"{'met' if full <= 1.25 else '**not met**'}.",
    ]
    operators = ROOT / "docs" / "benchmarks" / "step_operators.json"
    if operators.is_file():  # counted on the CPU: the same operators on every device
        import step_operators  # it imports this module's configurations

        counted = json.loads(operators.read_text())
        lines += ["", "## Operators", "", step_operators.describe(counted), ""]
        lines += step_operators.tables(counted)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument(
        "--page", action="store_true", help="re-render the device's page from its JSON at --out"
    )
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe, args)
        return
    device = torch.device(args.device)
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    json_path = args.out / f"training_cost{suffix}.json"
    if args.page:
        page = render(json.loads(json_path.read_text()))
        (args.out / f"training_cost{suffix}.md").write_text(page)
        print(page)
        return
    steps = {label: Step(label, args.batch_size, args.patch, device) for label in CONFIGS}
    for step in steps.values():  # warm-up
        step()
    # each configuration's best of --repeats steps, the configurations interleaved
    timed = interleaved_rounds(steps, 1, args.repeats, synchronize=synchronizer(device))
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    results = {
        "seconds": {label: bests[0] for label, bests in timed.best.items()},
        "step_mib": {label: step_memory(label, args, device) for label in CONFIGS},
        "trainable": {label: step.trainable for label, step in steps.items()},
        "settings": {
            "device": args.device,
            "threads": args.threads,
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "patch": args.patch,
            "date": date.today().isoformat(),
            "machine": machine or describe_machine(args.threads),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    page = render(results)
    (args.out / f"training_cost{suffix}.md").write_text(page)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    print(page)


if __name__ == "__main__":
    main()
