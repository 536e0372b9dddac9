"""Tiled inference for images too large to restore in one forward pass."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from spandrel import SizeRequirements

from pip_adapter._extras import needs_extra
from pip_adapter.architectures import size_requirements
from pip_adapter.padding import pad_to_size

__all__ = ["restore_tiled"]


def _accepted(side: int, rule: SizeRequirements) -> int:
    """The smallest side from ``side`` up that ``rule`` accepts."""
    side = max(side, rule.minimum)
    return math.ceil(side / rule.multiple_of) * rule.multiple_of


def _tile_offsets(size: int, tile: int, stride: int) -> list[int]:
    """Tile offsets along one axis: every ``stride`` pixels, the last one flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weights of a tile: ramps at its inner edges, 1 elsewhere.

    Over the ``overlap`` pixels at an inner edge the weight is 0 for the outer quarter (pixels
    whose receptive field hits the tile border, where the model sees padding instead of the
    neighbouring content), then rises linearly to 1. The ramps of two tiles that overlap by
    ``overlap`` pixels sum to 1, and edges on the image border keep weight 1.
    """
    weights = torch.ones(length)
    if overlap == 0:
        return weights
    margin = overlap // 4
    positions = torch.arange(overlap, dtype=torch.float32)
    ramp = ((positions - margin + 0.5) / (overlap - 2 * margin)).clamp(0, 1)
    if ramp_start:
        weights[:overlap] = torch.minimum(weights[:overlap], ramp)
    if ramp_end:
        weights[-overlap:] = torch.minimum(weights[-overlap:], ramp.flip(0))
    return weights


def _per_sample_names(kwargs: dict[str, Any], batch: int) -> set[str]:
    """Names of the per-sample kwargs: tensors, lists and tuples with ``batch`` rows."""
    return {
        name
        for name, value in kwargs.items()
        if (isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch)
        or (isinstance(value, (list, tuple)) and len(value) == batch)
    }


def _kwargs_for(
    kwargs: dict[str, Any], per_sample: set[str], index: int, count: int
) -> dict[str, Any]:
    """Keyword arguments for ``count`` tiles of sample ``index``."""
    out = dict(kwargs)
    for name in per_sample:
        value = kwargs[name]
        if isinstance(value, torch.Tensor):
            row = value[index : index + 1]
            out[name] = row.expand(count, *row.shape[1:])
        elif isinstance(value, list):
            out[name] = [value[index]] * count
        else:
            out[name] = (value[index],) * count
    return out


@contextlib.contextmanager
def _tile_counter(total: int, progress: bool) -> Iterator[Callable[[int], object]]:
    """``update(n)``: counts finished tiles on a tqdm bar when ``progress``, else does nothing
    (tqdm comes with the train extra; restoring without a bar does not need it)."""
    if not progress:
        yield lambda n: None
        return
    with needs_extra("train", "restore_tiled(progress=True)"):
        from tqdm.auto import tqdm
    with tqdm(total=total, desc="tiles", unit="tile") as bar:
        yield bar.update


def _forward_tiles(
    model: Callable[..., torch.Tensor],
    image: torch.Tensor,
    chunk: list[tuple[int, int]],
    size: tuple[int, int],
    kwargs: dict[str, Any],
    update: Callable[[int], object],
) -> torch.Tensor:
    """Run ``model`` on the tiles of ``image`` (1×C×H×W) at the ``chunk`` offsets."""
    tile_h, tile_w = size
    tiles = torch.cat([image[..., t : t + tile_h, c : c + tile_w] for t, c in chunk])
    result = model(tiles, **kwargs)
    if result.shape[0] != len(chunk) or result.shape[-2:] != size:
        raise ValueError(
            "model must keep the batch and spatial size of its input: tiles of shape "
            f"{tuple(tiles.shape)} gave {tuple(result.shape)}"
        )
    update(len(chunk))
    return result


@torch.no_grad()
def restore_tiled(
    model: Callable[..., torch.Tensor],
    x: torch.Tensor,
    tile: int = 256,
    overlap: int = 32,
    multiple: int | None = None,
    batch_size: int = 4,
    progress: bool = False,
    output_device: torch.device | str | None = None,
    **forward_kwargs: Any,
) -> torch.Tensor:
    """Run ``model`` over overlapping tiles of ``x`` and blend them into one output.

    Tiles are ``tile``×``tile`` (rounded up to a size the model accepts) with ``overlap``
    pixels shared between neighbours. Overlaps are blended with linear ramps that ignore the
    ``overlap // 4`` pixels next to each inner tile edge, so there are no seams: a model whose
    receptive field reaches at most ``overlap // 4`` pixels gives exactly the untiled result,
    and larger ones differ only by the blended-away border effects. An image (or side)
    smaller than a tile is reflect-padded to a size the model accepts and cropped back, so odd
    sizes work. The sizes a model accepts are ``pip_adapter.architectures.size_requirements``'s
    (a PIPModel's, spandrel's for its networks, a ``size_multiple`` attribute), or, given
    ``multiple``, any multiple of it. Memory stays
    bounded: tiles go through the model ``batch_size`` at a time and are accumulated on
    ``output_device`` (default: the device of ``x``). Runs under ``torch.no_grad``.

    ``forward_kwargs`` are passed on as ``model(tiles, **forward_kwargs)``. Images are tiled one
    at a time; a tensor, list or tuple with one entry per image (first dimension equal to the
    batch size, e.g. ``degradation=["rain", "noise"]``) is sliced to the current image and
    repeated for each of its tiles. Anything else is passed unchanged.

    Args:
        model: maps B×C×h×w to B×C'×h×w (same spatial size).
        x: B×C×H×W or C×H×W.
        tile: tile size in pixels.
        overlap: pixels shared by neighbouring tiles, ``0 <= overlap < tile``.
        multiple: spatial multiple the model needs (default: from the model, see above).
        batch_size: tiles per forward pass.
        progress: show a tqdm progress bar.
        output_device: where the output is accumulated.
    """
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a B×C×H×W or C×H×W tensor, got {shape}")
    if multiple is not None and (not isinstance(multiple, int) or multiple < 1):
        raise ValueError(f"multiple must be a positive integer, got {multiple}")
    rule = size_requirements(model) if multiple is None else SizeRequirements(multiple_of=multiple)
    if tile < 1 or batch_size < 1:
        raise ValueError(f"tile and batch_size must be positive, got {tile} and {batch_size}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must satisfy 0 <= overlap < tile ({tile}), got {overlap}")
    unbatched = x.dim() == 3
    images = x.unsqueeze(0) if unbatched else x
    batch, _, height, width = images.shape
    output_device = torch.device(output_device) if output_device is not None else x.device
    tile = _accepted(tile, rule)
    tile_h = tile if height >= tile else _accepted(height, rule)
    tile_w = tile if width >= tile else _accepted(width, rule)
    if rule.square:
        tile_h = tile_w = max(tile_h, tile_w)
    overlap_h, overlap_w = min(overlap, tile_h - 1), min(overlap, tile_w - 1)
    padded_h, padded_w = max(height, tile_h), max(width, tile_w)
    rows = _tile_offsets(padded_h, tile_h, tile_h - overlap_h)
    cols = _tile_offsets(padded_w, tile_w, tile_w - overlap_w)
    boxes = [(top, left) for top in rows for left in cols]
    # which tile edges are inner edges (ramped); tiles with the same edges share a window
    edges = {
        (top, left): (top > 0, top + tile_h < padded_h, left > 0, left + tile_w < padded_w)
        for top, left in boxes
    }
    windows = {
        flags: torch.outer(
            _ramp(tile_h, overlap_h, flags[0], flags[1]),
            _ramp(tile_w, overlap_w, flags[2], flags[3]),
        ).to(output_device)
        for flags in set(edges.values())
    }
    weight_sum = torch.zeros(padded_h, padded_w, device=output_device)
    for (top, left), flags in edges.items():
        weight_sum[top : top + tile_h, left : left + tile_w] += windows[flags]
    per_sample = _per_sample_names(forward_kwargs, batch)
    chunks = [boxes[i : i + batch_size] for i in range(0, len(boxes), batch_size)]
    outputs: list[torch.Tensor] = []
    with _tile_counter(batch * len(boxes), progress) as update:
        for index in range(batch):
            image = pad_to_size(images[index : index + 1], padded_h, padded_w)
            results = (
                _forward_tiles(
                    model,
                    image,
                    chunk,
                    (tile_h, tile_w),
                    _kwargs_for(forward_kwargs, per_sample, index, len(chunk)),
                    update,
                ).to(output_device)
                for chunk in chunks
            )
            first = next(results)
            accumulated = torch.zeros(first.shape[1], padded_h, padded_w, device=output_device)
            for chunk, result in zip(chunks, itertools.chain([first], results), strict=True):
                for (top, left), tile_out in zip(chunk, result, strict=True):
                    window = windows[edges[(top, left)]]
                    accumulated[:, top : top + tile_h, left : left + tile_w] += tile_out * window
            outputs.append((accumulated / weight_sum)[:, :height, :width].to(first.dtype))
    out = torch.stack(outputs)
    return out[0] if unbatched else out
