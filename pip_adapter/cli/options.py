"""Command-line options shared by the commands and the example scripts.

Their defaults are read from the dataclasses they fill (``FinetuneRecipe``, its ``PIPConfig``
and ``TrainConfig``), so that a default is written in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from pip_adapter.backbones import BACKBONES
from pip_adapter.config import PIPConfig
from pip_adapter.recipes import FinetuneRecipe
from pip_adapter.training import TrainConfig

__all__ = [
    "add_data_arguments",
    "add_finetune_arguments",
    "parse_degradations",
    "recipe_from_args",
]


def field_default(cls: type, name: str) -> Any:
    """The default value of dataclass ``cls``'s field ``name``."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


RECIPE_TRAINING: TrainConfig = field_default(FinetuneRecipe, "train")
RECIPE_PIP: PIPConfig = field_default(FinetuneRecipe, "pip")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    default = ",".join(RECIPE_PIP.degradations)
    parser.add_argument(
        "--data",
        default=field_default(FinetuneRecipe, "data"),
        help="'samples' (bundled photos), a folder of clean images, or the root of the "
        "AirNet/PromptIR layout (data/Train, data/test) (%(default)s)",
    )
    parser.add_argument(
        "--degradations",
        "--tasks",
        dest="degradations",
        default=default,
        help=f"comma-separated degradations ({default})",
    )
    parser.add_argument(
        "--patch-size",
        type=int,
        default=field_default(FinetuneRecipe, "patch_size"),
        help="training patch side (%(default)s)",
    )


def parse_degradations(text: str) -> tuple[str, ...]:
    degradations = tuple(t.strip() for t in text.split(",") if t.strip())
    if not degradations:
        raise ValueError(
            f"--degradations needs at least one name, e.g. {','.join(RECIPE_PIP.degradations)}"
        )
    return degradations


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    recipe = {
        f.name: field_default(FinetuneRecipe, f.name) for f in dataclasses.fields(FinetuneRecipe)
    }
    parser.add_argument(
        "--size",
        default=recipe["size"],
        choices=("official", "small", "tiny"),
        help="backbone configuration when not loading --checkpoint (%(default)s)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="backbone weights (.pth/.safetensors, e.g. official)"
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--native-degradations",
        default=",".join(RECIPE_PIP.native_degradations),
        help="comma-separated degradations the checkpoint already restores (e.g. noise for "
        "NAFNet-SIDD): with their label the model stays exactly the checkpoint (none)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also fine-tune the backbone (default with --checkpoint: adapter only)",
    )
    parser.add_argument(
        "--sensor-steps",
        type=int,
        default=recipe["sensor_steps"],
        help="then train a degradation sensor for blind restoration (--degradation auto, "
        "eval --blind) on the same data for N steps; 0: no sensor (%(default)s)",
    )
    parser.add_argument(
        "--sensor-backbone",
        default=recipe["sensor_backbone"],
        help="timm model name of the sensor (%(default)s)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue OUT/checkpoint.pt (with the same settings)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the previous run in OUT (without it, or --resume, such an OUT is refused)",
    )
    parser.add_argument(
        "--out", type=Path, default=recipe["out"], help="output folder (%(default)s)"
    )


# option, TrainConfig field, type, help
_TRAINING_OPTIONS = (
    ("--steps", "steps", int, "training steps"),
    ("--batch-size", "batch_size", int, "patches per step and GPU"),
    ("--lr", "lr", float, "peak learning rate"),
    ("--val-every", "val_every", int, "validate every N steps; 0: at the end only"),
    ("--checkpoint-every", "checkpoint_every", int, "save every N steps"),
    ("--workers", "num_workers", int, "DataLoader workers"),
    ("--seed", "seed", int, "seed of data and weights"),
)


def _training_arguments(parser: argparse.ArgumentParser) -> None:
    train = RECIPE_TRAINING
    for option, name, kind, text in _TRAINING_OPTIONS:
        parser.add_argument(
            option, dest=name, type=kind, default=getattr(train, name), help=f"{text} (%(default)s)"
        )
    parser.add_argument(
        "--amp", choices=("bf16", "fp16"), default=train.amp, help="mixed precision (CUDA)"
    )
    parser.add_argument("--device", default=train.device, help="cpu, cuda, ... (default: best)")


def add_finetune_arguments(
    parser: argparse.ArgumentParser, backbone: str | None = None, **defaults: Any
) -> None:
    """The options of the recipe. ``backbone`` fixes the network (example scripts); otherwise
    ``--backbone`` is required. ``defaults`` override option defaults (e.g. ``lr=3e-4``)."""
    if backbone is None:
        parser.add_argument(
            "--backbone", required=True, choices=sorted(BACKBONES), help="restoration network"
        )
    _recipe_arguments(parser)
    _training_arguments(parser)
    parser.set_defaults(backbone=backbone, **defaults)


def _values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def recipe_from_args(args: argparse.Namespace, smoke: bool = False) -> FinetuneRecipe:
    """The recipe for parsed options; ``smoke`` makes it tiny (``FinetuneRecipe.smoke``)."""
    native = tuple(t.strip() for t in args.native_degradations.split(",") if t.strip())
    pip = RECIPE_PIP.replace(
        degradations=parse_degradations(args.degradations), native_degradations=native
    )
    train = dataclasses.replace(RECIPE_TRAINING, **_values(TrainConfig, args))
    values = {k: v for k, v in _values(FinetuneRecipe, args).items() if k not in ("pip", "train")}
    recipe = FinetuneRecipe(**values, pip=pip, train=train)
    return recipe.smoke() if smoke else recipe
