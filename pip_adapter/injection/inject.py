"""``inject_pip`` and ``load_adapter``: attach PIP units to an existing network."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from spandrel import ModelBase
from torch import nn

from pip_adapter.architectures import architecture_id
from pip_adapter.config import PIPConfig, StageEntry, check_stage_entries
from pip_adapter.injection.auto import auto_stages, spread
from pip_adapter.injection.hooks import has_pip_hooks
from pip_adapter.injection.model import PIPModel, unit_key
from pip_adapter.injection.plan import (
    PlannedStage,
    build_units,
    dry_run,
    input_rule,
    locate_stages,
    match_stages,
    resolve_config,
)
from pip_adapter.injection.presets import CALL_FIELDS, preset_for, preset_stages
from pip_adapter.injection.serialization import (
    CONFIG_NAME,
    SENSOR_CONFIG_NAME,
    SavedAdapter,
    read_adapter,
    read_sensor,
)
from pip_adapter.sensor import DegradationSensor
from pip_adapter.unit import PromptInPrompt
from pip_adapter.weights import check_same_tensors, load_weights

__all__ = ["inject_pip", "load_adapter"]

logger = logging.getLogger("pip_adapter")


def _unwrap(backbone: Any) -> Any:
    """The network of a spandrel descriptor (what ``spandrel.ModelLoader`` returns)."""
    return backbone.model if isinstance(backbone, ModelBase) else backbone


def _check_backbone(backbone: nn.Module) -> None:
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
    if isinstance(backbone, PIPModel) or has_pip_hooks(backbone):
        raise ValueError(
            "this network already has PIP units attached; call unload() on its PIPModel "
            "before injecting again"
        )
    if getattr(backbone, "_orig_mod", None) is not None:
        raise ValueError(
            "inject_pip needs the original module, not a torch.compile wrapper: inject first, "
            "then compile the PIPModel (torch.compile(inject_pip(model)))"
        )


def _device_dtype(backbone: nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next((p for p in backbone.parameters() if p.is_floating_point()), None)
    if param is None:
        return torch.device("cpu"), torch.float32
    return param.device, param.dtype


def _owner(backbone: nn.Module) -> str:
    """The backbone's name in messages: its class, and spandrel's id if it differs."""
    name, identity = type(backbone).__name__, architecture_id(backbone)
    return name if identity in (None, name) else f"{name} (spandrel {identity})"


def _config(config: PIPConfig | str | Sequence[StageEntry] | None, options: dict) -> PIPConfig:
    """The config of an ``inject_pip`` call: ``config`` (or, as before PIPConfig existed, the
    stages in its place) with the keyword options replacing its fields."""
    if config is None or isinstance(config, PIPConfig):
        return (config or PIPConfig()).replace(**options)
    if "stages" in options:
        raise ValueError(
            "stages given twice: as the second argument and as stages=; pass one of them"
        )
    stages = config if isinstance(config, str) else check_stage_entries(config)
    return PIPConfig(stages=stages).replace(**options)


def _prepare(
    backbone: nn.Module, config: PIPConfig, sample_input: torch.Tensor | None
) -> tuple[list[PlannedStage], list[PromptInPrompt], PIPConfig, str]:
    """Plan (find the stages, size the units) and build the units, without touching the
    backbone: ``(plan, units, resolved config, how the stages were chosen)``."""
    owner = _owner(backbone)
    preset = preset_for(backbone)
    if preset is not None:
        data = preset[1]
        filled = {k: data[k] for k in CALL_FIELDS if k in data and getattr(config, k) is None}
        config = config.replace(**filled)
    trace = None
    if config.stages != "auto":
        entries, placement = config.stages, "given stages"
    elif preset is not None:
        entries = preset_stages(preset[1], config)
        placement = f"preset {preset[0]}: {preset[1]['reason']}"
    else:  # automatic placement: a traced dry run of every module
        trace, sample = dry_run(backbone, config, sample_input)
        chosen = auto_stages(trace, owner)
        entries, placement = chosen.stages, chosen.description
        logger.info("inject_pip: no preset for %s; %s", owner, placement)
    from_preset = config.stages == "auto" and preset is not None
    # a preset's split of the levels (NAFNet's) may leave a part empty on a shallow network
    matched = match_stages(backbone, entries, empty_portions=from_preset)
    if from_preset and preset is not None and "most_units" in preset[1]:
        matched = spread(matched, preset[1]["most_units"])
    if trace is None:  # a dry run watching the stages alone
        watched = [(name, stage.at) for name, stage in matched]
        trace, sample = dry_run(backbone, config, sample_input, watched)
    located = locate_stages(matched, trace)
    rule = input_rule(backbone, config)
    resolved = resolve_config(config, located, rule, trace, sample, owner)
    plan = [planned for planned, _ in located]
    device, dtype = _device_dtype(backbone)
    units = [unit.to(device=device, dtype=dtype) for unit in build_units(plan, resolved)]
    return plan, units, resolved, placement


def inject_pip(
    backbone: nn.Module,
    config: PIPConfig | str | Sequence[StageEntry] | None = None,
    *,
    sample_input: torch.Tensor | None = None,
    **options: Any,
) -> PIPModel:
    """Attach PIP units to ``backbone`` without editing its source; returns a ``PIPModel``.

    Args:
        backbone: any restoration network taking ``B×C×H×W`` images (or a spandrel model
            descriptor, whose network is used).
        config: a ``PIPConfig`` (default: ``PIPConfig()``: automatic stages and the five
            default degradations). The stages alone (``"auto"`` or a list) are accepted here
            too, as ``stages=``.
        sample_input: input for the dry runs that find each stage's feature (default: a
            ``1×C×64×64`` image of a size the backbone accepts, on its device); the backbone
            also runs on a slightly larger copy where one run cannot tell a layout.
        options: ``PIPConfig`` fields (``stages``, ``degradations``, ``prompt_dim``,
            ``prompt_size``, ``heads``, ``ffn_expansion``, ``topm_ratios``, ``size_multiple``,
            ``size_minimum``, ``size_square``, ``output``, ``noise_level_map``,
            ``value_range``), replacing those of ``config``.

    ``stages="auto"`` uses the preset of the backbone's spandrel architecture
    (``pip_adapter.PRESETS``, found by spandrel's architecture id), else places units
    automatically from one traced dry run (the decoder inputs that receive skip
    connections; for a single-resolution network, up to four blocks over the second half
    of its body), else refuses with the best candidates; ``model.placement`` says which.
    The input sizes come from spandrel's ``SizeRequirements`` unless the ``size_*`` fields
    say otherwise.

    ``model.config`` is the resolved config (stages as exact module names with their hook
    points, channel spans and unit sizes), from which ``load_adapter`` rebuilds the model.
    A failed call raises before touching the backbone: no hook, no parameter is added. The
    units start as the identity, so the model's outputs equal the backbone's until trained,
    at every input size the backbone accepts. Inject before ``torch.compile``; compiled
    modules are refused.
    """
    backbone = _unwrap(backbone)
    _check_backbone(backbone)
    plan, units, resolved, placement = _prepare(backbone, _config(config, options), sample_input)
    return PIPModel(backbone, plan, units, resolved, placement)


def _load_sensor(
    directory: str | os.PathLike, degradations: tuple[str, ...]
) -> DegradationSensor | None:
    """The adapter's sensor (frozen, in eval mode), or None if it was saved without one."""
    saved = read_sensor(directory)
    if saved is None:
        return None
    config, tensors = saved
    if (
        not isinstance(config["degradations"], list)
        or tuple(config["degradations"]) != degradations
    ):
        raise ValueError(
            f"the sensor in {directory} predicts {config['degradations']} but the adapter's "
            f"degradations are {list(degradations)}"
        )
    mismatch = f"sensor weights in {directory} do not match its config"
    try:
        # first without memory (on the meta device): a file naming a huge timm network is
        # refused for its weights before that network is allocated
        with torch.device("meta"):
            check_same_tensors(DegradationSensor.from_config(config), tensors, mismatch)
        sensor = DegradationSensor.from_config(config)
    except (TypeError, KeyError) as err:
        raise ValueError(f"{SENSOR_CONFIG_NAME} in {directory} is malformed: {err}") from None
    except ValueError as err:
        if str(err).startswith(mismatch):
            raise
        raise ValueError(f"{SENSOR_CONFIG_NAME} in {directory} is malformed: {err}") from None
    load_weights(sensor, tensors, mismatch)
    return sensor.requires_grad_(False).eval()


def _check_saved_stages(backbone: nn.Module, saved: SavedAdapter, directory) -> None:
    """A saved config is resolved: its stages are exact module names. Anything else is refused
    before matching, so that a pattern in a file is never run as a regular expression (a
    hostile one could take exponential time)."""
    names = {name for name, _ in backbone.named_modules() if name}
    stages = saved.config.stages
    if isinstance(stages, str):
        raise ValueError(f"{CONFIG_NAME} in {directory} must list its stages, not {stages!r}")
    for stage in stages:
        if stage.module_type is not None:
            raise ValueError(
                f"stage {stage.pattern!r}: {CONFIG_NAME} in {directory} names its modules "
                f"exactly, without module_type (got {stage.module_type!r})"
            )
        if stage.pattern not in names:
            raise ValueError(
                f"stage {stage.pattern!r} matches no module of {type(backbone).__name__} "
                f"({CONFIG_NAME} in {directory} names its modules exactly)"
            )


def _check_features(plan: Sequence[PlannedStage], saved: SavedAdapter, directory) -> None:
    """Refuse a backbone whose stage features differ from those the adapter was trained on."""
    for stage in plan:
        expected = saved.features.get(stage.name)
        if expected is None:
            raise ValueError(
                f"{CONFIG_NAME} in {directory} describes no feature for {stage.name!r}"
            )
        if (expected["layout"], expected["channels"]) != (stage.layout, stage.stage_channels):
            raise ValueError(
                f"stage {stage.name!r}: the adapter expects a {expected['layout']} feature with "
                f"{expected['channels']} channels, this backbone gives a {stage.layout} feature "
                f"with {stage.stage_channels} (a different configuration of "
                f"{saved.backbone_class}?)"
            )


def load_adapter(
    backbone: nn.Module, directory: str | os.PathLike, *, sample_input: torch.Tensor | None = None
) -> PIPModel:
    """Inject a saved adapter into ``backbone`` and load its weights, and its degradation
    sensor (``model.sensor``, for blind restoration) if it was saved with one.

    The mirror image of ``save_adapter``: the config read from the file is injected as
    ``inject_pip(backbone, config)`` does, then the weights are loaded. Refuses, with a
    ValueError that says what differs, a backbone of another class, stages that are missing
    or have other shapes, and corrupt or mismatched files. On any failure the backbone is left
    untouched.
    """
    backbone = _unwrap(backbone)
    _check_backbone(backbone)
    saved = read_adapter(directory)
    if type(backbone).__name__ != saved.backbone_class:
        raise ValueError(
            f"the adapter in {directory} was trained on a {saved.backbone_class}, got a "
            f"{type(backbone).__name__}"
        )
    _check_saved_stages(backbone, saved, directory)
    sensor = _load_sensor(directory, saved.config.degradations)
    plan, units, resolved, _ = _prepare(backbone, saved.config, sample_input)
    _check_features(plan, saved, directory)
    modules = nn.ModuleDict({unit_key(s.name): u for s, u in zip(plan, units, strict=True)})
    load_weights(modules, saved.tensors, f"adapter weights in {directory} do not match its config")
    model = PIPModel(backbone, plan, units, resolved, f"loaded from {directory}")
    model.sensor = sensor
    return model
