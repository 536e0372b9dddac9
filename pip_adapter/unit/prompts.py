"""PIP's two learned prompts: one vector per degradation, and one shared spatial prompt."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BasicRestorationPrompt", "DegradationAwarePrompt"]


class DegradationAwarePrompt(nn.Module):
    """High-level prompt: a ``T×d`` table, one vector per degradation type.

    ``forward(weights)`` mixes the vectors with per-sample weights (``B×T``, rows summing to 1):
    a one-hot row selects one degradation, a soft row blends several. Vectors start orthogonal
    (scaled to unit-variance entries) so that degradations begin as far apart as possible.
    """

    def __init__(self, num_degradations: int, dim: int) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.empty(num_degradations, dim))
        nn.init.orthogonal_(self.prompts)
        with torch.no_grad():
            self.prompts.mul_(math.sqrt(dim))

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return weights.to(self.prompts.dtype) @ self.prompts

    def regularization(self, angle_degrees: float = 90.0) -> torch.Tensor:
        """``sum_{i<j} relu(cos(D_i, D_j) - cos(angle))``: keeps degradation prompts apart."""
        unit = F.normalize(self.prompts, dim=-1)
        cosine = unit @ unit.t()
        upper = torch.triu(torch.ones_like(cosine, dtype=torch.bool), diagonal=1)
        return F.relu(cosine[upper] - math.cos(math.radians(angle_degrees))).sum()


class BasicRestorationPrompt(nn.Module):
    """Low-level prompt: a ``d×s×s`` map shared by every degradation.

    It carries what restoring any degradation has in common and provides the queries of the
    prompt-to-prompt interaction; ``forward()`` returns it as a ``1×d×s×s`` batch.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.prompt = nn.Parameter(torch.randn(1, dim, size, size))

    def forward(self) -> torch.Tensor:
        return self.prompt
