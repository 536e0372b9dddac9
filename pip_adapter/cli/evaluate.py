"""``pip-adapter eval``: PSNR / SSIM of a trained adapter, per degradation."""

from __future__ import annotations

import argparse
from pathlib import Path

from pip_adapter.bundle import load_bundle
from pip_adapter.data.sources import eval_data
from pip_adapter.evaluation import evaluate
from pip_adapter.training import format_metrics_table

HELP = "evaluate an adapter per degradation (PSNR / SSIM)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", type=Path, required=True, help="adapter folder")
    parser.add_argument("--checkpoint", type=Path, help="backbone weights, if not in the folder")
    parser.add_argument(
        "--data",
        default="samples",
        help="'samples' (held-out bundled photos), a folder of clean images, or the root of "
        "the AirNet/PromptIR layout (samples)",
    )
    parser.add_argument(
        "--blind", action="store_true", help="let the adapter's sensor pick the degradation"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradations")


def run(args: argparse.Namespace) -> None:
    model = load_bundle(args.adapter, args.checkpoint)
    # "clean" is the identity: there is nothing to measure for it with labels
    degradations = model.restorable_degradations
    dataset = eval_data(args.data, degradations, args.seed)
    report = evaluate(model, dataset, degradations, conditioned=not args.blind)
    print(format_metrics_table({"blind" if args.blind else "PIP": report}))
