"""Each degradation's own low-rank update of a weight matrix, mixed per sample like the prompt."""

from __future__ import annotations

import math

import torch
from torch import nn

from pip_adapter.functional import cast

__all__ = ["DegradationLowRank"]


class DegradationLowRank(nn.Module):
    """Rank-``r`` updates ``B_t A_t`` of an ``out×in`` weight matrix, one per degradation ``t``.

    ``forward(weights)`` (``B×T``, rows summing to 1) returns every sample's update
    ``ΔW_b = Σ_t w_bt B_t A_t`` (``B×out×in``): a one-hot row selects one degradation's update,
    a soft row (a mixture, or a sensor's output in blind mode) blends them, as the
    degradation-aware prompt blends its rows. It gives each degradation weights of its own in a
    layer that the prompts otherwise only steer, as one LoRA per degradation does.

    ``B`` starts at zero (no update: a layer built with it computes what it computes without)
    and ``A`` as a linear layer's weight, as LoRA starts.
    """

    def __init__(self, num_degradations: int, out_features: int, in_features: int, rank: int):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank}")
        self.down = nn.Parameter(torch.empty(num_degradations, rank, in_features))  # A
        self.up = nn.Parameter(torch.zeros(num_degradations, out_features, rank))  # B
        for matrix in self.down:
            nn.init.kaiming_uniform_(matrix, a=math.sqrt(5))

    def extra_repr(self) -> str:
        degradations, rank, in_features = self.down.shape
        return (
            f"num_degradations={degradations}, out_features={self.up.shape[1]}, "
            f"in_features={in_features}, rank={rank}"
        )

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        weights = cast(weights, self.up.dtype)
        return torch.einsum("bt,tor,tri->boi", weights, self.up, self.down)
