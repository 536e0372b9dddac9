"""Motion blur with random camera-shake kernels (GoPro-like)."""

from __future__ import annotations

import math

import torch
from kornia.filters import filter2d

from pip_adapter.data.degradations._common import (
    SampledDegradation,
    as_image_batch,
    normal,
    per_image,
    restore_layout,
)

__all__ = ["MotionBlur", "motion_blur", "motion_kernels"]

BLUR_PARAMETERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "length": ((7.0, 21.0), (1.0, 101.0)),
    "angle": ((0.0, 180.0), (-360.0, 360.0)),
    "shake": ((0.0, 1.0), (0.0, 2.0)),
}

_TRAJECTORY_STEPS = 64


def motion_kernels(
    length: torch.Tensor,
    angle: torch.Tensor,
    shake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random camera-shake blur kernels, B×K×K, each summing to 1.

    Each kernel is the path of a point during the exposure: it starts in direction ``angle``
    (degrees) and its heading and speed wander as a random walk scaled by ``shake`` (0 gives a
    straight line), and the path is scaled so that its longer bounding-box side is ``length``
    pixels. The path is splatted bilinearly on a K×K grid, K the smallest odd size that holds the
    longest path of the batch.
    """
    n, device = length.shape[0], length.device
    steps = _TRAJECTORY_STEPS
    turns = normal((n, steps), generator, device) * (0.25 * shake.view(n, 1))
    heading = torch.deg2rad(angle).view(n, 1) + torch.cumsum(turns, dim=1)
    speed = (1 + 0.5 * shake.view(n, 1) * normal((n, steps), generator, device)).abs()
    step = torch.stack([torch.cos(heading), -torch.sin(heading)], dim=-1) * speed.unsqueeze(-1)
    path = torch.cumsum(step, dim=1)
    low, high = path.amin(dim=1, keepdim=True), path.amax(dim=1, keepdim=True)
    extent = (high - low).amax(dim=-1, keepdim=True).clamp_min(1e-6)
    path = (path - (low + high) / 2) * ((length.view(n, 1, 1) - 1).clamp_min(0) / extent)
    size = 2 * math.ceil(length.max().item() / 2) + 3
    path = path + size // 2
    corner = path.floor()
    frac = path - corner
    kernels = torch.zeros(n, size * size, device=device)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        wx = frac[..., 0] if dx else 1 - frac[..., 0]
        wy = frac[..., 1] if dy else 1 - frac[..., 1]
        col = (corner[..., 0] + dx).long().clamp(0, size - 1)
        row = (corner[..., 1] + dy).long().clamp(0, size - 1)
        kernels.scatter_add_(1, row * size + col, wx * wy)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    return kernels.view(n, size, size)


def motion_blur(
    clean: torch.Tensor,
    length: float | None = None,
    angle: float | None = None,
    shake: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Blur each image with its own random motion kernel (see ``motion_kernels``).

    Uniform (spatially invariant) camera-shake blur, the usual synthetic stand-in for GoPro's
    averaged-frame blur; borders are reflected (replicated for images smaller than the kernel,
    so any size works).

    Args:
        clean: B×3×H×W (or 3×H×W) in [0, 1].
        length: blur extent in pixels; default range [7, 21], accepted [1, 101].
        angle: main direction of motion in degrees; default range [0, 180), accepted
            [-360, 360].
        shake: how much the path bends and changes speed (0 = straight, uniform line);
            default range [0, 1], accepted [0, 2].
        generator: torch.Generator for reproducible draws.

    Parameters left as ``None`` are drawn per image from their default range.
    """
    batch, unbatched = as_image_batch(clean, "clean")
    n, device = batch.shape[0], batch.device
    given = {"length": length, "angle": angle, "shake": shake}
    values = {
        name: per_image(given[name], name, sample, valid, n, generator, device)
        for name, (sample, valid) in BLUR_PARAMETERS.items()
    }
    kernels = motion_kernels(values["length"], values["angle"], values["shake"], generator)
    # reflect needs the image to be larger than the kernel's half-width; smaller ones replicate
    reflect = kernels.shape[-1] // 2 < min(batch.shape[-2:])
    blurred = filter2d(batch, kernels, border_type="reflect" if reflect else "replicate")
    return restore_layout(blurred, clean, unbatched)


class MotionBlur(SampledDegradation):
    """Module form of ``motion_blur``; parameters left ``None`` are sampled per image."""

    function = staticmethod(motion_blur)
    ranges = BLUR_PARAMETERS

    def __init__(
        self, length: float | None = None, angle: float | None = None, shake: float | None = None
    ) -> None:
        super().__init__(length=length, angle=angle, shake=shake)
