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
from pip_adapter.cli.options import add_finetune_arguments, recipe_from_args
from pip_adapter.recipes import finetune
from pip_adapter.training import format_metrics_table

HELP = "inject PIP into a backbone and train it (adapter only when starting from a checkpoint)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_finetune_arguments(parser)


def run(args: argparse.Namespace, smoke: bool = False) -> None:
    started = time.perf_counter()
    recipe = recipe_from_args(args, smoke=smoke)
    _, report = finetune(recipe)
    if report is not None:
        print(format_metrics_table({f"{recipe.backbone} + PIP": report}))
        minutes = (time.perf_counter() - started) / 60
        print(f"done in {minutes:.1f} min; adapter written to {recipe.out / 'adapter'}")


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
