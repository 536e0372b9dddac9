"""Layer normalisation over the channels of ``B×C×H×W`` features."""

from __future__ import annotations

import torch
from timm.layers import LayerNorm2d as _TimmLayerNorm2d

__all__ = ["LayerNorm2d"]


class LayerNorm2d(_TimmLayerNorm2d):
    """timm's ``LayerNorm2d`` (same parameters and state dict), made safe to trace.

    timm normalises a channels-last view, so its output has channels-last strides. When traced
    (``torch.export``, ``torch.compile``), a convolution on such a tensor makes the tracer
    guard on the batch size being above 1, and an exported graph would then refuse batch 1;
    traced, the output is made contiguous. Eager calls are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y.contiguous() if torch.compiler.is_compiling() else y
