"""Degradations by name, and composites (e.g. rain then noise)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from pip_adapter.data.degradations.blur import MotionBlur, motion_blur
from pip_adapter.data.degradations.haze import AtmosphericHaze, atmospheric_haze
from pip_adapter.data.degradations.lowlight import LowLight, low_light
from pip_adapter.data.degradations.noise import GaussianNoise, gaussian_noise
from pip_adapter.data.degradations.rain import RainStreaks, rain_streaks

__all__ = [
    "DEGRADATIONS",
    "DEGRADATION_KINDS",
    "DEGRADATION_MODULES",
    "Compose",
    "build_degradation",
    "degrade",
    "parse_kinds",
]

DegradeFn = Callable[..., torch.Tensor]

DEGRADATIONS: Mapping[str, DegradeFn] = MappingProxyType(
    {
        "noise": gaussian_noise,
        "rain": rain_streaks,
        "haze": atmospheric_haze,
        "blur": motion_blur,
        "lowlight": low_light,
    }
)
DEGRADATION_MODULES: Mapping[str, type[nn.Module]] = MappingProxyType(
    {
        "noise": GaussianNoise,
        "rain": RainStreaks,
        "haze": AtmosphericHaze,
        "blur": MotionBlur,
        "lowlight": LowLight,
    }
)
DEGRADATION_KINDS: tuple[str, ...] = tuple(DEGRADATIONS)


def parse_kinds(kind: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``"rain"``, ``"rain+noise"`` or ``["rain", "noise"]`` to a tuple of known kinds.

    Raises ValueError naming the valid kinds for an unknown or empty kind.
    """
    kinds = tuple(kind.split("+")) if isinstance(kind, str) else tuple(kind)
    if not kinds:
        raise ValueError(f"no degradation given; valid kinds: {', '.join(DEGRADATION_KINDS)}")
    for name in kinds:
        if name not in DEGRADATIONS:
            raise ValueError(
                f"unknown degradation {name!r}; valid kinds: {', '.join(DEGRADATION_KINDS)} "
                "(combine them as a list or with '+', e.g. 'rain+noise')"
            )
    return kinds


def _check_parameters(kind: str, params: Mapping[str, Any], target: Callable[..., Any]) -> None:
    signature = inspect.signature(target)
    valid = [name for name in signature.parameters if name not in ("clean", "generator")]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {', '.join(unknown)} for degradation {kind!r}; "
            f"valid: {', '.join(valid)}"
        )


def _split_parameters(
    kinds: tuple[str, ...], params: Mapping[str, Any]
) -> Mapping[str, Mapping[str, Any]]:
    """Parameters per kind: keywords for a single kind, one mapping per kind for several."""
    if len(kinds) == 1:
        return {kinds[0]: params}
    for name, value in params.items():
        if name not in kinds or not isinstance(value, Mapping):
            raise TypeError(
                f"with several degradations ({'+'.join(kinds)}), pass parameters as one "
                f"mapping per kind, e.g. {kinds[-1]}={{...}}; got {name}={value!r}"
            )
    return params


def degrade(
    clean: torch.Tensor,
    kind: str | Sequence[str],
    generator: torch.Generator | None = None,
    **params: Any,
) -> torch.Tensor:
    """Apply the synthetic degradation ``kind`` to ``clean`` (B×3×H×W or 3×H×W in [0, 1]).

    ``kind`` is one of ``noise``, ``rain``, ``haze``, ``blur``, ``lowlight``, or several applied
    in order, given as a list or joined with ``+`` (``"rain+noise"``). The output has the input's
    shape, dtype and device and is clipped to [0, 1]. Parameters not fixed by keyword are drawn
    per image from their documented ranges (see each function: ``gaussian_noise``,
    ``rain_streaks``, ``atmospheric_haze``, ``motion_blur``, ``low_light``);
    the same ``generator`` state gives the same result.

    For one kind, parameters are keywords (``degrade(x, "noise", sigma=25)``); for several,
    one mapping per kind (``degrade(x, "rain+noise", noise={"sigma": 25})``).
    """
    kinds = parse_kinds(kind)
    per_kind = _split_parameters(kinds, params)
    for name, values in per_kind.items():
        _check_parameters(name, values, DEGRADATIONS[name])
    out = clean
    for name in kinds:
        out = DEGRADATIONS[name](out, generator=generator, **per_kind.get(name, {}))
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


def build_degradation(kind: str | Sequence[str], **params: Any) -> nn.Module:
    """The module form of ``degrade(x, kind, **params)``: ``module(x, generator=g)``.

    Parameters are checked now (names and values), not at the first call; parameters left out
    are drawn per image on every call. Several kinds give a ``Compose``.
    """
    kinds = parse_kinds(kind)
    per_kind = _split_parameters(kinds, params)
    modules = []
    for name in kinds:
        values = per_kind.get(name, {})
        _check_parameters(name, values, DEGRADATION_MODULES[name])
        modules.append(DEGRADATION_MODULES[name](**values))
    return modules[0] if len(modules) == 1 else Compose(*modules)
