"""Command-line options shared by the commands and the example scripts."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from pip_adapter.backbones import BACKBONES
from pip_adapter.conditioning import DEFAULT_DEGRADATIONS
from pip_adapter.recipes import SMOKE, FinetuneRecipe
from pip_adapter.sensor import DEFAULT_SENSOR_BACKBONE

__all__ = ["add_data_arguments", "add_finetune_arguments", "parse_tasks", "recipe_from_args"]


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default="samples",
        help="'samples' (bundled photos), a folder of clean images, or the root of the "
        "AirNet/PromptIR layout (data/Train, data/test) (samples)",
    )
    parser.add_argument(
        "--tasks",
        default=",".join(DEFAULT_DEGRADATIONS),
        help=f"comma-separated degradations ({','.join(DEFAULT_DEGRADATIONS)})",
    )
    parser.add_argument("--patch-size", type=int, default=128, help="training patch side (128)")


def parse_tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    if not tasks:
        raise ValueError(f"--tasks needs at least one name, e.g. {','.join(DEFAULT_DEGRADATIONS)}")
    return tasks


def add_finetune_arguments(
    parser: argparse.ArgumentParser, backbone: str | None = None, **defaults: Any
) -> None:
    """The options of the recipe. ``backbone`` fixes the network (example scripts); otherwise
    ``--backbone`` is required. ``defaults`` override option defaults (e.g. ``lr=3e-4``)."""
    if backbone is None:
        parser.add_argument(
            "--backbone", required=True, choices=sorted(BACKBONES), help="restoration network"
        )
    parser.add_argument(
        "--size",
        default="official",
        choices=("official", "small", "tiny"),
        help="backbone configuration when not loading --checkpoint (official)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="backbone weights (.pth/.safetensors, e.g. official)"
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--native-degradations",
        default="",
        help="comma-separated degradations the checkpoint already restores (e.g. noise for "
        "NAFNet-SIDD): with their label the model stays exactly the checkpoint (none)",
    )
    parser.add_argument("--steps", type=int, default=2000, help="training steps (%(default)s)")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="patches per step and GPU (%(default)s)"
    )
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (%(default)s)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also fine-tune the backbone (default with --checkpoint: adapter only)",
    )
    parser.add_argument(
        "--sensor-steps",
        type=int,
        default=300,
        help="then train a degradation sensor for blind restoration (--degradation auto, "
        "eval --blind) on the same data for N steps; 0: no sensor (%(default)s)",
    )
    parser.add_argument(
        "--sensor-backbone",
        default=DEFAULT_SENSOR_BACKBONE,
        help="timm model name of the sensor (%(default)s)",
    )
    parser.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision (CUDA)")
    parser.add_argument("--val-every", type=int, default=0, help="validate every N steps")
    parser.add_argument(
        "--checkpoint-every", type=int, default=500, help="save every N steps (%(default)s)"
    )
    parser.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and weights (0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/train"), help="output folder (%(default)s)"
    )
    parser.set_defaults(backbone=backbone, **defaults)


def recipe_from_args(args: argparse.Namespace, smoke: bool = False) -> FinetuneRecipe:
    """The recipe for parsed options; ``smoke`` swaps in :data:`SMOKE`'s tiny settings."""
    values = {
        f.name: getattr(args, f.name) for f in fields(FinetuneRecipe) if hasattr(args, f.name)
    }
    values["tasks"] = parse_tasks(args.tasks)
    values["native_degradations"] = tuple(
        t.strip() for t in args.native_degradations.split(",") if t.strip()
    )
    if smoke:
        values |= SMOKE
    return FinetuneRecipe(**values)
