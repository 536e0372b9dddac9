"""Tiled inference for any array library: the tile grid, its blending windows, the blend.

The PyTorch path (``pip_adapter.restore_tiled``) and the onnxruntime path
(``pip-adapter restore --onnx``, numpy arrays) share this code: the grid and the windows are
planned once with numpy, and ``blend_tiles`` only slices, multiplies and adds arrays, which
torch tensors and numpy arrays do alike. What differs (padding, concatenation, new arrays) is
an ``ArrayOps``. This module imports numpy only, so the onnxruntime path never loads torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["NUMPY_OPS", "ArrayOps", "TileGrid", "blend_tiles", "plan_tiles"]


class ArrayOps(Protocol):
    """What blending needs from an array library, beyond slicing and arithmetic."""

    def pad(self, image: Any, height: int, width: int) -> Any:
        """Pad ``1×C×h×w`` at the bottom and right to ``height×width`` (reflect, or replicate
        where the image is too small to reflect)."""

    def concat(self, arrays: Sequence[Any]) -> Any:
        """Join arrays along the first axis."""

    def zeros(self, like: Any, shape: tuple[int, ...]) -> Any:
        """A float32 array of zeros on ``like``'s device."""

    def constant(self, values: np.ndarray, like: Any) -> Any:
        """``values`` as an array of ``like``'s kind and device."""

    def finish(self, blended: Any, like: Any) -> Any:
        """The blended float32 result in ``like``'s dtype."""


def _tile_offsets(size: int, tile: int, stride: int) -> list[int]:
    """Tile offsets along one axis: every ``stride`` pixels, the last one flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1-D blending weights of a tile: ramps at its inner edges, 1 elsewhere.

    Over the ``overlap`` pixels at an inner edge the weight is 0 for the outer quarter (pixels
    whose receptive field hits the tile border, where the model sees padding instead of the
    neighbouring content), then rises linearly to 1. The ramps of two tiles that overlap by
    ``overlap`` pixels sum to 1, and edges on the image border keep weight 1.
    """
    weights = np.ones(length, dtype=np.float32)
    if overlap == 0:
        return weights
    margin = overlap // 4
    positions = np.arange(overlap, dtype=np.float32)
    ramp = np.clip((positions - margin + 0.5) / (overlap - 2 * margin), 0, 1).astype(np.float32)
    if ramp_start:
        weights[:overlap] = np.minimum(weights[:overlap], ramp)
    if ramp_end:
        weights[-overlap:] = np.minimum(weights[-overlap:], ramp[::-1])
    return weights


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one image size go, and how they are blended.

    ``boxes`` are the tiles' top-left corners in the image padded to ``padded``; ``windows``
    maps each box to its blending weights (``tile_h×tile_w``; tiles with the same inner edges
    share one array) and ``weight_sum`` is their sum over the padded image.
    """

    size: tuple[int, int]
    tile: tuple[int, int]
    padded: tuple[int, int]
    boxes: list[tuple[int, int]]
    windows: dict[tuple[int, int], np.ndarray]
    weight_sum: np.ndarray


def _accepted(side: int, minimum: int, multiple: int) -> int:
    """The smallest side from ``side`` up that is at least ``minimum`` and a ``multiple``."""
    return math.ceil(max(side, minimum) / multiple) * multiple


def plan_tiles(
    height: int,
    width: int,
    tile: int,
    overlap: int,
    multiple: int,
    minimum: int = 0,
    square: bool = False,
) -> TileGrid:
    """The grid of ``tile``-pixel tiles overlapping by ``overlap``, each of a size the model
    accepts (sides at least ``minimum``, a ``multiple``, ``square`` if asked: spandrel's
    ``SizeRequirements`` as plain numbers).

    A side shorter than a tile gets one tile of that side rounded up to an accepted size (the
    image is padded to it). Raises ValueError for non-positive sizes or ``overlap`` outside
    ``[0, tile)``.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be a positive integer, got {multiple}")
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must satisfy 0 <= overlap < tile ({tile}), got {overlap}")
    tile = _accepted(tile, minimum, multiple)
    tile_h = tile if height >= tile else _accepted(height, minimum, multiple)
    tile_w = tile if width >= tile else _accepted(width, minimum, multiple)
    if square:
        tile_h = tile_w = max(tile_h, tile_w)
    overlap_h, overlap_w = min(overlap, tile_h - 1), min(overlap, tile_w - 1)
    padded_h, padded_w = max(height, tile_h), max(width, tile_w)
    rows = _tile_offsets(padded_h, tile_h, tile_h - overlap_h)
    cols = _tile_offsets(padded_w, tile_w, tile_w - overlap_w)
    boxes = [(top, left) for top in rows for left in cols]
    shared: dict[tuple[bool, ...], np.ndarray] = {}
    windows = {}
    weight_sum = np.zeros((padded_h, padded_w), dtype=np.float32)
    for top, left in boxes:
        # which tile edges are inner edges (ramped); tiles with the same edges share a window
        edges = (top > 0, top + tile_h < padded_h, left > 0, left + tile_w < padded_w)
        if edges not in shared:
            shared[edges] = np.outer(
                _ramp(tile_h, overlap_h, edges[0], edges[1]),
                _ramp(tile_w, overlap_w, edges[2], edges[3]),
            )
        windows[(top, left)] = shared[edges]
        weight_sum[top : top + tile_h, left : left + tile_w] += shared[edges]
    return TileGrid(
        (height, width), (tile_h, tile_w), (padded_h, padded_w), boxes, windows, weight_sum
    )


def blend_tiles(
    run: Callable[[Any], Any],
    image: Any,
    grid: TileGrid,
    ops: ArrayOps,
    batch_size: int = 4,
    on_tiles: Callable[[int], object] | None = None,
) -> Any:
    """Run ``run`` over the tiles of one image (``1×C×H×W``) and blend them: ``C'×H×W``.

    Tiles go through ``run`` ``batch_size`` at a time (``n×C×h×w`` -> ``n×C'×h×w``) and are
    accumulated as they come, so memory stays bounded by one batch and the output.
    ``on_tiles(n)`` is called after each batch (progress bars).
    """
    tile_h, tile_w = grid.tile
    padded = ops.pad(image, *grid.padded)
    accumulated: Any = None
    windows: dict[tuple[int, int], Any] = {}
    for start in range(0, len(grid.boxes), batch_size):
        chunk = grid.boxes[start : start + batch_size]
        tiles = ops.concat([padded[..., t : t + tile_h, c : c + tile_w] for t, c in chunk])
        result = run(tiles)
        if result.shape[0] != len(chunk) or tuple(result.shape[-2:]) != grid.tile:
            raise ValueError(
                "model must keep the batch and spatial size of its input: tiles of shape "
                f"{tuple(tiles.shape)} gave {tuple(result.shape)}"
            )
        if accumulated is None:  # the output's channels and device are known from here on
            accumulated = ops.zeros(result, (result.shape[1], *grid.padded))
            shared = {id(w): ops.constant(w, result) for w in grid.windows.values()}
            windows = {box: shared[id(w)] for box, w in grid.windows.items()}
        for (top, left), tile_out in zip(chunk, result, strict=True):
            accumulated[:, top : top + tile_h, left : left + tile_w] += (
                tile_out * windows[(top, left)]
            )
        if on_tiles is not None:
            on_tiles(len(chunk))
    height, width = grid.size
    blended = accumulated / ops.constant(grid.weight_sum, accumulated)
    return ops.finish(blended[:, :height, :width], result)


class _NumpyOps:
    """``ArrayOps`` for numpy arrays (the onnxruntime path)."""

    def pad(self, image: np.ndarray, height: int, width: int) -> np.ndarray:
        pad_h, pad_w = height - image.shape[-2], width - image.shape[-1]
        if not (pad_h or pad_w):
            return image
        # the rule of pip_adapter.padding.pad_to_size: torch's "reflect" is numpy's "reflect",
        # torch's "replicate" numpy's "edge"
        mode = "reflect" if pad_h < image.shape[-2] and pad_w < image.shape[-1] else "edge"
        widths = ((0, 0), (0, 0), (0, int(pad_h)), (0, int(pad_w)))
        return np.pad(image, widths, mode="reflect" if mode == "reflect" else "edge")

    def concat(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)

    def zeros(self, like: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.float32)

    def constant(self, values: np.ndarray, like: np.ndarray) -> np.ndarray:
        return values

    def finish(self, blended: np.ndarray, like: np.ndarray) -> np.ndarray:
        return blended.astype(like.dtype, copy=False)


NUMPY_OPS: ArrayOps = _NumpyOps()
