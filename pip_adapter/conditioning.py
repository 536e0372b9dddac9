"""Degradation vocabulary and the per-sample degradation weights that steer PIP."""

from __future__ import annotations

import torch

__all__ = ["DEFAULT_DEGRADATIONS", "check_weights"]

DEFAULT_DEGRADATIONS: tuple[str, ...] = ("noise", "rain", "haze", "blur", "lowlight")


def check_weights(weights: torch.Tensor, batch: int, num_degradations: int) -> torch.Tensor:
    """Validate ``B×T`` degradation weights and normalise each row to sum to 1.

    Raises ValueError for a wrong shape or a non-floating dtype, and (outside ``torch.compile``
    tracing, where data-dependent checks would break the graph) for negative or non-finite
    entries and all-zero rows.
    """
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor, got {type(weights).__name__}")
    if weights.shape != (batch, num_degradations):
        raise ValueError(
            f"weights must have shape (batch, num_degradations) = ({batch}, {num_degradations}), "
            f"got {tuple(weights.shape)}"
        )
    if not weights.is_floating_point():
        raise ValueError(f"weights must be a floating-point tensor, got dtype {weights.dtype}")
    total = weights.sum(dim=1, keepdim=True)
    if not torch.compiler.is_compiling():
        if not torch.isfinite(weights).all():
            raise ValueError("weights contain NaN or infinite values")
        if (weights < 0).any():
            raise ValueError("weights must be non-negative")
        zero_rows = (total.squeeze(1) == 0).nonzero().flatten().tolist()
        if zero_rows:
            raise ValueError(
                f"weights rows {zero_rows} are all zero; each sample needs a positive total weight"
            )
    return weights / total
