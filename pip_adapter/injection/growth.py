"""Teaching a trained PIPModel new degradations: ``PIPModel.add_degradations``.

Each degradation is one row of every unit's degradation-aware prompt ``D`` (and, in units built
with ``degradation_ffn_rank`` ``r > 0``, one rank-``r`` update of each of the feed-forward's two
projections), so a new degradation is a new row (and new updates). The new rows and updates are
separate parameters from the old ones; which parameters train afterwards depends on the mode:

* ``"prompts"``: the new rows (and updates) alone. Every other parameter of the model
  (backbone, units, sensor) stops requiring gradients, and an old degradation's weights are zero
  on the new rows, so its outputs stay bit-exact whatever optimiser trains what still requires
  gradients.
* ``"light"``: the new rows plus the units' normalisation and attention-scale parameters
  (``light_parameters``), to be trained with replay of the old degradations; old outputs move
  slightly. These parameters set the scale and offset of every feature the unit's attention
  and feed-forwards see, and how sharp its attention is: a few hundred numbers per unit that
  change *how* the unit responds to a prompt, where the new rows only choose *which* prompt,
  and too few to forget much.

A new row starts at a mixture of the old rows (by default their mean, the model steered by the
uniform mixture of the old degradations; ``init`` names another mixture or one old
degradation per new one), so the new degradation starts from behaviour the model has, rather
than from a random prompt that the trained units never saw. Its feed-forward updates start at
the rank-``r`` updates nearest to the same mixture of the old degradations' updates (exactly one
old degradation's own when ``init`` names one; ``DegradationLowRank.add_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from pip_adapter.conditioning import degradation_weights
from pip_adapter.sensor import DegradationSensor
from pip_adapter.unit import PromptInPrompt

if TYPE_CHECKING:
    from pip_adapter.injection.model import PIPModel

__all__ = ["GROWTH_MODES", "GrowthMode", "check_new_degradations", "grow", "light_parameters"]

GrowthMode = Literal["prompts", "light"]
GROWTH_MODES: tuple[GrowthMode, ...] = ("prompts", "light")
# names a new degradation may not take: "clean" is the identity and needs no prompt; "auto"
# asks the sensor on the command line, where "," and ":" also separate mixture entries
RESERVED_NAMES = ("clean", "auto")
FORBIDDEN_CHARACTERS = (",", ":")

InitSpec = str | Mapping[str, float]


def check_new_degradations(names: Sequence[str], existing: Sequence[str]) -> tuple[str, ...]:
    """The new degradation names as a tuple; ValueError for anything ``add_degradations``
    refuses (existing, repeated, reserved or malformed names, or none)."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ValueError(f"names must be a non-empty list of degradation names, got {names!r}")
    names = tuple(names)
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(
                f"a degradation name must be a non-empty string without surrounding spaces, "
                f"got {name!r}"
            )
        if any(c in name for c in FORBIDDEN_CHARACTERS):
            raise ValueError(
                f"degradation name {name!r} contains one of {list(FORBIDDEN_CHARACTERS)}, which "
                "separate the entries of a mixture ('rain:0.7,noise:0.3')"
            )
        if name == "clean":
            raise ValueError(
                "'clean' needs no prompt (it is the identity); a model restores clean images "
                "exactly when built with 'clean' among its degradations"
            )
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is reserved (--degradation auto asks the sensor)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"new degradations must be distinct, got {repeated} more than once")
    present = [n for n in names if n in existing]
    if present:
        raise ValueError(
            f"the model already has the degradations {present}; its degradations are "
            f"{list(existing)}"
        )
    return names


def _starting_weights(
    names: tuple[str, ...], existing: Sequence[str], init: Mapping[str, InitSpec] | None
) -> torch.Tensor:
    """``k×T_old`` weights over the old degradations at which each new row starts."""
    init = dict(init or {})
    unknown = sorted(set(init) - set(names))
    if unknown:
        raise ValueError(f"init names {unknown}, which are not among the new {list(names)}")
    rows = []
    for name in names:
        spec = init.get(name)
        if spec is None:
            rows.append(torch.full((1, len(existing)), 1 / len(existing)))
        elif isinstance(spec, str | Mapping):
            rows.append(degradation_weights(spec, existing, 1))
        else:
            raise ValueError(
                f"init[{name!r}] must be an old degradation name or a {{name: weight}} mixture "
                f"of {list(existing)}, got {spec!r}"
            )
    return torch.cat(rows)


def light_parameters(unit: PromptInPrompt) -> Iterator[nn.Parameter]:
    """The part of a unit that ``"light"`` growth trains besides the new rows: the affine
    parameters of its layer norms and its attentions' temperatures and top-m weights."""
    for name, param in unit.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        in_norm = ".norm_" in f".{name}"
        if in_norm or leaf in ("temperature", "topm_weights"):
            yield param


def grow(
    model: PIPModel,
    names: Sequence[str],
    mode: GrowthMode,
    init: Mapping[str, InitSpec] | None,
) -> tuple[str, ...]:
    """Add ``names`` to ``model`` (units, config, sensor) and set what trains; everything is
    checked before anything changes. Returns the new degradation names."""
    if mode not in GROWTH_MODES:
        raise ValueError(f"mode must be one of {list(GROWTH_MODES)}, got {mode!r}")
    existing = model.degradations
    names = check_new_degradations(names, existing)
    units = [u for u in model.pip_units.values() if type(u) is PromptInPrompt]
    hosted = sorted({type(u).__name__ for u in model.pip_units.values()} - {"PromptInPrompt"})
    if hosted:
        raise TypeError(f"add_degradations grows PromptInPrompt units, this model hosts {hosted}")
    sensor = model.sensor
    if sensor is not None and not isinstance(sensor, DegradationSensor):
        raise TypeError(
            f"model.sensor is a {type(sensor).__name__}, which cannot learn new degradations; "
            "set model.sensor = None first (and train a sensor for the grown model)"
        )
    # the units hold prompts for the adapted degradations ("clean" and the native ones have
    # none): new rows start from a mixture of those, and go after them
    adapted = model.config.adapted_degradations
    weights = _starting_weights(names, adapted, init)
    config = model.config.replace(degradations=(*existing, *names))
    if sensor is not None:
        sensor.add_degradations(names)
    model.requires_grad_(False)
    for unit in units:
        device = unit.degradation_prompt.prompts.device
        start = degradation_weights(weights, adapted, len(names), device)
        for param in unit.add_degradations(start):
            param.requires_grad_(True)
        if mode == "light":
            for param in light_parameters(unit):
                param.requires_grad_(True)
    model.config = config
    return names
