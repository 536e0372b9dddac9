"""Planning an injection: which module, which channels, and the unit built for each stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from pip_adapter.injection.stages import Stage, match_stages, probe_stages
from pip_adapter.unit import PromptInPrompt, default_heads, default_prompt_dim

__all__ = ["PlannedStage", "plan_stages"]


@dataclass(frozen=True)
class PlannedStage:
    """One PIP unit's placement and shape, as written to ``adapter_config.json``."""

    name: str
    hook: str
    layout: str
    feature_shape: tuple[int, ...]
    stage_channels: int
    channels: tuple[int, int]
    prompt_dim: int
    prompt_size: int
    heads: int
    ffn_expansion: float
    topm_ratios: tuple[float, ...] | None
    # adapter files written before these options existed hold paper units
    design: str = "paper"
    feature_ffn_expansion: float | None = None

    def build_unit(self, num_degradations: int) -> PromptInPrompt:
        start, stop = self.channels
        return PromptInPrompt(
            stop - start,
            num_degradations,
            prompt_dim=self.prompt_dim,
            prompt_size=self.prompt_size,
            heads=self.heads,
            ffn_expansion=self.ffn_expansion,
            topm_ratios=self.topm_ratios,
            design=self.design,
            feature_ffn_expansion=self.feature_ffn_expansion,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannedStage:
        fields = dict(data)
        for key in ("feature_shape", "channels", "topm_ratios"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        return cls(**fields)


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


def plan_stages(
    backbone: nn.Module,
    stages: Sequence[str | Stage | Mapping[str, Any]],
    *,
    sample_input: torch.Tensor | None,
    prompt_dim: int | None,
    prompt_size: int | None,
    heads: int | None,
    ffn_expansion: float,
    topm_ratios: Sequence[float] | None,
    design: str = "compact",
    feature_ffn_expansion: float | None = None,
) -> list[PlannedStage]:
    """Match the stage entries, dry-run the backbone once, and size a unit for each stage."""
    matched = match_stages(backbone, stages)
    infos = probe_stages(backbone, [name for name, _ in matched], sample_input)
    planned = []
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
        shape = info.input_shape if stage.hook == "input" else info.output_shape
        layout = info.layout if stage.hook == "input" else info.output_layout
        if layout is None:
            raise ValueError(
                f"stage {name!r} {stage.hook} has shape {shape}; PIP needs a B×C×H×W feature or "
                "a B×L×C token sequence whose module also receives (height, width)"
            )
        channels = shape[1] if layout == "image" else shape[2]
        start, stop = _span(stage, name, channels)
        dim = stage.prompt_dim or prompt_dim or default_prompt_dim(stop - start)
        planned.append(
            PlannedStage(
                name=name,
                hook=stage.hook,
                layout=layout,
                feature_shape=tuple(shape),
                stage_channels=channels,
                channels=(start, stop),
                prompt_dim=dim,
                prompt_size=stage.prompt_size or prompt_size or 16,
                heads=heads or default_heads(dim),
                ffn_expansion=ffn_expansion,
                topm_ratios=tuple(topm_ratios) if topm_ratios is not None else None,
                design=design,
                feature_ffn_expansion=feature_ffn_expansion,
            )
        )
    return planned
