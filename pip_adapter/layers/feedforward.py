"""Gated depth-wise convolutional feed-forward blocks used inside the PIP unit."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from pip_adapter.caching import eager

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
        product: no further tensor). While gradients are recorded (eager), one autograd node
        whose backward runs five operators where the formula's runs ten (``_DualGate``)."""
        recording = (
            torch.is_grad_enabled()
            and hidden.requires_grad
            and eager()  # a traced graph records the formula's operators
            and not torch._C._are_functorch_transforms_active()  # torch.func: the formula
        )
        if recording:
            return _DualGate.apply(hidden, dim)
        return _dual_gate(hidden, F.gelu(hidden), dim)


def _dual_gate(hidden: torch.Tensor, gelu: torch.Tensor, dim: int) -> torch.Tensor:
    """The gate from ``hidden`` and ``gelu(hidden)``."""
    a, b = hidden.chunk(2, dim=dim)
    gelu_a, gelu_b = gelu.chunk(2, dim=dim)
    return (gelu_a * b).addcmul_(gelu_b, a)


class _DualGate(torch.autograd.Function):
    """The dual gate with its backward written out. Autograd runs two products for each of
    the formula's two products, the gelu's gradient on the joined halves, and the halves'
    gradients joined and summed; this backward writes each half's gradient in place: the
    gradient through the gelu (``grad · b``, ``grad · a``), the gelu's derivative applied to
    both halves at once, then ``grad · gelu(b)`` and ``grad · gelu(a)`` added. On a GPU each
    operator is a kernel launch (issue 14); the gradients are the formula's to rounding."""

    @staticmethod
    def forward(ctx, hidden, dim):
        gelu = F.gelu(hidden)
        ctx.save_for_backward(hidden, gelu)
        ctx.dim = dim
        return _dual_gate(hidden, gelu, dim)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        hidden, gelu = ctx.saved_tensors
        a, b = hidden.chunk(2, dim=ctx.dim)
        through = torch.empty_like(hidden)  # the gradient of gelu(hidden)
        to_a, to_b = through.chunk(2, dim=ctx.dim)
        torch.mul(grad, b, out=to_a)
        torch.mul(grad, a, out=to_b)
        by_hidden = torch.ops.aten.gelu_backward(through, hidden)
        by_a, by_b = by_hidden.chunk(2, dim=ctx.dim)
        gelu_a, gelu_b = gelu.chunk(2, dim=ctx.dim)
        by_a.addcmul_(grad, gelu_b)
        by_b.addcmul_(grad, gelu_a)
        return by_hidden, None
