"""Degradations by name, and composites (e.g. rain then noise)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from pip_adapter.data.degradations.blur import MotionBlur, motion_blur
from pip_adapter.data.degradations.clean import NoDegradation, no_degradation
from pip_adapter.data.degradations.haze import AtmosphericHaze, atmospheric_haze
from pip_adapter.data.degradations.jpeg import JpegCompression, jpeg_compression
from pip_adapter.data.degradations.lowlight import LowLight, low_light
from pip_adapter.data.degradations.noise import GaussianNoise, gaussian_noise
from pip_adapter.data.degradations.rain import RainStreaks, rain_streaks
from pip_adapter.data.degradations.snow import SnowFall, snowfall

__all__ = [
    "DEGRADATIONS",
    "DEGRADATION_MODULES",
    "SYNTHETIC_DEGRADATIONS",
    "Compose",
    "build_degradation",
    "degrade",
    "parse_degradations",
]

DegradeFn = Callable[..., torch.Tensor]

DEGRADATIONS: Mapping[str, DegradeFn] = MappingProxyType(
    {
        "noise": gaussian_noise,
        "rain": rain_streaks,
        "haze": atmospheric_haze,
        "blur": motion_blur,
        "lowlight": low_light,
        "jpeg": jpeg_compression,
        "snow": snowfall,
        "clean": no_degradation,
    }
)
DEGRADATION_MODULES: Mapping[str, type[nn.Module]] = MappingProxyType(
    {
        "noise": GaussianNoise,
        "rain": RainStreaks,
        "haze": AtmosphericHaze,
        "blur": MotionBlur,
        "lowlight": LowLight,
        "jpeg": JpegCompression,
        "snow": SnowFall,
        "clean": NoDegradation,
    }
)
# the names degrade() knows: the paper's five (pa.DEFAULT_DEGRADATIONS), jpeg, snow and clean
SYNTHETIC_DEGRADATIONS: tuple[str, ...] = tuple(DEGRADATIONS)


def parse_degradations(degradation: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``"rain"``, ``"rain+noise"`` or ``["rain", "noise"]`` to a tuple of known names.

    Raises ValueError naming the valid degradations for an unknown or empty name.
    """
    names = tuple(degradation.split("+")) if isinstance(degradation, str) else tuple(degradation)
    valid = ", ".join(SYNTHETIC_DEGRADATIONS)
    if not names:
        raise ValueError(f"no degradation given; valid degradations: {valid}")
    for name in names:
        if name not in DEGRADATIONS:
            raise ValueError(
                f"unknown degradation {name!r}; valid degradations: {valid} "
                "(combine them as a list or with '+', e.g. 'rain+noise')"
            )
    return names


def _check_parameters(name: str, params: Mapping[str, Any], target: Callable[..., Any]) -> None:
    signature = inspect.signature(target)
    valid = [name for name in signature.parameters if name not in ("clean", "generator")]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {', '.join(unknown)} for degradation {name!r}; "
            f"valid: {', '.join(valid)}"
        )


def _split_parameters(
    names: tuple[str, ...], params: Mapping[str, Any]
) -> Mapping[str, Mapping[str, Any]]:
    """Parameters per degradation: keywords for a single one, one mapping each for several."""
    if len(names) == 1:
        return {names[0]: params}
    for name, value in params.items():
        if name not in names or not isinstance(value, Mapping):
            raise TypeError(
                f"with several degradations ({'+'.join(names)}), pass parameters as one "
                f"mapping per degradation, e.g. {names[-1]}={{...}}; got {name}={value!r}"
            )
    return params


def degrade(
    clean: torch.Tensor,
    degradation: str | Sequence[str],
    generator: torch.Generator | None = None,
    **params: Any,
) -> torch.Tensor:
    """Apply the synthetic ``degradation`` to ``clean`` (B×3×H×W or 3×H×W in [0, 1]).

    ``degradation`` is one of ``SYNTHETIC_DEGRADATIONS``: ``noise``, ``rain``, ``haze``,
    ``blur``, ``lowlight`` (the paper's five), ``jpeg``, ``snow``, or ``clean`` (a copy of the
    input); or several applied in order, given as a list or joined with ``+`` (``"rain+noise"``).
    The output has the input's shape, dtype and device and is clipped to [0, 1]. Parameters not
    fixed by keyword are drawn per image from their documented ranges (see each function:
    ``gaussian_noise``, ``rain_streaks``, ``atmospheric_haze``, ``motion_blur``, ``low_light``,
    ``jpeg_compression``, ``snowfall``); the same ``generator`` state gives the same result.

    For one degradation, parameters are keywords (``degrade(x, "noise", sigma=25)``); for
    several, one mapping each (``degrade(x, "rain+noise", noise={"sigma": 25})``).
    """
    names = parse_degradations(degradation)
    per_name = _split_parameters(names, params)
    for name, values in per_name.items():
        _check_parameters(name, values, DEGRADATIONS[name])
    out = clean
    for name in names:
        out = DEGRADATIONS[name](out, generator=generator, **per_name.get(name, {}))
    return out


class Compose(nn.Module):
    """Apply degradation modules in order, sharing one generator.

    Example: ``Compose(RainStreaks(), GaussianNoise(sigma=15))(x, generator=g)``.
    """

    def __init__(self, *degradations: nn.Module) -> None:
        super().__init__()
        if not degradations:
            raise ValueError("Compose needs at least one degradation module")
        self.degradations = nn.ModuleList(degradations)

    def forward(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        out = clean
        for degradation in self.degradations:
            out = degradation(out, generator=generator)
        return out


def build_degradation(degradation: str | Sequence[str], **params: Any) -> nn.Module:
    """The module form of ``degrade(x, degradation, **params)``: ``module(x, generator=g)``.

    Parameters are checked now (names and values), not at the first call; parameters left out
    are drawn per image on every call. Several degradations give a ``Compose``.
    """
    names = parse_degradations(degradation)
    per_name = _split_parameters(names, params)
    modules = []
    for name in names:
        values = per_name.get(name, {})
        _check_parameters(name, values, DEGRADATION_MODULES[name])
        modules.append(DEGRADATION_MODULES[name](**values))
    return modules[0] if len(modules) == 1 else Compose(*modules)
