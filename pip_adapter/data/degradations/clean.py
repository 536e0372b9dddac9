"""The "clean" degradation: an image that needs nothing, returned unchanged."""

from __future__ import annotations

import torch
from torch import nn

from pip_adapter.data.degradations._common import as_image_batch

__all__ = ["NoDegradation", "no_degradation"]


def no_degradation(clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a copy of ``clean`` (same shape, dtype, device and values).

    The degradation named ``"clean"``: it lets a dataset hold images that need no restoration,
    so that a model and a sensor can learn to leave them alone. The input is checked like every
    degradation's (RGB, floating point, in [0, 1]); ``generator`` is accepted for a uniform call
    and draws nothing.
    """
    as_image_batch(clean, "clean")
    return clean.clone()


class NoDegradation(nn.Module):
    """Module form of ``no_degradation`` (the ``"clean"`` degradation)."""

    def forward(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return no_degradation(clean, generator)
