"""Resampling between a stage feature and the prompt's grid, as matrix products.

Area pooling onto the ``s×s`` grid and bilinear resizing back are both separable linear maps:
one small matrix along the height and one along the width. As matrix products they run on
the BLAS kernels in either memory layout (the pooling and bilinear kernels of ``torch`` are
slow on ``B×C×H×W`` tensors with many channels), the resize can add its result to a tensor
in the same product, and exported graphs keep the height and width dynamic (adaptive pooling
exports with the example's fixed windows). Outside tracing the matrices are cached per size.

A feed-forward on the feature pooled by a stride ``k`` (a map only ``k`` times smaller, where
such products would multiply mostly by zeros) pools and resizes back with torch's kernels
instead: ``stride_pool`` and ``upsample_add``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pip_adapter.caching import constant, eager
from pip_adapter.layers import add_product

__all__ = ["area_pool", "pooled_tiles", "resize", "resize_add", "stride_pool", "upsample_add"]


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


def _box(channels: int, stride: int, like: torch.Tensor) -> torch.Tensor:
    """Depth-wise ``stride×stride`` kernel of ``channels`` averaging its window."""
    return torch.full(
        (channels, 1, stride, stride), 1 / stride**2, dtype=like.dtype, device=like.device
    )


def pooled_tiles(x: torch.Tensor, size: int, stride: int) -> bool:
    """Whether ``area_pool`` averages ``x`` onto the ``size×size`` grid from ``x`` pooled by
    ``stride``: eager, ``x``'s sides multiples of ``stride·size`` (every bin whole windows)."""
    height, width = x.shape[-2:]
    return eager() and height % (stride * size) == width % (stride * size) == 0


def area_pool(
    x: torch.Tensor, size: int, pooled: torch.Tensor | None = None, stride: int = 1
) -> torch.Tensor:
    """``adaptive_avg_pool2d(x, size)`` as two matrix products (``x`` itself when it is
    already ``size×size``, outside tracing).

    ``pooled``, ``x`` average-pooled by ``stride`` (``stride_pool``), gives the same means
    from a ``stride²`` times smaller tensor where every bin is whole windows of it
    (``pooled_tiles``)."""
    height, width = x.shape[-2:]
    if pooled is not None and pooled_tiles(x, size, stride):
        x, height, width = pooled, height // stride, width // stride
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


def stride_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``F.avg_pool2d(x, stride, ceil_mode=True)``: windows past the border average what they
    hold (``x`` itself for stride 1). Eager on the CPU, where the windows tile ``x``, a
    depth-wise convolution with a ``1/stride²`` kernel: the same means, where torch's pooling
    kernel is several times slower on a ``B×C×H×W`` tensor (measured there only). Not under
    autocast, which would run the convolution in its low dtype where pooling keeps ``x``'s."""
    if stride == 1:
        return x
    height, width = x.shape[-2:]
    on_cpu = x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
    if on_cpu and eager() and height % stride == width % stride == 0:
        box = constant(_box, x.shape[1], stride, like=x)
        return F.conv2d(x, box, stride=stride, groups=x.shape[1])
    return F.avg_pool2d(x, stride, ceil_mode=True)


def upsample_add(x: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """``x + F.interpolate(small, x's size, mode="bilinear")`` by torch's bilinear kernel, for
    a map a few times smaller than ``x`` (each pixel weighs 2×2 of its values, where
    ``resize_add``'s products would weigh all of a row's); the sum is written into the resized
    map (a tensor of its own) when both have the same dtype: one full-size tensor made."""
    resized = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
    if resized.dtype == x.dtype and resized.shape == x.shape:
        return resized.add_(x)
    return x + resized
