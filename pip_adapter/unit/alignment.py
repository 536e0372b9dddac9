"""Content alignment: bring a stage feature to the prompts' size and width."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pip_adapter.unit.resampling import area_pool

__all__ = ["ContentAlignment"]

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

    def downsample(
        self, x: torch.Tensor, pooled: torch.Tensor | None = None, stride: int = 1
    ) -> torch.Tensor:
        """``x`` on the prompt's ``s×s`` grid, channels unchanged; ``"area"`` may average
        ``pooled``, ``x`` already average-pooled by ``stride``, instead (``area_pool``)."""
        if self.resample == "bilinear":
            return F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False
            )
        return area_pool(x, self.size, pooled, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.downsample(x))
