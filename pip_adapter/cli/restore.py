"""``pip-adapter restore``: restore image files with a trained adapter."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pip_adapter.bundle import load_bundle
from pip_adapter.conditioning import describe_weights, parse_degradation
from pip_adapter.data import list_images, read_image, write_image
from pip_adapter.tiling import restore_tiled

HELP = "restore images (files or folders) with an adapter; writes PNGs of the same size"


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
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")


def _inputs(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += list_images(path)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such image or folder: {path}")
    if not files:
        raise FileNotFoundError(f"no images found in {[str(p) for p in paths]}")
    return files


def run(args: argparse.Namespace) -> None:
    files = _inputs(args.inputs)
    model = load_bundle(args.adapter, args.checkpoint)
    degradation = parse_degradation(args.degradation, model.degradations)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    args.output.mkdir(parents=True, exist_ok=True)
    for path in files:
        image = read_image(path)[None].to(device)
        with torch.no_grad():
            # blind: the sensor judges the whole image once, not each tile on its own
            steer = model.degradation_weights(image, degradation)
            if args.tile:
                restored = restore_tiled(
                    model, image, tile=args.tile, overlap=args.overlap, degradation=steer
                )
            else:
                restored = model(image, degradation=steer)
        target = args.output / f"{path.stem}.png"
        write_image(restored[0], target)
        line = f"{path} -> {target}"
        if degradation is None:  # blind: what the sensor saw, and how sure it was
            line += f"  [sensor: {describe_weights(steer[0], model.degradations)}]"
        print(line)
