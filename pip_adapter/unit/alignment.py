"""Content alignment: bring a stage feature to the prompts' size and width."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ContentAlignment", "area_pool"]

RESAMPLING = ("bilinear", "area")


class ContentAlignment(nn.Module):
    """Resize ``B×C×H×W`` to ``B×C×s×s`` and project to ``d`` channels (1×1 conv).

    ``resample="bilinear"`` is the authors' resize; ``"area"`` averages every pixel of the
    feature into the ``s×s`` grid (adaptive average pooling), which does not alias when the
    feature is much larger than the prompt. The learned projection replaces the channel
    padding / truncation of the authors' code and works for any ``C`` versus ``d``.
    """

    def __init__(self, channels: int, dim: int, size: int, resample: str = "bilinear") -> None:
        super().__init__()
        if resample not in RESAMPLING:
            raise ValueError(f"resample must be one of {RESAMPLING}, got {resample!r}")
        self.size = size
        self.resample = resample
        self.project = nn.Conv2d(channels, dim, kernel_size=1, bias=False)

    def downsample(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the prompt's ``s×s`` grid, channels unchanged."""
        if self.resample == "bilinear":
            return F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False
            )
        if torch.compiler.is_compiling():  # torch.compile, torch.export and ONNX export
            return area_pool(x, self.size)
        return F.adaptive_avg_pool2d(x, self.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.downsample(x))


def _bin_means(length: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """``size×length`` matrix whose row ``i`` averages the inputs of adaptive pooling's bin
    ``i``: ``[floor(i·length/size), ceil((i+1)·length/size))``."""
    i = torch.arange(size, device=like.device)[:, None]
    j = torch.arange(length, device=like.device)[None, :]
    inside = (j >= (i * length) // size) & (j < ((i + 1) * length + size - 1) // size)
    weights = inside.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def area_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """``adaptive_avg_pool2d(x, size)`` as two matrix products, whose sizes follow the input's:
    exported graphs keep the height and width dynamic (adaptive pooling exports with the
    example's fixed windows)."""
    rows = _bin_means(x.shape[-2], size, x)
    cols = _bin_means(x.shape[-1], size, x)
    return rows @ x @ cols.T
