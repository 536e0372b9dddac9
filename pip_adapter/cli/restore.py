"""``pip-adapter restore``: restore image files with a trained adapter."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from pip_adapter.bundle import load_bundle
from pip_adapter.cli.batch import check_output_folder, collect_inputs, restore_files
from pip_adapter.conditioning import describe_weights, parse_degradation
from pip_adapter.data import read_image, write_image
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


def _model_restorer(args: argparse.Namespace) -> Callable[[Path, Path], str | None]:
    """Restore one file into another with the adapter's model, steered by ``--degradation``;
    in blind mode it returns what the sensor saw and how sure it was."""
    device = resolve_device(args.device, "--device")
    model = load_bundle(args.adapter, args.checkpoint)
    degradation = parse_degradation(args.degradation, model.degradations)
    if degradation is None and model.sensor is None:  # an error for every input: say it once
        raise ValueError(
            f"--degradation auto asks the adapter's sensor, but no sensor is attached to the "
            f"adapter in {args.adapter} (train one with --sensor-steps); pass one of "
            f"{list(model.degradations)} or a mixture such as rain:0.7,noise:0.3"
        )
    model.to(device).eval()

    @torch.no_grad()
    def restore_file(source: Path, target: Path) -> str | None:
        image = read_image(source)[None].to(device)
        # blind: the sensor judges the whole image once, not each tile on its own
        steer = model.degradation_weights(image, degradation)
        if args.tile:
            restored = restore_tiled(
                model, image, tile=args.tile, overlap=args.overlap, degradation=steer
            )
        else:
            restored = model(image, degradation=steer)
        if not restored.isfinite().all():  # would be written as black pixels
            raise ValueError(
                "the model's output is not finite (NaN or infinity); its weights may be damaged"
            )
        write_image(restored[0], target)  # atomically
        if degradation is None:  # blind: the sensor's prediction and confidence
            return f"sensor: {describe_weights(steer[0], model.degradations)}"
        return None

    return restore_file


def _check_tiles(args: argparse.Namespace) -> None:
    """Refuse bad tile options once, up front, rather than for every input."""
    if args.tile is not None and args.tile < 1:
        raise ValueError(f"--tile must be a positive number of pixels, got {args.tile}")
    if args.tile is not None and not 0 <= args.overlap < args.tile:
        raise ValueError(
            f"--overlap must be >= 0 and under --tile ({args.tile}), got {args.overlap}"
        )


def run(args: argparse.Namespace) -> None:
    _check_tiles(args)
    inputs = collect_inputs(args.inputs)
    check_output_folder(args.output)
    restore_files(inputs, args.output, _model_restorer(args), overwrite=args.overwrite)
