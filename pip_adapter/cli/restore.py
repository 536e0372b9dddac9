"""``pip-adapter restore``: restore image files with an adapter, or with an exported ONNX graph.

Both backends share this command's file handling, output naming, tiling and errors; they differ
only in how an image is read, steered and run (``Backend``). The ONNX backend uses
onnxruntime and numpy alone: nothing on its path imports PyTorch.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Protocol

from pip_adapter.blending import NUMPY_OPS, ArrayOps, blend_tiles, plan_tiles
from pip_adapter.image_files import list_images, read_rgb, write_rgb

HELP = "restore images (files or folders) with an adapter or an ONNX graph; writes PNGs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--adapter", type=Path, help="adapter folder (runs with PyTorch)")
    source.add_argument(
        "--onnx", type=Path, help="ONNX graph from 'pip-adapter export' (runs with onnxruntime)"
    )
    parser.add_argument("--checkpoint", type=Path, help="backbone weights, if not in the folder")
    parser.add_argument(
        "--degradation",
        help="a name (rain), a mixture (rain:0.7,noise:0.3), or auto (the sensor; the default "
        "for an adapter); an ONNX graph takes one only if exported with weights as an input",
    )
    parser.add_argument("--tile", type=int, help="process in tiles of this side (bounded memory)")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (32)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--device", default=None, help="adapter: cpu, cuda, ... (default: best)")
    parser.add_argument("--threads", type=int, help="ONNX: onnxruntime threads (default: all)")


class Backend(Protocol):
    """What restoring needs from a model runtime; images are ``1×3×H×W`` arrays of its kind."""

    size_multiple: int
    ops: ArrayOps

    def read(self, path: Path) -> Any: ...

    def write(self, image: Any, path: Path) -> None: ...

    def steering(self, image: Any) -> Any:
        """What steers this image (its weights; the sensor judges the whole image once)."""

    def forward(self, images: Any, steering: Any) -> Any:
        """Restored ``images`` (a batch of one image or of its tiles)."""


class _TorchBackend:
    """The adapter, rebuilt with its backbone and run with PyTorch."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch  # here, not at the top: the ONNX backend must not load PyTorch

        from pip_adapter.bundle import load_bundle
        from pip_adapter.tiling import TORCH_OPS
        from pip_adapter.vocabulary import parse_degradation

        self.torch = torch
        self.model = load_bundle(args.adapter, args.checkpoint)
        self.degradation = parse_degradation(args.degradation or "auto", self.model.degradations)
        self.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.size_multiple = self.model.size_multiple
        self.ops = TORCH_OPS

    def read(self, path: Path) -> Any:
        return self.torch.from_numpy(read_rgb(path))[None].to(self.device)

    def write(self, image: Any, path: Path) -> None:
        write_rgb(image.float().cpu().numpy(), path)

    def steering(self, image: Any) -> Any:
        with self.torch.no_grad():
            return self.model.degradation_weights(image, self.degradation)

    def forward(self, images: Any, steering: Any) -> Any:
        with self.torch.no_grad():
            return self.model(images, degradation=steering.expand(images.shape[0], -1))


class _OnnxBackend:
    """An exported ONNX graph run with onnxruntime, on numpy arrays."""

    def __init__(self, args: argparse.Namespace) -> None:
        from pip_adapter.onnx_graph import OnnxGraph
        from pip_adapter.vocabulary import parse_degradation

        for option in ("checkpoint", "device"):
            if getattr(args, option) is not None:
                raise ValueError(f"--{option} goes with --adapter, not with --onnx")
        self.graph = OnnxGraph(args.onnx, threads=args.threads)
        degradation = None
        if args.degradation is not None:
            degradation = parse_degradation(args.degradation, self.graph.degradations)
        self.weights = self.graph.steering(degradation)
        self.size_multiple = self.graph.size_multiple
        self.ops = NUMPY_OPS

    def read(self, path: Path) -> Any:
        return read_rgb(path)[None]

    def write(self, image: Any, path: Path) -> None:
        write_rgb(image, path)

    def steering(self, image: Any) -> Any:
        return self.weights

    def forward(self, images: Any, steering: Any) -> Any:
        return self.graph.restore(images, steering)


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


def restore_image(backend: Backend, image: Any, tile: int | None = None, overlap: int = 32) -> Any:
    """One image (``1×3×H×W``) restored whole or in overlapping tiles, steered once for the
    whole image."""
    steering = backend.steering(image)
    if not tile:
        return backend.forward(image, steering)
    height, width = image.shape[-2:]
    grid = plan_tiles(height, width, tile, overlap, backend.size_multiple)
    blended = blend_tiles(lambda tiles: backend.forward(tiles, steering), image, grid, backend.ops)
    return blended[None]


def run(args: argparse.Namespace) -> None:
    files = _inputs(args.inputs)
    if args.threads is not None and args.onnx is None:
        raise ValueError("--threads goes with --onnx (PyTorch takes OMP_NUM_THREADS)")
    backend: Backend = _OnnxBackend(args) if args.onnx is not None else _TorchBackend(args)
    args.output.mkdir(parents=True, exist_ok=True)
    for path in files:
        restored = restore_image(backend, backend.read(path), args.tile, args.overlap)
        target = args.output / f"{path.stem}.png"
        backend.write(restored[0], target)
        print(f"{path} -> {target}")
