"""Haze by the atmospheric scattering model, with RESIDE-like parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from torch import nn

from pip_adapter.data.degradations._common import (
    as_image_batch,
    check_scalar,
    normal,
    per_image,
    restore_layout,
    uniform,
)

__all__ = ["FAR_DEPTH", "AtmosphericHaze", "atmospheric_haze", "synthetic_depth"]

# depth of the farthest point (sky, horizon) in the synthetic depth maps, in the units of 1/beta
FAR_DEPTH = 10.0

HAZE_PARAMETERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "beta": ((0.04, 0.2), (0.0, 5.0)),
    "airlight": ((0.8, 1.0), (0.0, 1.0)),
}


def synthetic_depth(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Smooth outdoor-like depth maps, B×1×H×W, in [0, FAR_DEPTH].

    A ground plane below a random, slightly tilted horizon (depth grows like 1 / distance to
    the horizon, as for a camera looking over flat ground), everything above the horizon at the
    far depth, modulated by smooth low-frequency variation (hills, buildings, trees).
    """
    device = torch.device(device)
    horizon = uniform((batch, 1, 1), 0.1, 0.5, generator, device)
    slope = uniform((batch, 1, 1), -0.15, 0.15, generator, device)
    closeness = uniform((batch, 1, 1), 0.05, 0.15, generator, device)
    rows = torch.linspace(0, 1, height, device=device).view(1, height, 1)
    cols = torch.linspace(-0.5, 0.5, width, device=device).view(1, 1, width)
    below = rows - (horizon + slope * cols)
    depth = torch.where(
        below > 0, (closeness / below.clamp_min(1e-6)).clamp(max=1.0), torch.ones_like(below)
    )
    coarse = normal((batch, 1, 4, 4), generator, device)
    variation = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    depth = depth.unsqueeze(1) * torch.exp(0.2 * variation)
    sigma = 0.03 * max(height, width)
    size = 2 * int(2 * sigma) + 1
    depth = gaussian_blur2d(depth, (size, size), (sigma, sigma), border_type="replicate")
    return FAR_DEPTH * depth.clamp(0, 1)


def atmospheric_haze(
    clean: torch.Tensor,
    beta: float | None = None,
    airlight: float | None = None,
    depth: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Hazy image ``I = J·t + A·(1 − t)`` with transmission ``t = exp(−beta·depth)``.

    The model and parameter ranges follow RESIDE's outdoor training set (OTS).

    Args:
        clean: B×3×H×W (or 3×H×W) in [0, 1], the haze-free scene radiance ``J``.
        beta: scattering coefficient; default range [0.04, 0.2] (RESIDE OTS), accepted [0, 5].
        airlight: global atmospheric light ``A`` (grey); default range [0.8, 1.0], accepted
            [0, 1].
        depth: scene depth, non-negative, shaped B×1×H×W, 1×H×W or H×W (broadcast over the
            batch), in units where the farthest visible point is about 10. ``None`` draws a smooth
            synthetic map with ``synthetic_depth`` (range [0, 10]).
        generator: torch.Generator for reproducible draws.
    """
    batch, unbatched = as_image_batch(clean, "clean")
    n, _, height, width = batch.shape
    device = batch.device
    betas = per_image(beta, "beta", *HAZE_PARAMETERS["beta"], n, generator, device)
    lights = per_image(airlight, "airlight", *HAZE_PARAMETERS["airlight"], n, generator, device)
    if depth is None:
        depth = synthetic_depth(n, height, width, generator, device)
    else:
        depth = _check_depth(depth, n, height, width).to(device)
    transmission = torch.exp(-betas.view(n, 1, 1, 1) * depth)
    hazy = batch * transmission + lights.view(n, 1, 1, 1) * (1 - transmission)
    return restore_layout(hazy, clean, unbatched)


def _check_depth(depth: torch.Tensor, n: int, height: int, width: int) -> torch.Tensor:
    if not isinstance(depth, torch.Tensor) or not depth.is_floating_point():
        raise TypeError("depth must be a floating-point torch.Tensor")
    shaped = depth.reshape(1, 1, *depth.shape) if depth.dim() == 2 else depth
    shaped = shaped.unsqueeze(0) if shaped.dim() == 3 else shaped
    if shaped.dim() != 4 or shaped.shape[1:] != (1, height, width) or shaped.shape[0] not in (1, n):
        raise ValueError(
            f"depth must be shaped {n}×1×{height}×{width}, 1×{height}×{width} or "
            f"{height}×{width}, got {tuple(depth.shape)}"
        )
    if not torch.isfinite(shaped).all() or (shaped < 0).any():
        raise ValueError("depth must be finite and non-negative")
    return shaped.float()


class AtmosphericHaze(nn.Module):
    """Module form of ``atmospheric_haze`` (synthetic depth; ``None`` samples a parameter)."""

    def __init__(self, beta: float | None = None, airlight: float | None = None) -> None:
        super().__init__()
        self.beta = None if beta is None else check_scalar(beta, "beta", HAZE_PARAMETERS["beta"][1])
        self.airlight = (
            None
            if airlight is None
            else check_scalar(airlight, "airlight", HAZE_PARAMETERS["airlight"][1])
        )

    def forward(
        self,
        clean: torch.Tensor,
        generator: torch.Generator | None = None,
        depth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return atmospheric_haze(clean, self.beta, self.airlight, depth, generator)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, airlight={self.airlight}"
