"""Training throughput with PIP on a GPU: fp32 vs bf16 autocast vs torch.compile, adapter-only
vs full fine-tuning, on the official NAFNet and Restormer; plus a check that the compiled
model's output equals eager and a short run of the library's Trainer with bf16 AMP.

Run:  python benchmarks/gpu_training.py [--device cuda] [--batch-size 8] [--patch 128]
      [--compile-backbones nafnet,restormer]   (compiling a full-size training step takes
      minutes: by default only NAFNet's is measured)
      python benchmarks/gpu_training.py --device cpu --size tiny --steps 2   (smoke test)
Writes docs/benchmarks/gpu_training[_DEVICE].md.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import prepare_device
from timing import seconds_per_call, synchronizer

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


def throughput(name, size, mode, amp, compiled, args, device) -> float:
    """Training steps per second of one configuration (after warm-up)."""
    torch.manual_seed(0)
    model = pa.inject_pip(build_backbone(name, size)).to(device)
    if mode == "adapter":
        model.freeze_backbone()
    # static shapes: every stage has its own feature size, and automatic dynamic shapes
    # trip an inductor bug in the backward of the units (torch 2.14)
    torch._dynamo.reset()  # each configuration compiles from scratch, within the recompile limit
    network = torch.compile(model, dynamic=False) if compiled else model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    x = torch.rand(args.batch_size, 3, args.patch, args.patch, device=device)
    target = torch.rand_like(x)
    ids = torch.arange(args.batch_size, device=device) % 5

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = network(x, degradation=ids)
        loss = F.l1_loss(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return 1 / seconds_per_call(step, args.warmup, args.steps, synchronizer(device))


def compiled_matches_eager(name, size, device) -> float:
    torch.manual_seed(0)
    model = pa.inject_pip(build_backbone(name, size)).to(device).eval()
    with torch.no_grad():
        for unit in model.pip_units.values():  # leave the identity so the units matter
            for p in unit.parameters():
                p.add_(0.02 * torch.randn_like(p))
        x = torch.rand(2, 3, 96, 96, device=device)
        eager = model(x, degradation=["rain", "haze"])
        torch._dynamo.reset()
        compiled = torch.compile(model, dynamic=False)(x, degradation=["rain", "haze"])
    return (eager - compiled).abs().max().item()


def trainer_with_amp(device, size, steps) -> tuple[float, float]:
    """(seconds per step, final loss) of the library's Trainer with bf16 autocast."""
    torch.manual_seed(0)
    model = pa.inject_pip(build_backbone("nafnet", size)).freeze_backbone()
    data = SyntheticAllInOne(patch_size=128, samples_per_degradation=64)
    config = TrainConfig(
        steps=steps, batch_size=8, amp="bf16", device=str(device), progress=False, log_every=1
    )
    trainer = Trainer(model, data, config)
    start = time.perf_counter()
    trainer.fit()
    seconds = (time.perf_counter() - start) / steps
    x, clean, ids = (
        torch.stack([data[i][k] for i in range(8)])
        if k < 2
        else torch.tensor([data[i][2] for i in range(8)])
        for k in range(3)
    )
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        loss = F.l1_loss(model(x.to(device), degradation=ids.to(device)).float(), clean.to(device))
    return seconds, loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", default="official", choices=("official", "small", "tiny"))
    parser.add_argument("--backbones", default="nafnet,restormer")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--compile-backbones", default="nafnet", help="backbones whose compiled step is measured"
    )
    parser.add_argument("--skip-trainer", action="store_true", help="skip the Trainer checks")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    device = torch.device(args.device)
    machine = prepare_device(device)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"gpu_training_{device.type}.md"
    lines = [
        f"# PIP training throughput ({machine})",
        "",
        f"torch {torch.__version__}; {date.today()}. Command: `python benchmarks/gpu_training.py "
        f"--device {args.device} --size {args.size} --backbones {args.backbones} --batch-size "
        f"{args.batch_size} --patch "
        f"{args.patch} --steps {args.steps} --compile-backbones {args.compile_backbones}`. "
        f"Batch of {args.batch_size} patches of "
        f"{args.patch}², AdamW; steps per second after {args.warmup} warm-up steps; TF32 on.",
        "",
        "| backbone | trained | fp32 | bf16 autocast | bf16 + torch.compile |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name in args.backbones.split(","):
        for mode in ("adapter", "full"):
            cells = []
            for amp, compiled in ((False, False), (True, False), (True, True)):
                if compiled and name not in args.compile_backbones.split(","):
                    cells.append("not measured")
                    continue
                rate = throughput(name, args.size, mode, amp, compiled, args, device)
                cells.append(f"{rate:.2f} it/s ({rate * args.batch_size:.0f} img/s)")
            lines.append(f"| {name} ({args.size}) | {mode} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
            target.write_text("\n".join(lines) + "\n")  # keep partial results
    if args.skip_trainer:
        return
    difference = compiled_matches_eager("nafnet", args.size, device)
    seconds, loss = trainer_with_amp(device, args.size, args.steps)
    lines += [
        "",
        f"torch.compile vs eager, NAFNet + PIP (perturbed units), fp32: max abs difference "
        f"{difference:.2e}.",
        f"The library's Trainer, NAFNet + PIP adapter, bf16 AMP, batch 8 of 128²: "
        f"{seconds * 1e3:.0f} ms per step over {args.steps} steps; loss after training {loss:.4f}.",
    ]
    print("\n".join(lines[-3:]))
    target.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
