"""Resampling between a stage feature and the prompt's grid, as matrix products.

Area pooling onto the ``s×s`` grid and bilinear resizing back are both separable linear maps:
one small matrix along the height and one along the width. As matrix products they run on
the BLAS kernels in either memory layout (the pooling and bilinear kernels of ``torch`` are
slow on ``B×C×H×W`` tensors with many channels), the resize can add its result to a tensor
in the same product, and exported graphs keep the height and width dynamic (adaptive pooling
exports with the example's fixed windows). Outside tracing the matrices are cached per size.
"""

from __future__ import annotations

import torch

from pip_adapter.caching import constant
from pip_adapter.layers import add_product

__all__ = ["area_pool", "resize", "resize_add"]


def _bin_means(length: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """``size×length`` matrix whose row ``i`` averages the inputs of adaptive pooling's bin
    ``i``: ``[floor(i·length/size), ceil((i+1)·length/size))``."""
    i = torch.arange(size, device=like.device)[:, None]
    j = torch.arange(length, device=like.device)[None, :]
    inside = (j >= (i * length) // size) & (j < ((i + 1) * length + size - 1) // size)
    weights = inside.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def _bilinear(length: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """``length×size`` matrix of bilinear interpolation from ``size`` samples to ``length``
    (``align_corners=False``, as ``F.interpolate``): row ``i`` weighs the two inputs around
    ``(i + 0.5)·size/length - 0.5``, clamped to the first and last."""
    dtype = torch.promote_types(like.dtype, torch.float32)
    source = (torch.arange(length, device=like.device, dtype=dtype) + 0.5) * (size / length)
    source = (source - 0.5).clamp_min(0)
    lower = source.floor().clamp_max(size - 1)
    upper = (lower + 1).clamp_max(size - 1)
    fraction = (source - lower).clamp(0, 1)
    j = torch.arange(size, device=like.device, dtype=dtype)[None, :]
    matrix = (1 - fraction)[:, None] * (j == lower[:, None]) + fraction[:, None] * (
        j == upper[:, None]
    )
    return matrix.to(like.dtype)


def area_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """``adaptive_avg_pool2d(x, size)`` as two matrix products (``x`` itself when it is
    already ``size×size``, outside tracing)."""
    height, width = x.shape[-2:]
    if not torch.compiler.is_compiling() and (height, width) == (size, size):
        return x
    rows = constant(_bin_means, height, size, like=x)
    cols = constant(_bin_means, width, size, like=x)
    return rows @ x @ cols.T


def resize(small: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.interpolate(small, (height, width), mode="bilinear")`` for ``B×d×h×w`` ``small``, as
    two matrix products."""
    rows = constant(_bilinear, height, small.shape[-2], like=small)  # H×h
    return rows @ small @ constant(_bilinear, width, small.shape[-1], like=small).T


def resize_add(x: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """``x + F.interpolate(small, x's size, mode="bilinear")`` for ``B×d×H×W`` ``x`` and
    ``B×d×h×w`` ``small``, as two matrix products, the second adding ``x`` (``add_product``:
    under autocast the sum keeps ``x``'s dtype)."""
    batch, dim, height, width = x.shape
    rows = constant(_bilinear, height, small.shape[-2], like=small) @ small  # B×d×H×w
    cols = constant(_bilinear, width, small.shape[-1], like=small).T  # w×W
    out = add_product(
        x.reshape(batch, dim * height, width),
        rows.reshape(batch, dim * height, -1),
        cols.expand(batch, -1, -1),
    )
    return out.view(batch, dim, height, width)
