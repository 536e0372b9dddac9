"""Bias-free 1×1 convolutions as matrix products over the pixels, written channels-last."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["project_add", "project_scaled"]


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """``B×C×H×W`` → ``B×(H·W)×C``: a view for channels-first and channels-last layouts."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[-2] * x.shape[-1], x.shape[1])


def _autocast(x: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type)


def project_add(projection: nn.Conv2d, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``residual + projection(x)`` for a bias-free 1×1 ``projection``, in one batched matrix
    product that adds ``residual`` (batch 1 or ``x``'s) itself.

    The result has ``x``'s shape with channels-last strides: a layer norm over its channels
    (``LayerNorm2d`` reads a channels-last view) then reads contiguous memory instead of
    copying it first, and a residual branch costs one operator instead of two.

    Under autocast it is ``residual + projection(x)`` itself: autocast would run the product,
    residual included, in the lower precision, where the sum keeps the residual's dtype.
    """
    if _autocast(x):
        return residual + projection(x)
    batch, _, height, width = x.shape
    weight = projection.weight.flatten(1).t().expand(batch, -1, -1)  # B×C_in×C_out
    out = torch.baddbmm(_tokens(residual), _tokens(x), weight)
    return out.view(batch, height, width, -1).permute(0, 3, 1, 2)


def project_scaled(projection: nn.Conv2d, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``scale[:, :, None, None] * projection(x)`` for a bias-free 1×1 ``projection`` and one
    scale per sample and output channel (``B×C_out``), folded into the weight of one batched
    matrix product; the result comes channels-last, as ``project_add``'s (under autocast,
    ``scale[:, :, None, None] * projection(x)`` itself: see ``project_add``)."""
    if _autocast(x):
        return scale[:, :, None, None] * projection(x)
    batch, _, height, width = x.shape
    weight = projection.weight.flatten(1).t() * scale[:, None, :]  # B×C_in×C_out
    out = torch.bmm(_tokens(x), weight)
    return out.view(batch, height, width, -1).permute(0, 3, 1, 2)
