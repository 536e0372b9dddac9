"""Additive white Gaussian noise, as in the BSD68 / CBSD68 denoising protocol."""

from __future__ import annotations

import torch
from torch import nn

from pip_adapter.data.degradations._common import (
    as_image_batch,
    check_scalar,
    choice,
    normal,
    restore_layout,
)

__all__ = ["NOISE_SIGMAS", "GaussianNoise", "gaussian_noise"]

NOISE_SIGMAS: tuple[float, ...] = (15.0, 25.0, 50.0)


def _check_sigma(sigma: float) -> float:
    check_scalar(sigma, "sigma", (float("-inf"), float("inf")))
    if not 0 < sigma <= 255:
        raise ValueError(f"sigma must be in (0, 255] (noise level on the 0–255 scale), got {sigma}")
    return float(sigma)


def gaussian_noise(
    clean: torch.Tensor,
    sigma: float | None = None,
    quantize: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma / 255``, then clip to [0, 1].

    Follows the BSD68 protocol of denoising papers: the clean image is first quantised to 8 bits
    (``quantize=True``; real test images are 8-bit files), then i.i.d. noise is added to every
    pixel and channel.

    Args:
        clean: B×3×H×W (or 3×H×W) in [0, 1].
        sigma: noise level on the 0–255 scale, any value in (0, 255]. ``None`` draws one per
            image from {15, 25, 50}, the three levels of the all-in-one benchmarks.
        quantize: round the clean image to 8-bit levels before adding noise.
        generator: torch.Generator for reproducible draws.
    """
    batch, unbatched = as_image_batch(clean, "clean")
    n, device = batch.shape[0], batch.device
    if sigma is None:
        sigmas = choice(NOISE_SIGMAS, n, generator, device)
    else:
        sigmas = torch.full((n,), _check_sigma(sigma), device=device)
    if quantize:
        batch = torch.round(batch * 255.0) / 255.0
    noisy = batch + sigmas.view(n, 1, 1, 1) / 255.0 * normal(batch.shape, generator, device)
    return restore_layout(noisy, clean, unbatched)


class GaussianNoise(nn.Module):
    """Module form of ``gaussian_noise`` (fixed ``sigma``, or ``None`` to sample)."""

    def __init__(self, sigma: float | None = None, quantize: bool = True) -> None:
        super().__init__()
        self.sigma = None if sigma is None else _check_sigma(sigma)
        self.quantize = quantize

    def forward(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return gaussian_noise(clean, self.sigma, self.quantize, generator)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, quantize={self.quantize}"
