"""Degradation names, mixtures of them, and the command-line syntax that names them.

Plain Python (no torch), so that ``pip-adapter restore --onnx`` parses ``--degradation`` without
loading PyTorch; ``pip_adapter.conditioning`` builds the tensors on top.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

__all__ = [
    "DEFAULT_DEGRADATIONS",
    "check_degradation_names",
    "degradation_index",
    "degradation_name",
    "describe_mixture",
    "mixture_weights",
    "parse_degradation",
]

DEFAULT_DEGRADATIONS: tuple[str, ...] = ("noise", "rain", "haze", "blur", "lowlight")

# a sensor's prediction below this weight is reported as unsure (see describe_mixture)
SURE_AT = 0.9


def check_degradation_names(degradations: Sequence[str]) -> tuple[str, ...]:
    """Validate a degradation vocabulary: a sequence of distinct, non-empty names."""
    if isinstance(degradations, str) or not isinstance(degradations, Sequence):
        raise ValueError(
            f"degradations must be a sequence of names such as {DEFAULT_DEGRADATIONS}, "
            f"got {degradations!r}"
        )
    names = tuple(degradations)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"degradations must be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"degradations must be unique, got {names!r}")
    return names


def degradation_index(name: object, names: Sequence[str]) -> int:
    """Position of ``name`` in ``names``; ValueError naming the valid names otherwise."""
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"unknown degradation {name!r}; valid names: {list(names)}")
    return list(names).index(name)


def degradation_name(label: object, names: Sequence[str]) -> str:
    """The name of a degradation given by name or by id (its position in ``names``);
    ValueError naming the valid names otherwise."""
    is_id = isinstance(label, numbers.Integral) and not isinstance(label, bool)
    if is_id and 0 <= int(label) < len(names):  # type: ignore[call-overload]
        return names[int(label)]  # type: ignore[call-overload]
    degradation_index(label, names)  # a name, else a clear error
    return str(label)


def mixture_weights(mixture: Mapping[str, float], names: Sequence[str]) -> list[float]:
    """A ``{name: weight}`` mixture as one weight per name, normalised to sum to 1."""
    row = [0.0] * len(names)
    for name, weight in mixture.items():
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise ValueError(f"mixture weight for {name!r} must be a number, got {weight!r}")
        weight = float(weight)
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"mixture weight for {name!r} must be finite and >= 0, got {weight}")
        row[degradation_index(name, names)] += weight
    largest = max(row)
    if largest <= 0:
        raise ValueError(
            f"mixture {dict(mixture)} has no positive weight; valid names: {list(names)}"
        )
    row = [weight / largest for weight in row]  # first by the largest: 1e308 + 1e308 overflows
    total = sum(row)
    return [weight / total for weight in row]


def parse_degradation(text: str, names: Sequence[str]) -> str | dict[str, float] | None:
    """Parse the command-line syntax: ``"rain"``, ``"rain:0.7,noise:0.3"`` or ``"auto"``.

    Returns the name, a normalised ``{name: weight}`` mixture, or ``None`` for ``"auto"``
    (blind restoration with the sensor). Raises ValueError on unknown names, malformed,
    negative or all-zero weights, and repeated names.
    """
    if not isinstance(text, str):
        raise ValueError(f"the degradation must be given as text, got {type(text).__name__}")
    text = text.strip()
    if text == "auto":
        return None
    if ":" not in text and "," not in text:
        if text not in names:
            raise ValueError(
                f"unknown degradation {text!r}; valid names: {list(names)}, or 'auto', or a "
                "mixture such as 'rain:0.7,noise:0.3'"
            )
        return text
    mixture: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = (s.strip() for s in part.partition(":"))
        if not sep or not name or not value:
            raise ValueError(
                f"malformed degradation mixture {text!r}: expected name:weight pairs separated "
                f"by commas, e.g. 'rain:0.7,noise:0.3'; valid names: {list(names)}"
            )
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"weight {value!r} for {name!r} in {text!r} is not a number") from None
        if name in mixture:
            raise ValueError(f"degradation {name!r} appears twice in {text!r}")
        degradation_index(name, names)
        mixture[name] = weight
    row = mixture_weights(mixture, names)
    return {name: row[list(names).index(name)] for name in mixture}


def describe_mixture(
    values: Sequence[float], names: Sequence[str], sure_at: float = SURE_AT
) -> str:
    """One image's weights (one per name) in words, as ``pip-adapter restore`` prints a sensor's
    prediction: ``"rain (0.97)"`` when one degradation has at least ``sure_at`` of the weight,
    else ``"unsure: rain 0.55 + noise 0.40 (restored as this mixture)"``, listing the
    degradations with at least 0.05, largest first."""
    values = [float(v) for v in values]
    if len(values) != len(names):
        raise ValueError(f"need one weight per degradation ({len(names)}), got {len(values)}")
    order = sorted(range(len(names)), key=lambda i: values[i], reverse=True)
    best = order[0]
    if values[best] >= sure_at:
        return f"{names[best]} ({values[best]:.2f})"
    parts = [f"{names[i]} {values[i]:.2f}" for i in order if values[i] >= 0.05]
    return f"unsure: {' + '.join(parts)} (restored as this mixture)"
