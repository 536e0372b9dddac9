"""``PIPConfig`` and ``Stage``: the one home of the PIP unit and injection hyperparameters.

``inject_pip(backbone, config)`` builds a model from it; ``model.config`` is the same config
resolved against that backbone (stages as exact module names with their hook points, channel
spans and unit sizes, and the size multiple), and ``adapter_config.json`` stores the resolved
config, so that ``load_adapter`` rebuilds the very same units whatever a later version of the
library would choose for ``"auto"``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pip_adapter.conditioning import (
    CLEAN,
    DEFAULT_DEGRADATIONS,
    check_degradation_names,
    restorable_degradations,
)
from pip_adapter.functional import DEFAULT_TOPM_RATIOS
from pip_adapter.layers import FFN_EXPANSION
from pip_adapter.unit import DESIGNS

__all__ = [
    "HOOK_POINTS",
    "LIMITS",
    "HookPoint",
    "PIPConfig",
    "Stage",
    "StageEntry",
    "check_stage_entries",
]

HookPoint = Literal["input", "output"]
HOOK_POINTS: tuple[HookPoint, ...] = ("input", "output")

# Upper bounds on sizes, so that no config (one read from an untrusted adapter file included)
# can ask for absurd memory or time: a size multiple of 4096 would pad a 1×1 image to
# 4096×4096, a prompt of 4096×256×256 would take 1 GiB before its weights are found not to
# fit. They are far above real use (the default prompt is 16×16; spandrel's largest size
# multiple and its largest minimum side are 512).
LIMITS = {
    "prompt_dim": 1024,
    "prompt_size": 128,
    "heads": 256,
    "size_multiple": 512,
    "size_minimum": 2048,
    "ffn_expansion": 8,
    "feature_ffn_stride": 16,
    "degradation_ffn_rank": 1024,
    "stages": 1024,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value


def _is_pair(value: Any, check: Any) -> bool:
    """A sequence of two items that pass ``check`` (not a string)."""
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(check(item) for item in value)
    )


@dataclass(frozen=True)
class Stage:
    """Where one or more PIP units go.

    Args:
        pattern: an exact qualified module name (``"decoders.0"``) or a regular expression
            matched with ``re.fullmatch`` against ``named_modules()`` names.
        at: the hook point: modulate the module's ``"input"`` (default: the feature a decoder
            block receives) or its ``"output"``.
        channels: ``(start, stop)`` channel indices the unit modulates; others pass through.
        channel_fraction: the same as fractions of the stage's channels, e.g. ``(0.5, 1.0)``
            for the skip half of a ``cat([upsampled, skip])``. Exclusive with ``channels``.
        portion: keep only this fraction ``(start, stop)`` of the modules the pattern matches,
            in model order, e.g. ``(0.5, 1.0)`` for the second half of a stack of blocks.
        prompt_dim, prompt_size, heads: per-stage overrides of the unit's ``d``, ``s`` and
            attention heads.
        feature_ffn_expansion, feature_ffn_stride: per-stage overrides of ``PIPConfig``'s
            (the prompt-to-feature feed-forward's width and stride), e.g. a narrower or strided
            feed-forward for the full-resolution unit only, where it costs the most.
        module_type: keep only modules whose class name matches this regular expression
            (``re.fullmatch``), e.g. ``"Conv2d"`` for the convolutions of a ``Sequential``
            that also holds activations; applied before ``portion``.
    """

    pattern: str
    at: HookPoint = "input"
    channels: tuple[int, int] | None = None
    channel_fraction: tuple[float, float] | None = None
    portion: tuple[float, float] | None = None
    prompt_dim: int | None = None
    prompt_size: int | None = None
    heads: int | None = None
    module_type: str | None = None
    feature_ffn_expansion: float | None = None
    feature_ffn_stride: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern:
            raise ValueError(f"a stage pattern must be a non-empty string, got {self.pattern!r}")
        where = f"stage {self.pattern!r}"
        if self.at not in HOOK_POINTS:
            raise ValueError(f"{where}: at must be 'input' or 'output', got {self.at!r}")
        if self.channels is not None and self.channel_fraction is not None:
            raise ValueError(f"{where}: give channels or channel_fraction, not both")
        if self.channels is not None and not (
            _is_pair(self.channels, _is_int) and 0 <= self.channels[0] < self.channels[1]
        ):
            raise ValueError(
                f"{where}: channels must be (start, stop) integers with 0 <= start < stop, "
                f"got {self.channels!r}"
            )
        for name in ("channel_fraction", "portion"):
            span = getattr(self, name)
            if span is not None and not (_is_pair(span, _is_real) and 0 <= span[0] < span[1] <= 1):
                raise ValueError(
                    f"{where}: {name} must be (start, stop) numbers with 0 <= start < stop <= 1, "
                    f"got {span!r}"
                )
        if self.module_type is not None:
            try:
                re.compile(self.module_type)
            except (re.error, TypeError):
                raise ValueError(
                    f"{where}: module_type must be a regular expression for class names, got "
                    f"{self.module_type!r}"
                ) from None
        for name in ("prompt_dim", "prompt_size", "heads", "feature_ffn_stride"):
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and 1 <= value <= LIMITS[name]):
                raise ValueError(
                    f"{where}: {name} must be a positive integer of at most {LIMITS[name]}, "
                    f"got {value!r}"
                )
        expansion = self.feature_ffn_expansion
        if expansion is not None and not (
            _is_real(expansion) and 0 < expansion <= LIMITS["ffn_expansion"]
        ):
            raise ValueError(
                f"{where}: feature_ffn_expansion must be a positive number of at most "
                f"{LIMITS['ffn_expansion']}, got {expansion!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults (plain lists for spans), for JSON."""
        data: dict[str, Any] = {"pattern": self.pattern, "at": self.at}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name not in data and value is not None:
                data[field.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def coerce(cls, entry: str | Stage | Mapping[str, Any]) -> Stage:
        """Accept a pattern string, a Stage, or a mapping of Stage fields (presets are data;
        the key ``"hook"`` of adapter files written before ``at`` existed is read as ``at``)."""
        if isinstance(entry, Stage):
            return entry
        if isinstance(entry, str):
            return cls(entry)
        if isinstance(entry, Mapping):
            entry = dict(entry)
            if "hook" in entry and "at" not in entry:
                entry["at"] = entry.pop("hook")
            known = [field.name for field in dataclasses.fields(cls)]
            unknown = set(entry) - set(known)
            if unknown:
                raise ValueError(f"unknown stage fields {sorted(unknown)}; valid: {known}")
            values: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()
            }
            return cls(**values)
        raise ValueError(
            f"a stage must be a module name, a regular expression, a Stage or a dict, "
            f"got {type(entry).__name__}"
        )


StageEntry = str | Stage | Mapping[str, Any]


def check_stage_entries(stages: Sequence[StageEntry]) -> tuple[Stage, ...]:
    """A non-empty list of stage entries as ``Stage`` objects; anything else is a ValueError."""
    if isinstance(stages, str | Stage) or not isinstance(stages, Sequence) or not stages:
        raise ValueError(
            "stages must be 'auto' or a non-empty list of module names / regular expressions, "
            f"got {stages!r}"
        )
    if len(stages) > LIMITS["stages"]:
        raise ValueError(f"at most {LIMITS['stages']} stage entries, got {len(stages)}")
    return tuple(Stage.coerce(entry) for entry in stages)


def _integer(name: str, value: Any, minimum: int, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if not _is_int(value) or not minimum <= value <= LIMITS[name]:
        allowed = ("None or " if optional else "") + (
            f"an integer of at least {minimum} and at most {LIMITS[name]}"
        )
        raise ValueError(f"PIPConfig.{name} must be {allowed}, got {value!r}")
    return int(value)


def _expansion(name: str, value: Any, optional: bool) -> float | None:
    """A feed-forward expansion: a positive number within ``LIMITS["ffn_expansion"]``."""
    if value is None and optional:
        return None
    if not (_is_real(value) and 0 < value <= LIMITS["ffn_expansion"]):
        allowed = ("None or " if optional else "") + (
            f"a positive number of at most {LIMITS['ffn_expansion']}"
        )
        raise ValueError(f"PIPConfig.{name} must be {allowed}, got {value!r}")
    return float(value)


def _ratios(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    valid = (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(
            isinstance(r, numbers.Real) and not isinstance(r, bool) and 0 < float(r) <= 1
            for r in value
        )
    )
    if not valid:
        raise ValueError(
            "PIPConfig.topm_ratios must be None (dense attention) or a non-empty list of "
            f"ratios in (0, 1], e.g. {list(DEFAULT_TOPM_RATIOS)}; got {value!r}"
        )
    return tuple(float(r) for r in value)


def _restorable(field: str, names: Iterable[str], degradations: tuple[str, ...]) -> tuple[str, ...]:
    """The degradations the model restores (all but ``"clean"``); a ValueError naming those of
    ``names`` (the entries of ``field``) that are not among them."""
    restorable = restorable_degradations(degradations)
    unknown = [name for name in names if name not in restorable]
    if unknown:
        raise ValueError(
            f"PIPConfig.{field} {unknown} are not among the degradations the model restores "
            f"{list(restorable)} ({CLEAN!r} needs nothing: it is the input itself)"
        )
    return restorable


def _native(value: Any, degradations: tuple[str, ...]) -> tuple[str, ...]:
    """Checked native degradations: distinct names among the restorable ``degradations``
    (not ``"clean"``, which is the identity), leaving at least one for the units."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(
            "PIPConfig.native_degradations must be a sequence of names such as ('noise',), "
            f"got {value!r}"
        )
    names = tuple(value)
    restorable = _restorable("native_degradations", names, degradations)
    if len(set(names)) != len(names):
        raise ValueError(f"PIPConfig.native_degradations must be distinct, got {list(names)}")
    if len(names) == len(restorable):
        raise ValueError(
            f"PIPConfig.native_degradations {list(names)} cover every degradation; leave at "
            "least one for the PIP units to learn"
        )
    return names


def _strengths(value: Any, degradations: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """Checked output strengths: a ``{name: strength}`` mapping (or its ``(name, strength)``
    pairs) over restorable degradations, each strength in [0, 1]. Stored as pairs in prompt
    order, without the strengths of 1 (the default), so that equal settings compare equal."""
    try:
        strengths = dict(value.items() if isinstance(value, Mapping) else value)
    except (TypeError, ValueError):
        strengths = None
    if strengths is None or isinstance(value, str):
        raise ValueError(
            "PIPConfig.output_strength must be a {degradation: strength} mapping such as "
            f"{{'blur': 0.5}}, got {value!r}"
        )
    restorable = _restorable("output_strength", strengths, degradations)
    bad = {name: a for name, a in strengths.items() if not (_real(a) and 0 <= a <= 1)}
    if bad:
        raise ValueError(f"PIPConfig.output_strength values must be in [0, 1], got {bad}")
    return tuple((d, float(strengths[d])) for d in restorable if strengths.get(d, 1) != 1)


BLUR = "blur"  # the degradation whose strength PIPConfig.blur_strength sets per image


def _blur_strength(
    value: Any, degradations: tuple[str, ...], strengths: tuple[tuple[str, float], ...]
) -> tuple[float, float] | None:
    """Checked ``blur_strength``: None or ``(a0, a1)``, two finite numbers, for a model that
    restores ``"blur"`` and has no ``output_strength`` for it."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"PIPConfig.blur_strength must be None or a pair (a0, a1), got {value!r}")
    if not all(_real(a) for a in value):
        raise ValueError(f"PIPConfig.blur_strength must be two finite numbers, got {value!r}")
    _restorable("blur_strength", [BLUR], degradations)
    if BLUR in dict(strengths):
        raise ValueError(
            "PIPConfig.blur_strength and output_strength both set blur's strength; set one "
            "(output_strength without 'blur')"
        )
    return float(value[0]), float(value[1])


def _flag(name: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"PIPConfig.{name} must be None, True or False, got {value!r}")
    return value


def _output(value: Any) -> int | str | None:
    if value is None or (isinstance(value, str) and value) or (_is_int(value) and value >= 0):
        return value
    raise ValueError(
        "PIPConfig.output must be None, an index (0, 1, ...) into a tuple or list output, or "
        f"a key of a dict output; got {value!r}"
    )


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _level(value: Any) -> float | None:
    if value is None:
        return None
    if not (_real(value) and 0 <= value <= 1):
        raise ValueError(f"PIPConfig.noise_level_map must be None or in [0, 1], got {value!r}")
    return float(value)


def _value_range(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    valid = (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(_real(v) for v in value)
        and value[0] < value[1]
    )
    if not valid:
        raise ValueError(
            f"PIPConfig.value_range must be None or (low, high) with low < high, got {value!r}"
        )
    return float(value[0]), float(value[1])


@dataclass(frozen=True)
class PIPConfig:
    """Hyperparameters of PIP's units and of where they go, for ``inject_pip(backbone, config)``.

    Args:
        stages: ``"auto"``: the preset of the backbone's spandrel architecture (see
            ``pip_adapter.PRESETS``; a preset may size each stage's unit, as NAFNet's lighter
            units, for the compact design while the config leaves ``prompt_size``,
            ``feature_ffn_expansion`` and ``feature_ffn_stride`` at None), else a placement found
            by one dry run (the inputs of decoder modules that receive skip connections, else
            the second half of a stack of body blocks); or a list of exact module names /
            regular expressions (``re.fullmatch``) / ``Stage`` specs (or dicts of their
            fields). Every entry must match something.
        degradations: the degradation vocabulary, in prompt order. ``"clean"`` among them makes
            the model leave clean images exactly as they are (units are built for the others;
            see ``PIPModel``).
        prompt_dim: ``d`` of every unit (at least 2); default: the stage width within
            ``[2, 64]``.
        prompt_size: ``s``, the side of the basic restoration prompt; default (None): the
            preset's per-stage size, else 16. Any ``prompt_size`` (16 included), a
            ``feature_ffn_expansion`` or a ``feature_ffn_stride`` replaces a preset's unit
            sizes: every stage gets the config's (``feature_ffn_stride=1``: the full units).
        heads: attention heads of the units; default: about 32 channels per head.
        ffn_expansion: hidden width of the units' feed-forwards, as a multiple of ``d``.
        topm_ratios: ratios of the top-m attention; ``None`` makes it dense.
        size_multiple: input sides are padded to a multiple of this; default: spandrel's
            ``SizeRequirements`` for the backbone, else 1.
        size_minimum: input sides shorter than this are padded to it; default: spandrel's,
            else 0.
        size_square: pad inputs to a square (networks that need one); default: spandrel's,
            else False. An input that already meets the three is not padded at all.
        output: which element of a backbone output that is a tuple / list (an index) or a
            dict (a key) is the restored image; default: the preset's, else the one image
            in it (the backbone's output itself when it is a tensor).
        noise_level_map: for non-blind denoisers that take a noise-level map as an extra
            input channel (DRUNet, FDnCNN): the constant level (in [0, 1]) of that channel;
            default: the preset's, else no extra channel.
        value_range: ``(low, high)``, the range of the backbone's images when it is not
            [0, 1] (MixDehazeNet works in [-1, 1]); inputs are mapped to it and outputs back.
            Default: the preset's, else [0, 1].
        design: ``"compact"`` (default: the universal prompt and the prompt-to-feature attention
            on the prompt's ``s×s`` grid, a narrow feed-forward at full resolution) or
            ``"paper"`` (the authors' unit, all of it at full resolution); see ``PromptInPrompt``.
        feature_ffn_expansion: hidden width of the prompt-to-feature feed-forward as a multiple
            of ``d``; default 1 for the compact design, ``ffn_expansion`` for the paper design.
        feature_ffn_stride: compact design: run that feed-forward on the feature average-pooled
            by this factor, its update resized back (1, the default: at every pixel). See
            ``PromptInPrompt``.
        degradation_ffn_rank: ``r > 0`` gives every adapted degradation its own rank-``r``
            update of that feed-forward's 1×1 projections in every unit, mixed by the same
            degradation weights as the prompt (labels, mixtures, a sensor's output); 0 (the
            default): shared by every degradation. See ``PromptInPrompt``;
            ``add_degradations`` gives each new degradation updates of its own.
        native_degradations: degradations the backbone already restores (e.g. ``("noise",)``
            for a pretrained denoiser). With their label every unit passes its feature through
            exactly, so the model is the backbone itself; the units hold prompts only for the
            other degradations (``adapted_degradations``). See ``PIPModel``.
        output_strength: ``{degradation: a}`` with ``a`` in [0, 1]: the model returns
            ``x + a · (f(x) − x)`` for that degradation, ``f`` being the network; left out: 1
            (the network's output). A do-no-harm fallback for degradations the model cannot
            improve on unseen photos: ``pip_adapter.training.calibrate_output_strength`` fits
            them on labelled photos after training. Blind or mixed weights mix the strengths;
            ``"clean"`` is always 0. Stored as ``(name, a)`` pairs in prompt order, without
            the 1s (``dict(config.output_strength)`` gives the mapping). Only for networks
            whose output has the input's size.
        blur_strength: ``(a0, a1)``: blur's output strength chosen per image from its input,
            ``clip(a0 + a1 · e, 0, 1)`` with ``e`` its blur effect
            (``pip_adapter.metrics.blur_effect``: 0 sharp, 1 blurred), in place of a strength
            in ``output_strength``; None (the default): blur as ``output_strength`` says.
            For a network that restores some blurred photos and damages others, told apart by
            how blurred they look: ``pip_adapter.training.calibrate_blur_strength`` fits it.

    ``Stage`` entries override ``prompt_dim``, ``prompt_size``, ``heads``,
    ``feature_ffn_expansion`` and ``feature_ffn_stride`` per stage. Lists
    are stored as tuples and stage entries as ``Stage`` objects, so that equal settings compare
    equal. The config is frozen: derive variants with ``replace``. ``to_dict`` /
    ``from_dict`` convert to and from plain JSON data.
    """

    stages: str | tuple[Stage, ...] = "auto"
    degradations: tuple[str, ...] = DEFAULT_DEGRADATIONS
    prompt_dim: int | None = None
    prompt_size: int | None = None
    heads: int | None = None
    ffn_expansion: float = FFN_EXPANSION
    topm_ratios: tuple[float, ...] | None = DEFAULT_TOPM_RATIOS
    size_multiple: int | None = None
    size_minimum: int | None = None
    size_square: bool | None = None
    output: int | str | None = None
    noise_level_map: float | None = None
    value_range: tuple[float, float] | None = None
    design: str = "compact"
    feature_ffn_expansion: float | None = None
    feature_ffn_stride: int | None = None
    degradation_ffn_rank: int = 0
    native_degradations: tuple[str, ...] = ()
    output_strength: tuple[tuple[str, float], ...] = ()
    blur_strength: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"PIPConfig.design must be one of {DESIGNS}, got {self.design!r}")
        if self.feature_ffn_stride not in (None, 1) and self.design != "compact":
            raise ValueError(
                f"PIPConfig.feature_ffn_stride needs design='compact', got "
                f"{self.feature_ffn_stride!r} with design={self.design!r}"
            )
        stages: str | tuple[Stage, ...] = "auto"
        if self.stages != "auto":
            stages = check_stage_entries(self.stages)
            strided = [s.pattern for s in stages if s.feature_ffn_stride not in (None, 1)]
            if strided and self.design != "compact":
                raise ValueError(
                    f"a stage's feature_ffn_stride needs design='compact', got one for "
                    f"{strided} with design={self.design!r}"
                )
        degradations = check_degradation_names(self.degradations)
        restorable_degradations(degradations)  # not "clean" alone: a ValueError
        normalised: dict[str, Any] = {
            "stages": stages,
            "degradations": degradations,
            "prompt_dim": _integer("prompt_dim", self.prompt_dim, 2, optional=True),
            "prompt_size": _integer("prompt_size", self.prompt_size, 1, optional=True),
            "heads": _integer("heads", self.heads, 1, optional=True),
            "ffn_expansion": _expansion("ffn_expansion", self.ffn_expansion, optional=False),
            "feature_ffn_expansion": _expansion(
                "feature_ffn_expansion", self.feature_ffn_expansion, optional=True
            ),
            "feature_ffn_stride": _integer(
                "feature_ffn_stride", self.feature_ffn_stride, 1, optional=True
            ),
            "degradation_ffn_rank": _integer(
                "degradation_ffn_rank", self.degradation_ffn_rank, 0, optional=False
            ),
            "topm_ratios": _ratios(self.topm_ratios),
            "size_multiple": _integer("size_multiple", self.size_multiple, 1, optional=True),
            "size_minimum": _integer("size_minimum", self.size_minimum, 0, optional=True),
            "size_square": _flag("size_square", self.size_square),
            "output": _output(self.output),
            "noise_level_map": _level(self.noise_level_map),
            "value_range": _value_range(self.value_range),
            "native_degradations": _native(self.native_degradations, degradations),
        }
        strengths = _strengths(self.output_strength, degradations)
        normalised["output_strength"] = strengths
        normalised["blur_strength"] = _blur_strength(self.blur_strength, degradations, strengths)
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    @property
    def adapted_degradations(self) -> tuple[str, ...]:
        """The degradations the units learn and hold prompts for (in prompt order): all but
        ``"clean"``, which the model maps to the identity, and the native ones, for which the
        model is the backbone itself."""
        restorable = restorable_degradations(self.degradations)
        return tuple(d for d in restorable if d not in self.native_degradations)

    def strengths(self) -> tuple[float, ...]:
        """The output strength of every degradation, in prompt order: ``output_strength``'s,
        else 1, and 0 for ``"clean"`` (the input itself)."""
        given = dict(self.output_strength)
        return tuple(0.0 if d == CLEAN else given.get(d, 1.0) for d in self.degradations)

    @classmethod
    def _check_names(cls, names: Sequence[str]) -> None:
        valid = [field.name for field in dataclasses.fields(cls)]
        unknown = [name for name in names if name not in valid]
        if unknown:
            raise ValueError(f"unknown PIPConfig fields {unknown}; valid: {valid}")

    def replace(self, **changes: Any) -> PIPConfig:
        """A copy with some fields changed (checked as in the constructor)."""
        self._check_names(list(changes))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: tuples as lists, stages as dicts of their set fields."""
        data: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "stages" and not isinstance(value, str):
                value = [stage.to_dict() for stage in value]
            elif field.name == "output_strength":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            data[field.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PIPConfig:
        """The config ``to_dict`` wrote; unknown keys and wrong values are a ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a PIPConfig dict must be a mapping, got {type(data).__name__}")
        cls._check_names(list(data))
        return cls(**data)
