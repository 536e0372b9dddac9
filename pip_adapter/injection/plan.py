"""Planning an injection, in two steps: (a) find the stages and their features with one dry run
of the backbone; (b) size a unit for each from the config, giving the resolved config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pip_adapter.config import HookPoint, PIPConfig, Stage, StageEntry
from pip_adapter.injection.stages import Layout, match_stages, probe_stages
from pip_adapter.unit import PromptInPrompt, default_heads, default_prompt_dim

__all__ = ["PlannedStage", "build_units", "locate_stages", "resolve_config"]


@dataclass(frozen=True)
class PlannedStage:
    """Where one PIP unit goes and what the dry run found there.

    ``layout`` is ``"image"`` (``B×C×H×W``) or ``"tokens"`` (``B×L×C``); ``stage_channels`` is
    the feature's ``C``; the unit modulates channels ``channels = (start, stop)`` of it.
    """

    name: str
    at: HookPoint
    layout: Layout
    stage_channels: int
    channels: tuple[int, int]


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
    backbone: nn.Module, stages: Sequence[StageEntry], sample_input: torch.Tensor | None
) -> list[tuple[PlannedStage, Stage]]:
    """Step (a): match the stage entries and dry-run the backbone once; returns each stage's
    placement with the entry that chose it (which may carry per-stage unit sizes)."""
    matched = match_stages(backbone, stages)
    infos = probe_stages(backbone, [name for name, _ in matched], sample_input)
    located = []
    for name, stage in matched:
        info = infos.get(name)
        if info is None:
            raise ValueError(
                f"stage {name!r} did not run in a forward pass of the sample input; pick a "
                "module that runs (see pip_adapter.list_stages) or pass sample_input="
            )
        if info.calls > 1:
            raise ValueError(
                f"stage {name!r} runs {info.calls} times per forward pass; PIP units attach to "
                "modules that run once"
            )
        shape = info.input_shape if stage.at == "input" else info.output_shape
        layout = info.layout if stage.at == "input" else info.output_layout
        if layout is None:
            raise ValueError(
                f"stage {name!r} {stage.at} has shape {shape}; PIP needs a B×C×H×W feature or "
                "a B×L×C token sequence whose module also receives (height, width)"
            )
        channels = shape[1] if layout == "image" else shape[2]
        planned = PlannedStage(name, stage.at, layout, channels, _span(stage, name, channels))
        located.append((planned, stage))
    return located


def resolve_config(
    config: PIPConfig, located: Sequence[tuple[PlannedStage, Stage]], size_multiple: int
) -> PIPConfig:
    """Step (b): ``config`` with every stage written out as an exact module name with its hook
    point, channel span and unit sizes (per-stage values, else the config's, else the
    defaults), and the size multiple the model uses."""
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
                prompt_size=entry.prompt_size or config.prompt_size,
                heads=entry.heads or config.heads or default_heads(dim),
            )
        )
    return config.replace(stages=tuple(stages), size_multiple=size_multiple)


def build_units(plan: Sequence[PlannedStage], config: PIPConfig) -> list[PromptInPrompt]:
    """One unit per planned stage, sized by the matching stage of the resolved ``config``
    (see ``resolve_config``)."""
    units = []
    for planned, stage in zip(plan, config.stages, strict=True):
        start, stop = planned.channels
        units.append(
            PromptInPrompt(
                stop - start,
                len(config.adapted_degradations),
                prompt_dim=stage.prompt_dim,
                prompt_size=stage.prompt_size or config.prompt_size,
                heads=stage.heads,
                ffn_expansion=config.ffn_expansion,
                topm_ratios=config.topm_ratios,
            )
        )
    return units
