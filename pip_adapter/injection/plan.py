"""Planning an injection, in two steps: (a) dry-run the backbone, find the stages and their
features; (b) size a unit for each from the config, giving the resolved config."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from spandrel import SizeRequirements
from torch import nn

from pip_adapter.architectures import size_requirements, spandrel_info
from pip_adapter.config import HookPoint, PIPConfig, Stage, StageEntry, check_stage_entries
from pip_adapter.injection.calling import call_backbone, resolve_output
from pip_adapter.injection.trace import Layout, Trace, trace_backbone
from pip_adapter.unit import DEFAULT_PROMPT_SIZE, PromptInPrompt, default_heads, default_prompt_dim

__all__ = [
    "PlannedStage",
    "build_units",
    "dry_run",
    "input_rule",
    "locate_stages",
    "match_stages",
    "refusal",
    "resolve_config",
]


@dataclass(frozen=True)
class PlannedStage:
    """Where one PIP unit goes and what the dry run found there.

    ``layout`` is ``"image"`` (``B×C×H×W``), ``"channels_last"`` (``B×H×W×C``) or
    ``"tokens"`` (``B×L×C``); ``stage_channels`` is the feature's ``C``; the unit modulates
    channels ``channels = (start, stop)`` of it.
    """

    name: str
    at: HookPoint
    layout: Layout
    stage_channels: int
    channels: tuple[int, int]


def _closest(pattern: str, names: Sequence[str]) -> list[str]:
    close = difflib.get_close_matches(pattern, names, n=5, cutoff=0.5)
    return close or [n for n in names if "." not in n][:8]


def match_stages(
    model: nn.Module, stages: Sequence[StageEntry], empty_portions: bool = False
) -> list[tuple[str, Stage]]:
    """Resolve stage entries to ``(module name, Stage)`` pairs, in model order.

    Every entry must match at least one module (exactly by name, or by ``re.fullmatch``; then
    filtered by ``module_type`` and cut by ``portion``), and no module may be matched twice.
    Raises ValueError naming the entry and the closest names. ``empty_portions``: an entry
    whose ``portion`` keeps none of its modules is left out instead (a preset's split of a
    network's levels, on a network with fewer levels), as long as some entry matches.
    """
    modules = {name: module for name, module in model.named_modules() if name}
    names = list(modules)
    owner: dict[str, Stage] = {}
    for stage in check_stage_entries(stages):
        if stage.pattern in names:
            matched = [stage.pattern]
        else:
            try:
                regex = re.compile(stage.pattern)
            except re.error as err:
                raise ValueError(
                    f"stage {stage.pattern!r} is neither a module name nor a valid regular "
                    f"expression ({err}); closest names: {_closest(stage.pattern, names)}"
                ) from None
            matched = [name for name in names if regex.fullmatch(name)]
        if not matched:
            raise ValueError(
                f"stage {stage.pattern!r} matches no module of {type(model).__name__}; "
                f"closest names: {_closest(stage.pattern, names)}. "
                "Use pip_adapter.list_stages(model, sample_input) to see the candidates."
            )
        if stage.module_type is not None:
            kind = re.compile(stage.module_type)
            found = sorted({type(modules[name]).__name__ for name in matched})
            matched = [name for name in matched if kind.fullmatch(type(modules[name]).__name__)]
            if not matched:
                raise ValueError(
                    f"stage {stage.pattern!r}: none of the modules it matches is a "
                    f"{stage.module_type!r}; they are {found}"
                )
        if stage.portion is not None:
            start, stop = stage.portion
            matched = matched[math.floor(start * len(matched)) : math.floor(stop * len(matched))]
            if not matched and empty_portions:
                continue
            if not matched:
                raise ValueError(
                    f"stage {stage.pattern!r}: portion {stage.portion} keeps no module"
                )
        for name in matched:
            if name in owner:
                raise ValueError(
                    f"module {name!r} is matched by both {owner[name].pattern!r} and "
                    f"{stage.pattern!r}; each module can hold one PIP unit"
                )
            owner[name] = stage
    if not owner:
        raise ValueError(
            f"the stages {[s.pattern for s in check_stage_entries(stages)]} keep no module"
        )
    return [(name, owner[name]) for name in names if name in owner]


def input_rule(backbone: nn.Module, config: PIPConfig) -> SizeRequirements:
    """The input sizes the adapted model pads to: the config's ``size_*`` fields where set,
    else spandrel's ``SizeRequirements`` for the backbone (see ``size_requirements``)."""
    known = size_requirements(backbone)
    return SizeRequirements(
        minimum=known.minimum if config.size_minimum is None else config.size_minimum,
        multiple_of=known.multiple_of if config.size_multiple is None else config.size_multiple,
        square=known.square if config.size_square is None else config.size_square,
    )


def _default_sample(backbone: nn.Module, rule: SizeRequirements) -> torch.Tensor:
    """A ``1×C×S×S`` image on the backbone's device and floating dtype: ``C`` the image
    channels spandrel gives (else 3), ``S`` the smallest accepted side from 64 up."""
    param = next((p for p in backbone.parameters() if p.is_floating_point()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    info = spandrel_info(backbone)
    channels = info.input_channels if info is not None else 3
    side = max(64, rule.minimum)
    side = math.ceil(side / rule.multiple_of) * rule.multiple_of
    return torch.rand(1, channels, side, side, device=device, dtype=dtype)


def dry_run(
    backbone: nn.Module,
    config: PIPConfig,
    sample_input: torch.Tensor | None,
    stages: Sequence[tuple[str, HookPoint]] | None = None,
) -> tuple[Trace, torch.Tensor]:
    """Trace the backbone as the adapted model will call it (``config``'s conventions), on
    ``sample_input`` (default: see ``_default_sample``) and, where needed, a larger copy (see
    ``trace_backbone``: every module, or only ``stages``); returns the trace and the sample
    used."""
    rule = input_rule(backbone, config)
    sample = _default_sample(backbone, rule) if sample_input is None else sample_input
    call = lambda net, x: call_backbone(net, x, config)  # noqa: E731
    step = math.lcm(16, rule.multiple_of)
    return trace_backbone(backbone, call, sample, step, stages), sample


def refusal(trace: Trace, name: str, at: HookPoint) -> str | None:
    """Why a unit cannot go at ``name``'s ``at`` (None if it can), from the dry run."""
    record = trace.modules.get(name)
    if record is None:
        return (
            "did not run in a forward pass of the sample input; pick a module that runs (see "
            "pip_adapter.list_stages) or pass sample_input="
        )
    if record.calls > 1:
        return (
            f"runs {record.calls} times per forward pass; PIP units attach to modules that run once"
        )
    feature = record.input if at == "input" else record.output
    if feature is None:
        return f"{at} is not a tensor"
    if feature.problem is not None:
        return f"{at} {list(feature.shape)}: {feature.problem}"
    if feature.layout is None:
        return (
            f"{at} has shape {list(feature.shape)}, which does not follow the image size as a "
            "B×C×H×W or B×H×W×C feature or a B×L×C token sequence (an attention map, a "
            "window or a pooled vector?)"
        )
    return None


def _span(stage: Stage, name: str, channels: int) -> tuple[int, int]:
    if stage.channel_fraction is not None:
        start, stop = (round(f * channels) for f in stage.channel_fraction)
    elif stage.channels is not None:
        start, stop = stage.channels
    else:
        return 0, channels
    if not 0 <= start < stop <= channels:
        raise ValueError(
            f"stage {name!r} has {channels} channels; the channel span ({start}, {stop}) must "
            f"satisfy 0 <= start < stop <= {channels}"
        )
    return start, stop


def locate_stages(
    matched: Sequence[tuple[str, Stage]], trace: Trace
) -> list[tuple[PlannedStage, Stage]]:
    """Step (a): read each matched stage's feature from the dry run (see ``match_stages``,
    ``dry_run``); returns each stage's placement with the entry that chose it (which may
    carry per-stage unit sizes). A stage the dry run shows cannot hold a unit is a
    ValueError saying why."""
    located = []
    for name, stage in matched:
        problem = refusal(trace, name, stage.at)
        if problem is not None:
            raise ValueError(f"stage {name!r} {problem}")
        record = trace.modules[name]
        feature = record.input if stage.at == "input" else record.output
        assert feature is not None and feature.layout is not None and feature.channels
        channels = feature.channels
        span = _span(stage, name, channels)
        located.append((PlannedStage(name, stage.at, feature.layout, channels, span), stage))
    return located


def resolve_config(
    config: PIPConfig,
    located: Sequence[tuple[PlannedStage, Stage]],
    rule: SizeRequirements,
    trace: Trace,
    sample: torch.Tensor,
    owner: str,
) -> PIPConfig:
    """Step (b): ``config`` with every stage written out as an exact module name with its hook
    point, channel span and unit sizes (per-stage values, else the config's, else the
    defaults), the input size rule, and which output is the restored image."""
    stages = []
    for planned, entry in located:
        start, stop = planned.channels
        dim = entry.prompt_dim or config.prompt_dim or default_prompt_dim(stop - start)
        stages.append(
            Stage(
                planned.name,
                at=planned.at,
                channels=planned.channels,
                prompt_dim=dim,
                prompt_size=entry.prompt_size or config.prompt_size or DEFAULT_PROMPT_SIZE,
                heads=entry.heads or config.heads or default_heads(dim),
                feature_ffn_expansion=entry.feature_ffn_expansion,
                feature_ffn_stride=entry.feature_ffn_stride,
            )
        )
    return config.replace(
        stages=tuple(stages),
        size_multiple=rule.multiple_of,
        size_minimum=rule.minimum,
        size_square=rule.square,
        output=resolve_output(trace.output, config.output, sample, owner),
        prompt_size=config.prompt_size or DEFAULT_PROMPT_SIZE,
        feature_ffn_stride=config.feature_ffn_stride or 1,
    )


def build_units(plan: Sequence[PlannedStage], config: PIPConfig) -> list[PromptInPrompt]:
    """One unit per planned stage, sized by the matching stage of the resolved ``config``
    (see ``resolve_config``), with one degradation prompt per ``config.adapted_degradations``."""
    if isinstance(config.stages, str):
        raise ValueError(f"build_units needs a resolved config (see resolve_config), got {config}")
    units = []
    for planned, stage in zip(plan, config.stages, strict=True):
        start, stop = planned.channels
        units.append(
            PromptInPrompt(
                stop - start,
                len(config.adapted_degradations),
                prompt_dim=stage.prompt_dim,
                prompt_size=stage.prompt_size or config.prompt_size or DEFAULT_PROMPT_SIZE,
                heads=stage.heads,
                ffn_expansion=config.ffn_expansion,
                topm_ratios=config.topm_ratios,
                design=config.design,
                feature_ffn_expansion=stage.feature_ffn_expansion or config.feature_ffn_expansion,
                feature_ffn_stride=stage.feature_ffn_stride or config.feature_ffn_stride or 1,
                degradation_ffn_rank=config.degradation_ffn_rank,
            )
        )
    return units
