"""Low-light capture: gamma darkening, exposure scaling and Poisson–Gaussian sensor noise."""

from __future__ import annotations

import torch

from pip_adapter.data.degradations._common import (
    SampledDegradation,
    as_image_batch,
    normal,
    per_image,
    poisson,
    restore_layout,
)

__all__ = ["LowLight", "low_light"]

LOWLIGHT_PARAMETERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "gamma": ((1.5, 2.5), (1.0, 5.0)),
    "scale": ((0.1, 0.4), (0.01, 1.0)),
    "photons": ((200.0, 2000.0), (1.0, 1e6)),
    "read_noise": ((0.5, 2.5), (0.0, 25.0)),
}


def low_light(
    clean: torch.Tensor,
    gamma: float | None = None,
    scale: float | None = None,
    photons: float | None = None,
    read_noise: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Simulate an under-exposed capture, like the low / normal pairs of LOL.

    The signal is ``scale · clean ** gamma`` (gamma compresses the dark tones further, as in the
    usual synthetic low-light pipelines), photon shot noise makes it
    ``Poisson(photons · signal) / photons``, Gaussian read noise is added and the result is
    clipped and quantised to 8 bits, as a camera would store it.

    Args:
        clean: B×3×H×W (or 3×H×W) in [0, 1].
        gamma: darkening exponent; default range [1.5, 2.5], accepted [1, 5].
        scale: exposure factor; default range [0.1, 0.4], accepted [0.01, 1].
        photons: photons collected at full intensity (fewer = noisier); default range
            [200, 2000], accepted [1, 1e6].
        read_noise: standard deviation of the read noise on the 0–255 scale; default range
            [0.5, 2.5], accepted [0, 25].
        generator: torch.Generator for reproducible draws.

    Parameters left as ``None`` are drawn per image from their default range.
    """
    batch, unbatched = as_image_batch(clean, "clean")
    n, device = batch.shape[0], batch.device
    given = {"gamma": gamma, "scale": scale, "photons": photons, "read_noise": read_noise}
    values = {
        name: per_image(given[name], name, sample, valid, n, generator, device).view(n, 1, 1, 1)
        for name, (sample, valid) in LOWLIGHT_PARAMETERS.items()
    }
    signal = values["scale"] * batch ** values["gamma"]
    counts = poisson(signal * values["photons"], generator)
    dark = counts / values["photons"] + values["read_noise"] / 255.0 * normal(
        batch.shape, generator, device
    )
    dark = torch.round(dark.clamp(0, 1) * 255.0) / 255.0
    return restore_layout(dark, clean, unbatched)


class LowLight(SampledDegradation):
    """Module form of ``low_light``; parameters left ``None`` are sampled per image."""

    function = staticmethod(low_light)
    ranges = LOWLIGHT_PARAMETERS

    def __init__(
        self,
        gamma: float | None = None,
        scale: float | None = None,
        photons: float | None = None,
        read_noise: float | None = None,
    ) -> None:
        super().__init__(gamma=gamma, scale=scale, photons=photons, read_noise=read_noise)
