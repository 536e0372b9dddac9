"""Synthetic falling snow with a veil, in the style of the Snow100K and CSD training sets."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.filters import filter2d, get_gaussian_kernel2d, get_motion_kernel2d

from pip_adapter.data.degradations._common import (
    SampledDegradation,
    as_image_batch,
    per_image,
    restore_layout,
    uniform,
)

__all__ = ["SNOW_PARAMETERS", "SnowFall", "snowfall"]

# name: (default sampling range, accepted fixed values)
SNOW_PARAMETERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "density": ((0.005, 0.02), (0.0, 0.1)),
    "size": ((2.5, 6.0), (0.5, 20.0)),
    "angle": ((-30.0, 30.0), (-80.0, 80.0)),
    "motion": ((0.0, 12.0), (0.0, 60.0)),
    "veil": ((0.05, 0.3), (0.0, 0.9)),
}

# the three flake layers, far to near: (share of `density`, share of `size`, share of `motion`)
LAYERS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.25, 0.0),
    (0.25, 0.5, 0.5),
    (1 / 16, 1.0, 1.0),
)
# colour of the flakes and of the veil: grey-white, drawn per image (as haze's airlight)
SNOW_WHITE = (0.85, 1.0)


def _odd(value: float) -> int:
    return 2 * math.ceil(value / 2) + 1


def _flake_kernels(radius: torch.Tensor, streak: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """One flake shape per image, B×K×K with peak 1: a soft disc (a Gaussian of σ = radius / 2,
    from kornia) smeared along the fall direction over ``streak`` pixels (none below 2)."""
    sigma = (radius / 2).clamp_min(0.1).cpu()
    disc_size = max(3, _odd(3 * sigma.max().item()))
    discs = get_gaussian_kernel2d(disc_size, torch.stack([sigma, sigma], dim=-1))
    fall_size = max(3, _odd(streak.max().item()))
    falls = torch.zeros(len(sigma), fall_size, fall_size)
    for i, (length, tilt) in enumerate(zip(streak.tolist(), angle.tolist(), strict=True)):
        if length < 2:
            falls[i, fall_size // 2, fall_size // 2] = 1
        else:
            # kornia's angle turns a horizontal line counter-clockwise; snow falls near vertical
            line = get_motion_kernel2d(_odd(length), 90.0 + tilt)[0]
            falls[i] = F.pad(line, [(fall_size - line.shape[-1]) // 2] * 4)
    kernels = filter2d(F.pad(discs, [fall_size // 2] * 4).unsqueeze(1), falls).squeeze(1)
    return (kernels / kernels.amax(dim=(-2, -1), keepdim=True)).to(radius.device)


def _flake_layer(
    shape: torch.Size,
    density: torch.Tensor,
    radius: torch.Tensor,
    streak: torch.Tensor,
    angle: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Opacity (B×1×H×W in [0, 1]) of one layer of flakes of one size, falling at ``angle``."""
    n, _, height, width = shape
    device = density.device
    flakes = _flake_kernels(radius, streak, angle)
    margin = flakes.shape[-1] // 2
    canvas = (n, 1, height + 2 * margin, width + 2 * margin)
    seeds = uniform(canvas, 0.0, 1.0, generator, device) < density.view(n, 1, 1, 1)
    opacity = seeds * uniform(canvas, 0.5, 1.0, generator, device)
    opacity = filter2d(opacity, flakes, border_type="constant")
    return opacity[..., margin : margin + height, margin : margin + width].clamp(0, 1)


def snowfall(
    clean: torch.Tensor,
    density: float | None = None,
    size: float | None = None,
    angle: float | None = None,
    motion: float | None = None,
    veil: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Veil the image and cover it with falling snowflakes of several sizes, then clip to [0, 1].

    As in the synthetic snow sets (Snow100K, CSD): a haze-like veil ``J·(1 − v) + A·v`` first,
    then three layers of soft, grey-white flakes composited over it (``K = z·A + J·(1 − z)``
    with the flakes' opacity ``z``): many small sharp ones far away, fewer medium ones, and few
    large near ones that are motion-blurred along the fall direction. Sizes are in pixels.

    Args:
        clean: B×3×H×W (or 3×H×W) in [0, 1].
        density: small flakes per pixel (the medium layer has 1/4 as many, the large 1/16);
            default range [0.004, 0.016], accepted [0, 0.1].
        size: radius of the large flakes in pixels (medium: half, small: a quarter); default
            range [2, 4.5], accepted [0.5, 20].
        angle: fall direction, degrees from vertical (positive leans to the right going down);
            default range [-30, 30], accepted [-80, 80].
        motion: streak length of the large flakes in pixels (medium: half, small: none);
            default range [0, 12], accepted [0, 60].
        veil: strength ``v`` of the veil (1 − transmission); default range [0.05, 0.3],
            accepted [0, 0.9].
        generator: torch.Generator for reproducible draws.

    Parameters left as ``None`` are drawn per image from their default range; the white ``A``
    of the veil and flakes is drawn per image from [0.85, 1].
    """
    batch, unbatched = as_image_batch(clean, "clean")
    n, device = batch.shape[0], batch.device
    given = {"density": density, "size": size, "angle": angle, "motion": motion, "veil": veil}
    values = {
        name: per_image(given[name], name, sample, valid, n, generator, device)
        for name, (sample, valid) in SNOW_PARAMETERS.items()
    }
    white = uniform((n, 1, 1, 1), *SNOW_WHITE, generator, device)
    veil_strength = values["veil"].view(n, 1, 1, 1)
    out = batch * (1 - veil_strength) + white * veil_strength
    for density_share, size_share, motion_share in LAYERS:
        opacity = _flake_layer(
            batch.shape,
            values["density"] * density_share,
            values["size"] * size_share,
            values["motion"] * motion_share,
            values["angle"],
            generator,
        )
        out = out * (1 - opacity) + white * opacity
    return restore_layout(out, clean, unbatched)


class SnowFall(SampledDegradation):
    """Module form of ``snowfall``; parameters left ``None`` are sampled per image."""

    function = staticmethod(snowfall)
    ranges = SNOW_PARAMETERS

    def __init__(
        self,
        density: float | None = None,
        size: float | None = None,
        angle: float | None = None,
        motion: float | None = None,
        veil: float | None = None,
    ) -> None:
        super().__init__(density=density, size=size, angle=angle, motion=motion, veil=veil)
