"""Gated depth-wise convolutional feed-forward blocks used inside the PIP unit."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FFN_EXPANSION", "DualGatedFeedForward", "GatedDconvFeedForward"]

# Restormer's feed-forward expansion (hidden width = int(expansion · dim)); PIP's units use it too
FFN_EXPANSION = 2.66


class GatedDconvFeedForward(nn.Module):
    """Restormer's GDFN: 1×1 expand, 3×3 depth-wise conv, ``gelu(a) * b`` gate, 1×1 project.

    ``zero_init_output`` starts the output projection at zero so that a residual branch built
    on this block is the identity at initialisation.
    """

    def __init__(
        self, dim: int, expansion: float = FFN_EXPANSION, zero_init_output: bool = False
    ) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, kernel_size=1, bias=False)
        self.dwconv = nn.Conv2d(
            2 * hidden, 2 * hidden, kernel_size=3, padding=1, groups=2 * hidden, bias=False
        )
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=False)
        if zero_init_output:
            nn.init.zeros_(self.project_out.weight)

    def gate(self, hidden: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """``gelu(a) * b`` for the halves ``a, b`` of ``hidden`` along ``dim``."""
        a, b = hidden.chunk(2, dim=dim)
        return F.gelu(a) * b

    def gated(self, x: torch.Tensor) -> torch.Tensor:
        """The gated hidden features of ``x``, before the output projection (which a caller may
        fuse with its residual, ``project_add``)."""
        return self.gate(self.dwconv(self.project_in(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project_out(self.gated(x))


class DualGatedFeedForward(GatedDconvFeedForward):
    """PIP's dual-gated feed-forward: the gate is ``gelu(a) * b + gelu(b) * a``."""

    def gate(self, hidden: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """``gelu(a) * b + gelu(b) * a`` for the halves ``a, b`` of ``hidden`` along ``dim``,
        in three kernels (one gelu over both halves, a product, a fused multiply-add into the
        product: no further tensor)."""
        a, b = hidden.chunk(2, dim=dim)
        gelu_a, gelu_b = F.gelu(hidden).chunk(2, dim=dim)
        return (gelu_a * b).addcmul_(gelu_b, a)
