"""``pip-adapter restore``: restore image files with a trained adapter."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from pip_adapter.bundle import load_bundle
from pip_adapter.cli.image_files import check_output_folder, collect_inputs, restore_files
from pip_adapter.conditioning import parse_degradation
from pip_adapter.devices import resolve_device
from pip_adapter.tiling import restore_tiled

HELP = (
    "restore images (files or folders) with an adapter; writes PNGs of the same size, "
    "never replacing a file without --overwrite"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--adapter", type=Path, required=True, help="adapter folder")
    parser.add_argument("--checkpoint", type=Path, help="backbone weights, if not in the folder")
    parser.add_argument(
        "--degradation",
        default="auto",
        help="a name (rain), a mixture (rain:0.7,noise:0.3), or auto (the adapter's sensor)",
    )
    parser.add_argument("--tile", type=int, help="process in tiles of this side (bounded memory)")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (32)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output folder: INPUT.png per input (names that would clash keep their extension "
        "or folder, see docs/files-and-safety.md)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that exist (also an input, when -o is its folder)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")


def _model_restorer(args: argparse.Namespace) -> Callable[[torch.Tensor], torch.Tensor]:
    """``1×3×H×W -> 1×3×H×W`` with the adapter's model, steered by ``--degradation``."""
    device = resolve_device(args.device, "--device")
    model = load_bundle(args.adapter, args.checkpoint)
    degradation = parse_degradation(args.degradation, model.degradations)
    model.to(device).eval()

    @torch.no_grad()
    def restore(image: torch.Tensor) -> torch.Tensor:
        image = image.to(device)
        # blind: the sensor judges the whole image once, not each tile on its own
        steer = model.degradation_weights(image, degradation)
        if args.tile:
            return restore_tiled(
                model, image, tile=args.tile, overlap=args.overlap, degradation=steer
            )
        return model(image, degradation=steer)

    return restore


def run(args: argparse.Namespace) -> None:
    inputs = collect_inputs(args.inputs)
    check_output_folder(args.output)
    restore_files(inputs, args.output, _model_restorer(args), overwrite=args.overwrite)
