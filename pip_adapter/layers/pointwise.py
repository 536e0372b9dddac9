"""Matrix products that add a residual within the product, and bias-free 1×1 convolutions as
such products over the pixels, written channels-last."""

from __future__ import annotations

import torch
from torch import nn

from pip_adapter.caching import eager

__all__ = ["add_product", "project_add", "project_scaled"]


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """``B×C×H×W`` → ``B×(H·W)×C``: a view for channels-first and channels-last layouts."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[-2] * x.shape[-1], x.shape[1])


def _autocast(x: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type)


def add_product(
    residual: torch.Tensor, a: torch.Tensor, b: torch.Tensor, in_place: bool = False
) -> torch.Tensor:
    """``residual + a @ b`` for batched matrices, in one product that adds ``residual`` (which
    broadcasts to the product's shape) itself: one operator and one pass fewer than the sum.

    Under autocast it is ``residual + a @ b`` itself: autocast would run the whole product,
    residual included, in the lower precision, where the sum keeps the residual's dtype (a
    float32 residual stream stays float32, as in the formula the product replaces).

    ``in_place=True`` (for a ``residual`` of the caller's own, of the product's shape, as a
    unit's intermediates are): with gradients off and eager, the product adds into
    ``residual`` itself (``out=``, which FLOP counting still sees), sparing a copy of it and a
    tensor. With gradients on (whose backward may need the tensor overwritten) or while
    compiled or traced (a recorded ``out=`` would also run with gradients on), it is left
    alone."""
    if _autocast(a):
        return residual + a @ b
    if in_place and _may_write():
        return torch.baddbmm(residual, a, b, out=residual)
    return torch.baddbmm(residual, a, b)


def _may_write() -> bool:
    """Whether a product may write into its residual: gradients off, eager (not compiled or
    traced)."""
    return eager() and not torch.is_grad_enabled()


def project_add(projection: nn.Conv2d, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``residual + projection(x)`` for a bias-free 1×1 ``projection``, in one batched matrix
    product that adds ``residual`` (batch 1 or ``x``'s) itself (``add_product``, autocast
    included).

    The result has ``x``'s shape with channels-last strides: a layer norm over its channels
    (``LayerNorm2d`` reads a channels-last view) then reads contiguous memory instead of
    copying it first, and a residual branch costs one operator instead of two.
    """
    batch, _, height, width = x.shape
    weight = projection.weight.flatten(1).t().expand(batch, -1, -1)  # B×C_in×C_out
    out = add_product(_tokens(residual), _tokens(x), weight)
    return out.view(batch, height, width, -1).permute(0, 3, 1, 2)


def project_scaled(projection: nn.Conv2d, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``scale[:, :, None, None] * projection(x)`` for a bias-free 1×1 ``projection`` and one
    scale per sample and output channel (``B×C_out``), folded into the weight of one batched
    matrix product; the result comes channels-last, as ``project_add``'s (under autocast,
    ``scale[:, :, None, None] * projection(x)`` itself: autocast would run the product in the
    lower precision, where the formula keeps the scale's precision)."""
    if _autocast(x):
        return scale[:, :, None, None] * projection(x)
    batch, _, height, width = x.shape
    weight = projection.weight.flatten(1).t() * scale[:, None, :]  # B×C_in×C_out
    out = torch.bmm(_tokens(x), weight)
    return out.view(batch, height, width, -1).permute(0, 3, 1, 2)
