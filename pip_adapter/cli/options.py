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
from pip_adapter.injection.growth import GROWTH_MODES
from pip_adapter.recipes import ADAPTER_FFN_RANK, FinetuneRecipe, GrowRecipe, default_pip
from pip_adapter.training import STRENGTH_OBJECTIVES, TrainConfig
from pip_adapter.unit import DESIGNS

__all__ = [
    "add_data_arguments",
    "add_finetune_arguments",
    "add_growth_arguments",
    "grow_recipe_from_args",
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
RECIPE_PIP: PIPConfig = default_pip(None, full=False)


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
        "--degradation-ffn-rank",
        type=int,
        help="rank of each degradation's own update of the units' feed-forward (0: shared; "
        f"default {ADAPTER_FFN_RANK} with --checkpoint when only the adapter trains, else 0)",
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
        "--design",
        choices=DESIGNS,
        default=RECIPE_PIP.design,
        help="PIP unit design: compact (cheap at high resolution) or paper (the authors' unit) "
        "(%(default)s)",
    )
    parser.add_argument(
        "--no-clean",
        dest="clean",
        action="store_false",
        default=recipe["clean"],
        help="leave 'clean' out of the model's and the sensor's degradations (by default the "
        "sensor learns to recognise images that need nothing, and blind restoration leaves "
        "them as they are)",
    )
    parser.add_argument(
        "--strength-photos",
        type=Path,
        metavar="DIR",
        help="after training, fit each degradation's output strength on these clean photos "
        "(neither training nor test photos): where the model cannot improve a degradation on "
        "them, it restores it softly or returns the input (default: full strength)",
    )
    parser.add_argument(
        "--strength-objective",
        default=recipe["strength_objective"],
        choices=STRENGTH_OBJECTIVES,
        help="what the --strength-photos fit maximises: mse (least squares over every pixel) or "
        "psnr (the mean PSNR per photo) (%(default)s)",
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
    parser: argparse.ArgumentParser,
    backbone: str | None = None,
    backbone_required: bool = True,
    **defaults: Any,
) -> None:
    """The options of the recipe. ``backbone`` fixes the network (example scripts); otherwise
    ``--backbone`` is an option, required unless ``backbone_required`` is False (``train``
    checks it itself, as ``--adapter`` replaces it). ``defaults`` override option defaults
    (e.g. ``lr=3e-4``)."""
    if backbone is None:
        parser.add_argument(
            "--backbone",
            required=backbone_required,
            choices=sorted(BACKBONES),
            help="restoration network (required unless --adapter)",
        )
    _recipe_arguments(parser)
    _training_arguments(parser)
    parser.set_defaults(backbone=backbone, **defaults)


def _values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def recipe_from_args(args: argparse.Namespace, smoke: bool = False) -> FinetuneRecipe:
    """The recipe for parsed options; ``smoke`` makes it tiny (``FinetuneRecipe.smoke``)."""
    native = tuple(t.strip() for t in args.native_degradations.split(",") if t.strip())
    pip = default_pip(args.checkpoint, args.full).replace(
        degradations=parse_degradations(args.degradations),
        native_degradations=native,
        design=args.design,
    )
    if args.degradation_ffn_rank is not None:
        pip = pip.replace(degradation_ffn_rank=args.degradation_ffn_rank)
    train = dataclasses.replace(RECIPE_TRAINING, **_values(TrainConfig, args))
    values = {k: v for k, v in _values(FinetuneRecipe, args).items() if k not in ("pip", "train")}
    recipe = FinetuneRecipe(**values, pip=pip, train=train)
    return recipe.smoke() if smoke else recipe


def add_growth_arguments(parser: argparse.ArgumentParser) -> None:
    """``--adapter``, ``--add-degradations`` (``--add-tasks``) and ``--mode``: teach a trained
    bundle new degradations instead of training a new one."""
    parser.add_argument(
        "--adapter",
        type=Path,
        help="teach this trained adapter folder new degradations (with --add-degradations); "
        "its bundle's backbone is used, and a new adapter is written to OUT/adapter",
    )
    parser.add_argument(
        "--add-degradations",
        "--add-tasks",
        dest="add_degradations",
        help="comma-separated degradations to add to --adapter, e.g. jpeg,snow",
    )
    parser.add_argument(
        "--mode",
        choices=GROWTH_MODES,
        default=field_default(GrowRecipe, "mode"),
        help="prompts: train the new prompts only (old degradations stay bit-exact); light: "
        "also the units' norms and attention scales, with replay of the old degradations "
        "(%(default)s)",
    )


def grow_recipe_from_args(args: argparse.Namespace, smoke: bool = False) -> GrowRecipe:
    """The growth recipe for ``train --adapter DIR --add-degradations ...``; options that
    describe a new model (``--backbone``, ``--degradations``, ``--full``) are refused."""
    if args.add_degradations is None:
        raise ValueError("--adapter needs --add-degradations (e.g. --add-degradations jpeg,snow)")
    conflicts = [
        option
        for option, given in (
            ("--backbone", args.backbone is not None),
            ("--degradations", args.degradations != ",".join(RECIPE_PIP.degradations)),
            ("--full", args.full),
            ("--strength-photos", args.strength_photos is not None),
        )
        if given
    ]
    if conflicts:
        raise ValueError(
            f"{', '.join(conflicts)} cannot be combined with --adapter: the adapter's bundle "
            "fixes the backbone and its degradations, and growth trains the new prompts (and "
            "in light mode a small part of the units) only (fit output strengths on the grown "
            "bundle with pip_adapter.training.calibrate_output_strength)"
        )
    train = dataclasses.replace(RECIPE_TRAINING, **_values(TrainConfig, args))
    values = {k: v for k, v in _values(GrowRecipe, args).items() if k not in ("train",)}
    values["degradations"] = parse_degradations(args.add_degradations)
    recipe = GrowRecipe(**values, train=train)
    return recipe.smoke() if smoke else recipe
