"""``pip-adapter train``: inject PIP into a backbone and train it on a chosen data source.

``example_main`` is the same command with the backbone fixed and per-backbone defaults;
the scripts in ``examples/`` are built on it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from pip_adapter.cli.errors import run_reporting_errors
from pip_adapter.cli.options import (
    add_finetune_arguments,
    add_growth_arguments,
    grow_recipe_from_args,
    recipe_from_args,
)
from pip_adapter.recipes import finetune, grow_adapter
from pip_adapter.training import format_metrics_table

HELP = (
    "inject PIP into a backbone and train it (adapter only when starting from a checkpoint), "
    "or teach a trained adapter new degradations (--adapter DIR --add-degradations jpeg,snow)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_finetune_arguments(parser, backbone_required=False)
    add_growth_arguments(parser)


def run(args: argparse.Namespace, smoke: bool = False) -> None:
    started = time.perf_counter()
    if getattr(args, "adapter", None) is not None:
        grow = grow_recipe_from_args(args, smoke=smoke)
        _, report = grow_adapter(grow)
        label, out = f"{grow.adapter.name} + {','.join(grow.degradations)}", grow.out
    elif getattr(args, "add_degradations", None) is not None:
        raise ValueError("--add-degradations needs --adapter DIR (the trained adapter to grow)")
    elif args.backbone is None:
        raise ValueError(
            "--backbone is required (or --adapter DIR --add-degradations ... to teach a trained "
            "adapter new degradations)"
        )
    else:
        recipe = recipe_from_args(args, smoke=smoke)
        _, report = finetune(recipe)
        label, out = f"{recipe.backbone} + PIP", recipe.out
    if report is not None:
        print(format_metrics_table({label: report}))
        minutes = (time.perf_counter() - started) / 60
        print(f"done in {minutes:.1f} min; adapter written to {out / 'adapter'}")


def example_main(
    backbone: str, description: str, argv: Sequence[str] | None = None, **defaults: Any
) -> int:
    """Entry point of an example script: ``train`` for one backbone, plus ``--smoke``; returns
    the exit status."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_finetune_arguments(parser, backbone=backbone, **defaults)
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny configuration for a few steps (seconds)"
    )
    args = parser.parse_args(argv)
    return run_reporting_errors(parser.prog, lambda: run(args, smoke=args.smoke))
