"""Content alignment: bring a stage feature to the prompts' size and width."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ContentAlignment"]


class ContentAlignment(nn.Module):
    """Resize ``B×C×H×W`` to ``B×C×s×s`` (bilinear) and project to ``d`` channels (1×1 conv).

    The learned projection replaces the channel padding / truncation of the authors' code and
    works for any ``C`` versus ``d``.
    """

    def __init__(self, channels: int, dim: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.project = nn.Conv2d(channels, dim, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.project(x)
