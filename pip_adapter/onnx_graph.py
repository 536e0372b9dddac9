"""Running an exported ONNX graph with onnxruntime and numpy alone (no PyTorch).

``pip_adapter.export.to_onnx`` writes a description of the graph into the file's metadata:
the degradation names (the columns of its ``weights`` input), how it is steered (``"weights"``
input, ``"baked"`` weights, or its own ``"sensor"``), the side multiple its backbone needs and
the smallest side the graph was traced for. ``OnnxGraph`` reads it and feeds the graph
accordingly. This module imports neither torch nor the rest of pip-adapter's models, so that
``pip-adapter restore --onnx`` starts fast and runs where only onnxruntime is wanted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pip_adapter.blending import NUMPY_OPS

__all__ = ["GRAPH_FORMAT", "METADATA_KEY", "OnnxGraph", "import_onnxruntime"]

METADATA_KEY = "pip_adapter"
"""Key of the JSON description in the ONNX file's metadata."""

GRAPH_FORMAT = "pip-adapter-graph"
STEERINGS = ("weights", "baked", "sensor")


def import_onnxruntime() -> Any:
    """onnxruntime, or an ImportError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            "running ONNX graphs needs onnxruntime: pip install 'pip-adapter[onnx]'"
        ) from None
    return onnxruntime


class OnnxGraph:
    """An ONNX file written by ``pip_adapter.export.to_onnx``, run with onnxruntime.

    ``graph(image)`` or ``graph(image, weights)`` takes float32 arrays (``B×3×H×W`` in [0, 1],
    ``B×T`` weights) and returns the restored images and, for a graph with a sensor, the
    weights the sensor chose. The graph is valid for sides from ``min_side`` on;
    ``restore`` pads smaller images up to it.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (None: its default, all cores).
        providers: onnxruntime execution providers (default: the CPU).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such ONNX file: {self.path}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=list(providers))
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path} is not a valid ONNX file: {err}") from None
        self.metadata = self._read_metadata()
        self.degradations: tuple[str, ...] = tuple(self.metadata["degradations"])
        self.steering_mode: str = self.metadata["steering"]
        self.size_multiple: int = int(self.metadata["size_multiple"])
        self.min_side: int = int(self.metadata["min_side"])
        self.batch: int | None = self.metadata.get("batch")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _read_metadata(self) -> dict[str, Any]:
        custom = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in custom:
            raise ValueError(
                f"{self.path} was not written by pip_adapter.export.to_onnx (no "
                f"{METADATA_KEY!r} metadata); export it with 'pip-adapter export'"
            )
        metadata = json.loads(custom[METADATA_KEY])
        if metadata.get("format") != GRAPH_FORMAT or metadata.get("steering") not in STEERINGS:
            raise ValueError(f"{self.path}: unrecognised pip-adapter graph description")
        return metadata

    def weights_row(self, mixture: str | Mapping[str, float]) -> np.ndarray:
        """``1×T`` float32 weights for a degradation name or a normalised mixture."""
        chosen = {mixture: 1.0} if isinstance(mixture, str) else dict(mixture)
        return np.array([[chosen.get(name, 0.0) for name in self.degradations]], dtype=np.float32)

    def __call__(self, image: np.ndarray, weights: np.ndarray | None = None) -> list[np.ndarray]:
        if "weights" in self.input_names:
            if weights is None:
                raise ValueError(
                    f"{self.path.name} takes degradation weights as an input: give a "
                    f"degradation, one of {list(self.degradations)} or a mixture"
                )
            weights = np.broadcast_to(weights, (image.shape[0], len(self.degradations)))
        if self.batch is not None and image.shape[0] != self.batch:
            # a graph traced for a fixed batch (the model's code fixes it) takes images one by one
            rows = [
                self(image[i : i + 1], None if weights is None else weights[i : i + 1])
                for i in range(image.shape[0])
            ]
            return [np.concatenate(parts) for parts in zip(*rows, strict=True)]
        feeds = {"image": np.ascontiguousarray(image, dtype=np.float32)}
        if weights is not None:
            feeds["weights"] = np.ascontiguousarray(weights, dtype=np.float32)
        return self.session.run(None, feeds)

    def steering(self, degradation: str | Mapping[str, float] | None) -> np.ndarray | None:
        """The ``1×T`` weights to feed for a parsed ``--degradation`` (None: not given or
        ``auto``), or None where the graph steers itself (baked weights, its sensor).

        ValueError where the request does not fit the graph: weights graphs need a
        degradation, baked and sensor graphs take none.
        """
        if self.steering_mode == "weights":
            if degradation is None:
                raise ValueError(
                    f"{self.path.name} takes the degradation as an input and has no sensor: "
                    f"pass --degradation, one of {list(self.degradations)} or a mixture such as "
                    f"'{self.degradations[0]}:0.5,{self.degradations[-1]}:0.5'"
                )
            return self.weights_row(degradation)
        if degradation is not None:
            fixed = (
                f"has {self.metadata.get('baked')} baked in"
                if self.steering_mode == "baked"
                else "chooses the degradation with its own sensor"
            )
            raise ValueError(
                f"{self.path.name} {fixed}, so it takes no --degradation; export the adapter "
                "without --degradation to steer the graph at run time"
            )
        return None

    def restore(
        self, image: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The restored images for ``B×3×H×W`` ``image`` and, for a graph with a sensor, the
        ``B×T`` weights it chose (else None). Sides shorter than ``min_side`` are padded up to
        it (as the model pads to its size multiple) and cropped back."""
        height, width = image.shape[-2:]
        padded = NUMPY_OPS.pad(image, max(height, self.min_side), max(width, self.min_side))
        outputs = self(padded, weights)
        sensed = outputs[1] if self.steering_mode == "sensor" else None
        return outputs[0][..., :height, :width], sensed
