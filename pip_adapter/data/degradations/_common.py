"""Input checks and seeded random draws shared by the synthetic degradations.

Random numbers are drawn on the generator's device and then moved to the image's device, so a
CPU ``torch.Generator`` gives the same degradation for a CPU and a GPU image. Without a
generator, torch's global RNG on the image's device is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

# values outside [0, 1] by less than this (float round-off) are clamped instead of rejected
_RANGE_TOLERANCE = 1e-4


def as_image_batch(image: torch.Tensor, name: str = "image") -> tuple[torch.Tensor, bool]:
    """Validate an RGB image (3×H×W) or batch (B×3×H×W) in [0, 1].

    Returns the batch as float32 (B×3×H×W) and whether the input had no batch dimension.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if not image.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor in [0, 1], got dtype {image.dtype}"
        )
    unbatched = image.dim() == 3
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"{name} must have shape B×3×H×W or 3×H×W, got {tuple(image.shape)}")
    if image.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(image.shape)}")
    batch = image.unsqueeze(0) if unbatched else image
    low, high = batch.min().item(), batch.max().item()
    if not (low >= -_RANGE_TOLERANCE and high <= 1 + _RANGE_TOLERANCE):
        raise ValueError(f"{name} values must lie in [0, 1], got min {low:.4g} and max {high:.4g}")
    return batch.float().clamp(0, 1), unbatched


def restore_layout(batch: torch.Tensor, like: torch.Tensor, unbatched: bool) -> torch.Tensor:
    """Clip to [0, 1] and give ``batch`` the dtype and (un)batched layout of ``like``."""
    out = batch.clamp(0, 1).to(like.dtype)
    return out[0] if unbatched else out


def _draw(
    sample: Callable[[torch.device], torch.Tensor],
    generator: torch.Generator | None,
    device: torch.device,
) -> torch.Tensor:
    source = generator.device if generator is not None else device
    return sample(source).to(device)


def uniform(
    shape: Sequence[int],
    low: float,
    high: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> torch.Tensor:
    """Uniform draws in [low, high)."""
    draws = _draw(
        lambda d: torch.rand(tuple(shape), generator=generator, device=d), generator, device
    )
    return low + (high - low) * draws


def normal(
    shape: Sequence[int], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Standard normal draws."""
    return _draw(
        lambda d: torch.randn(tuple(shape), generator=generator, device=d), generator, device
    )


def poisson(rates: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Poisson draws with the given (non-negative) rates, on the rates' device."""
    return _draw(lambda d: torch.poisson(rates.to(d), generator=generator), generator, rates.device)


def choice(
    values: Sequence[float], n: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``n`` draws (with replacement) from ``values``."""
    index = _draw(
        lambda d: torch.randint(len(values), (n,), generator=generator, device=d), generator, device
    )
    return torch.tensor(list(values), dtype=torch.float32, device=device)[index]


def per_image(
    value: float | None,
    name: str,
    sample_range: tuple[float, float],
    valid: tuple[float, float],
    n: int,
    generator: torch.Generator | None,
    device: torch.device,
) -> torch.Tensor:
    """One value per image: ``value`` if given (checked against ``valid``), else uniform draws.

    ``valid`` is the closed range of accepted fixed values; ``sample_range`` the default range.
    """
    if value is None:
        return uniform((n,), *sample_range, generator, device)
    value = check_scalar(value, name, valid)
    return torch.full((n,), value, dtype=torch.float32, device=device)


def check_scalar(value: float, name: str, valid: tuple[float, float]) -> float:
    """``value`` as a float, or ValueError if it is not a finite number in ``valid``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or None, got {type(value).__name__}")
    low, high = valid
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


class SampledDegradation(nn.Module):
    """Module form of a degradation function whose parameters are fixed or drawn per image.

    Subclasses name the ``function`` and its ``ranges`` table (parameter name -> (default
    sampling range, accepted range)); values given to the constructor are checked against the
    accepted range once, and ``None`` leaves a parameter to be sampled at every call. (Not
    ``parameters``: that name is nn.Module's method.)
    """

    function: Callable[..., torch.Tensor]
    ranges: dict[str, tuple[tuple[float, float], tuple[float, float]]]

    def __init__(self, **given: float | None) -> None:
        super().__init__()
        self.params = {
            name: None if value is None else check_scalar(value, name, self.ranges[name][1])
            for name, value in given.items()
        }

    def forward(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return type(self).function(clean, **self.params, generator=generator)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.params.items())
