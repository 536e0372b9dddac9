"""``pip-adapter restore``: restore image files with an adapter, or with an exported ONNX graph.

Both backends share this command's file handling, output naming, tiling and errors; they differ
only in how an image is read, steered and run (``Backend``). The ONNX backend uses
onnxruntime and numpy alone: nothing on its path imports PyTorch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pip_adapter.blending import NUMPY_OPS, ArrayOps, blend_tiles, plan_tiles
from pip_adapter.cli.batch import check_output_folder, collect_inputs, restore_files
from pip_adapter.image_files import read_rgb, write_rgb

HELP = (
    "restore images (files or folders) with an adapter or an ONNX graph; writes PNGs of the "
    "same size, never replacing a file without --overwrite"
)


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
    parser.add_argument(
        "--local-pooling",
        type=int,
        metavar="PIXELS",
        help="adapter: the network's global average pools become means over this many input "
        "pixels (pa.local_pooling; for photos larger than the training crops)",
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
    parser.add_argument("--device", default=None, help="adapter: cpu, cuda, ... (default: best)")
    parser.add_argument("--threads", type=int, help="ONNX: onnxruntime threads (default: all)")


class Backend(Protocol):
    """What restoring needs from a model runtime; images are ``1×3×H×W`` arrays of its kind."""

    size_rule: tuple[int, int, bool]  # the sizes the model takes: multiple, minimum, square
    ops: ArrayOps

    def read(self, path: Path) -> Any:
        """The image file as a ``1×3×H×W`` array in [0, 1]."""

    def to_numpy(self, image: Any) -> np.ndarray:
        """A restored ``3×H×W`` image as a float32 numpy array."""

    def steering(self, image: Any) -> Any:
        """What steers this image (its weights; the sensor judges the whole image once)."""

    def forward(self, images: Any, steering: Any) -> Any:
        """Restored ``images`` (a batch of one image or of its tiles)."""

    def note(self, steering: Any) -> str | None:
        """What to print beside the image's name (blind: what the sensor saw), or None."""


class _TorchBackend:
    """The adapter, rebuilt with its backbone and run with PyTorch."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch  # here, not at the top: the ONNX backend must not load PyTorch

        from pip_adapter.bundle import load_bundle
        from pip_adapter.devices import resolve_device
        from pip_adapter.pooling import local_pooling
        from pip_adapter.tiling import TORCH_OPS
        from pip_adapter.vocabulary import parse_degradation

        if args.threads is not None:
            raise ValueError("--threads goes with --onnx (PyTorch takes OMP_NUM_THREADS)")
        if args.local_pooling is not None and args.local_pooling < 1:
            raise ValueError(
                f"--local-pooling must be a positive number of input pixels, got "
                f"{args.local_pooling}"
            )
        self.torch = torch
        self.device = resolve_device(args.device, "--device")
        self.model = load_bundle(args.adapter, args.checkpoint)
        self.degradation = parse_degradation(args.degradation or "auto", self.model.degradations)
        if self.degradation is None and self.model.sensor is None:  # say it once, not per input
            raise ValueError(
                f"--degradation auto asks the adapter's sensor, but no sensor is attached to the "
                f"adapter in {args.adapter} (train one with --sensor-steps); pass one of "
                f"{list(self.model.degradations)} or a mixture such as rain:0.7,noise:0.3"
            )
        if args.local_pooling is not None:
            local_pooling(self.model, args.local_pooling)
        self.model.to(self.device).eval()
        rule = self.model.size_requirements
        self.size_rule: tuple[int, int, bool] = (rule.multiple_of, rule.minimum, rule.square)
        self.ops: ArrayOps = TORCH_OPS

    def read(self, path: Path) -> Any:
        return self.torch.from_numpy(read_rgb(path))[None].to(self.device)

    def to_numpy(self, image: Any) -> np.ndarray:
        return image.float().cpu().numpy()

    def steering(self, image: Any) -> Any:
        with self.torch.no_grad():
            return self.model.degradation_weights(image, self.degradation)

    def forward(self, images: Any, steering: Any) -> Any:
        with self.torch.no_grad():
            return self.model(images, degradation=steering.expand(images.shape[0], -1))

    def note(self, steering: Any) -> str | None:
        from pip_adapter.conditioning import describe_weights

        if self.degradation is not None:
            return None
        return f"sensor: {describe_weights(steering[0], self.model.degradations)}"


class _OnnxBackend:
    """An exported ONNX graph run with onnxruntime, on numpy arrays."""

    def __init__(self, args: argparse.Namespace) -> None:
        from pip_adapter.onnx_graph import OnnxGraph
        from pip_adapter.vocabulary import parse_degradation

        for option in ("checkpoint", "device", "local_pooling"):
            if getattr(args, option) is not None:
                flag = option.replace("_", "-")
                raise ValueError(f"--{flag} goes with --adapter, not with --onnx")
        self.graph = OnnxGraph(args.onnx, threads=args.threads)
        degradation = None
        if args.degradation is not None:
            degradation = parse_degradation(args.degradation, self.graph.degradations)
        self.weights = self.graph.steering(degradation)  # refuses what the graph cannot take
        self.size_rule: tuple[int, int, bool] = (
            self.graph.size_multiple,
            self.graph.min_side,
            False,
        )
        self.ops: ArrayOps = NUMPY_OPS
        self.sensed: list[np.ndarray] = []  # a blind graph's weights for the current image

    def read(self, path: Path) -> Any:
        return read_rgb(path)[None]

    def to_numpy(self, image: Any) -> np.ndarray:
        return np.asarray(image, dtype=np.float32)

    def steering(self, image: Any) -> Any:
        self.sensed = []  # a new image: what the graph's sensor will say about it
        return self.weights

    def forward(self, images: Any, steering: Any) -> Any:
        restored, sensed = self.graph.restore(images, steering)
        if sensed is not None:
            self.sensed.append(sensed)
        return restored

    def note(self, steering: Any) -> str | None:
        """A blind graph's choice (its ``weights`` output): for the image, or with ``--tile``
        the mean over the tiles, each of which its sensor judged on its own."""
        from pip_adapter.vocabulary import describe_mixture

        if not self.sensed:
            return None
        rows = np.concatenate(self.sensed)
        words = describe_mixture(rows.mean(axis=0).tolist(), self.graph.degradations)
        return (
            f"sensor: {words}" if len(rows) == 1 else f"sensor, mean of {len(rows)} tiles: {words}"
        )


def restore_image(
    backend: Backend, image: Any, steering: Any, tile: int | None = None, overlap: int = 32
) -> Any:
    """One image (``1×3×H×W``) restored whole or in overlapping tiles, all steered by
    ``steering`` (blind: the sensor judges the whole image once, not each tile on its own)."""
    if not tile:
        return backend.forward(image, steering)
    height, width = image.shape[-2:]
    grid = plan_tiles(height, width, tile, overlap, *backend.size_rule)
    blended = blend_tiles(lambda tiles: backend.forward(tiles, steering), image, grid, backend.ops)
    return blended[None]


def file_restorer(backend: Backend, args: argparse.Namespace) -> Callable[[Path, Path], str | None]:
    """Restore one file into another with ``backend`` (for ``batch.restore_files``); returns
    the backend's note (blind: the sensor's prediction and confidence)."""

    def restore_file(source: Path, target: Path) -> str | None:
        image = backend.read(source)
        steering = backend.steering(image)
        restored = restore_image(backend, image, steering, args.tile, args.overlap)
        output = backend.to_numpy(restored[0])
        if not np.isfinite(output).all():  # would be written as black pixels
            raise ValueError(
                "the model's output is not finite (NaN or infinity); its weights may be damaged"
            )
        write_rgb(output, target)  # atomically
        return backend.note(steering)

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
    backend: Backend = _OnnxBackend(args) if args.onnx is not None else _TorchBackend(args)
    restore_files(inputs, args.output, file_restorer(backend, args), overwrite=args.overwrite)
