"""Tiled inference for images too large to restore in one forward pass."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from spandrel import SizeRequirements

from pip_adapter._extras import needs_extra
from pip_adapter.architectures import size_requirements
from pip_adapter.blending import blend_tiles, plan_tiles
from pip_adapter.padding import pad_to_size

__all__ = ["TORCH_OPS", "restore_tiled"]


class _TorchOps:
    """``pip_adapter.blending.ArrayOps`` for torch tensors."""

    def pad(self, image: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return pad_to_size(image, height, width)

    def concat(self, arrays: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat(list(arrays))

    def zeros(self, like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, device=like.device)

    def constant(self, values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(values).to(like.device)

    def finish(self, blended: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return blended.to(like.dtype)


TORCH_OPS = _TorchOps()


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
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    unbatched = x.dim() == 3
    images = x.unsqueeze(0) if unbatched else x
    batch, _, height, width = images.shape
    grid = plan_tiles(height, width, tile, overlap, rule.multiple_of, rule.minimum, rule.square)
    output_device = torch.device(output_device) if output_device is not None else x.device
    per_sample = _per_sample_names(forward_kwargs, batch)
    outputs = []
    with _tile_counter(batch * len(grid.boxes), progress) as update:
        for index in range(batch):

            def run(tiles: torch.Tensor, index: int = index) -> torch.Tensor:
                kwargs = _kwargs_for(forward_kwargs, per_sample, index, tiles.shape[0])
                return model(tiles, **kwargs).to(output_device)

            image = images[index : index + 1]
            outputs.append(blend_tiles(run, image, grid, TORCH_OPS, batch_size, update))
    out = torch.stack(outputs)
    return out[0] if unbatched else out
