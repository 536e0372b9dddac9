"""Synthetic rain streaks, ``O = B + S``, in the style of Rain100L."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.filters import filter2d, gaussian_blur2d, get_motion_kernel2d

from pip_adapter.data.degradations._common import (
    SampledDegradation,
    as_image_batch,
    per_image,
    restore_layout,
    uniform,
)

__all__ = ["RainStreaks", "rain_streaks"]

# name: (default sampling range, accepted fixed values)
RAIN_PARAMETERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "density": ((0.002, 0.006), (1e-5, 0.1)),
    "length": ((15.0, 35.0), (3.0, 101.0)),
    "angle": ((-25.0, 25.0), (-80.0, 80.0)),
    "intensity": ((0.5, 0.9), (0.0, 1.0)),
}


def _streak_kernels(lengths: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """One streak kernel per image (B×K×K, peak 1), ``K`` the largest odd length in the batch.

    A kornia line kernel along the rain direction, faded towards both ends (elliptic profile)
    so that streaks taper like real ones instead of ending abruptly.
    """
    sizes = [2 * (round(length) // 2) + 1 for length in lengths.tolist()]
    size = max(sizes)
    kernels = []
    for k, angle in zip(sizes, angles.tolist(), strict=True):
        # kornia's angle turns a horizontal line counter-clockwise; rain falls near vertical
        kernel = get_motion_kernel2d(k, 90.0 + angle, 0.0, mode="bilinear")[0]
        offsets = torch.arange(k, dtype=kernel.dtype) - k // 2
        rows, cols = offsets.view(k, 1), offsets.view(1, k)
        # position along the streak, whose direction is (sin a, cos a) in (x, y-down)
        along = cols * math.sin(math.radians(angle)) + rows * math.cos(math.radians(angle))
        taper = (1 - (along / (k / 2)).square()).clamp_min(0).sqrt()
        kernel = kernel * taper
        kernel = kernel / kernel.max()
        kernels.append(F.pad(kernel, [(size - k) // 2] * 4))
    return torch.stack(kernels).to(lengths.device)


def rain_streaks(
    clean: torch.Tensor,
    density: float | None = None,
    length: float | None = None,
    angle: float | None = None,
    intensity: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add one layer of bright, sparse, oriented rain streaks and clip to [0, 1].

    Streaks are sparse random drops (random brightness) smeared by a line kernel, so each image
    has one dominant rain direction, as in Rain100L. The layer is grey and added to the photo.
    Sizes are in pixels: the same parameters give relatively longer streaks on smaller images.

    Args:
        clean: B×3×H×W (or 3×H×W) in [0, 1].
        density: fraction of pixels that start a streak; default range [0.002, 0.006],
            accepted (0, 0.1].
        length: streak length in pixels; default range [15, 35], accepted [3, 101].
        angle: tilt from vertical in degrees (positive leans to the right going down);
            default range [-25, 25], accepted [-80, 80].
        intensity: brightness added at the core of a full-strength streak; default range
            [0.5, 0.9], accepted [0, 1].
        generator: torch.Generator for reproducible draws.

    Parameters left as ``None`` are drawn per image from their default range.
    """
    batch, unbatched = as_image_batch(clean, "clean")
    n, _, height, width = batch.shape
    device = batch.device
    given = {"density": density, "length": length, "angle": angle, "intensity": intensity}
    values = {
        name: per_image(given[name], name, sample, valid, n, generator, device)
        for name, (sample, valid) in RAIN_PARAMETERS.items()
    }
    kernels = _streak_kernels(values["length"], values["angle"])
    margin = kernels.shape[-1] // 2
    canvas = (n, 1, height + 2 * margin, width + 2 * margin)
    drops = uniform(canvas, 0.0, 1.0, generator, device) < values["density"].view(n, 1, 1, 1)
    drops = drops * uniform(canvas, 0.3, 1.0, generator, device)
    streaks = filter2d(drops, kernels, border_type="constant")
    streaks = gaussian_blur2d(streaks, (5, 5), (0.6, 0.6))
    streaks = streaks[..., margin : margin + height, margin : margin + width].clamp(0, 1)
    rainy = batch + values["intensity"].view(n, 1, 1, 1) * streaks
    return restore_layout(rainy, clean, unbatched)


class RainStreaks(SampledDegradation):
    """Module form of ``rain_streaks``; parameters left ``None`` are sampled per image."""

    function = staticmethod(rain_streaks)
    ranges = RAIN_PARAMETERS

    def __init__(
        self,
        density: float | None = None,
        length: float | None = None,
        angle: float | None = None,
        intensity: float | None = None,
    ) -> None:
        super().__init__(density=density, length=length, angle=angle, intensity=intensity)
