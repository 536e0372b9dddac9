"""``inject_pip`` and ``load_adapter``: attach PIP units to an existing network."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pip_adapter.conditioning import DEFAULT_DEGRADATIONS, check_degradation_names
from pip_adapter.functional import DEFAULT_TOPM_RATIOS
from pip_adapter.injection.hooks import has_pip_hooks
from pip_adapter.injection.model import PIPModel, check_native_degradations, unit_key
from pip_adapter.injection.plan import PlannedStage, plan_stages
from pip_adapter.injection.presets import PRESETS
from pip_adapter.injection.serialization import SENSOR_CONFIG_NAME, read_adapter, read_sensor
from pip_adapter.injection.stages import Stage
from pip_adapter.sensor import DegradationSensor

__all__ = ["inject_pip", "load_adapter"]


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


def _preset(backbone: nn.Module) -> dict[str, Any]:
    name = type(backbone).__name__
    if name not in PRESETS:
        raise ValueError(
            f"no stage preset for {name}; presets exist for {sorted(PRESETS)}. Pass "
            "stages=[module names or regular expressions]; pip_adapter.list_stages(model, x) "
            "shows the candidates"
        )
    return PRESETS[name]


def _build(
    backbone: nn.Module,
    plan: Sequence[PlannedStage],
    num_prompts: int,
    size_multiple: int | None,
) -> tuple[list, int]:
    device, dtype = _device_dtype(backbone)
    units = [stage.build_unit(num_prompts).to(device=device, dtype=dtype) for stage in plan]
    if size_multiple is None:
        size_multiple = PRESETS.get(type(backbone).__name__, {}).get("size_multiple", 1)
    if not isinstance(size_multiple, int) or size_multiple < 1:
        raise ValueError(f"size_multiple must be a positive integer, got {size_multiple!r}")
    return units, size_multiple


def inject_pip(
    backbone: nn.Module,
    stages: str | Sequence[str | Stage | Mapping[str, Any]] = "auto",
    degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
    *,
    sample_input: torch.Tensor | None = None,
    prompt_dim: int | None = None,
    prompt_size: int | None = None,
    heads: int | None = None,
    ffn_expansion: float = 2.66,
    topm_ratios: Sequence[float] | None = DEFAULT_TOPM_RATIOS,
    size_multiple: int | None = None,
    native_degradations: Sequence[str] = (),
) -> PIPModel:
    """Attach PIP units to ``backbone`` without editing its source; returns a :class:`PIPModel`.

    Args:
        backbone: any restoration network taking ``B×C×H×W`` images.
        stages: ``"auto"`` for the preset of a known class (Restormer, NAFNet, SwinIR), or a
            list of exact module names / regular expressions (``re.fullmatch``) / :class:`Stage`
            specs. Every entry must match something.
        degradations: the degradation vocabulary, in prompt order.
        sample_input: input for the one dry run that finds each stage's feature shape
            (default ``1×3×64×64`` on the backbone's device).
        prompt_dim, prompt_size, heads, ffn_expansion, topm_ratios: unit hyperparameters
            (see :class:`PromptInPrompt`); per-stage overrides go in :class:`Stage`.
        size_multiple: inputs are padded to a multiple of this (default: the preset's, else 1).
        native_degradations: degradations the backbone already restores (e.g. ``("noise",)``
            for a pretrained denoiser); with their label the model stays exactly the backbone
            (see :class:`PIPModel`), so adapting it to new degradations forgets nothing.

    A failed call raises before touching the backbone: no hook, no parameter is added. The
    units start as the identity, so the model's outputs equal the backbone's until trained.
    Inject before ``torch.compile``; compiled modules are refused.
    """
    _check_backbone(backbone)
    names = check_degradation_names(degradations)
    native = check_native_degradations(native_degradations, names)
    entries = (
        _preset(backbone)["stages"] if isinstance(stages, str) and stages == "auto" else stages
    )
    plan = plan_stages(
        backbone,
        entries,
        sample_input=sample_input,
        prompt_dim=prompt_dim,
        prompt_size=prompt_size,
        heads=heads,
        ffn_expansion=ffn_expansion,
        topm_ratios=topm_ratios,
    )
    units, multiple = _build(backbone, plan, len(names) - len(native), size_multiple)
    return PIPModel(backbone, plan, units, names, multiple, native)


def _load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)``, with a mismatch reported as a one-line ValueError."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"{what} do not match its config: {detail}") from None


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
    try:
        sensor = DegradationSensor.from_config(config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{SENSOR_CONFIG_NAME} in {directory} is malformed: {err}") from None
    _load_weights(sensor, tensors, f"sensor weights in {directory}")
    return sensor.requires_grad_(False).eval()


def load_adapter(
    backbone: nn.Module, directory: str | os.PathLike, *, sample_input: torch.Tensor | None = None
) -> PIPModel:
    """Inject a saved adapter into ``backbone`` and load its weights, and its degradation
    sensor (``model.sensor``, for blind restoration) if it was saved with one.

    Refuses, with a ValueError that says what differs, a backbone of another class, stages
    that are missing or have other shapes, and corrupt or mismatched files. On any failure the
    backbone is left untouched.
    """
    _check_backbone(backbone)
    config, tensors = read_adapter(directory)
    expected = config["backbone"].get("class")
    if type(backbone).__name__ != expected:
        raise ValueError(
            f"the adapter in {directory} was trained on a {expected}, got a "
            f"{type(backbone).__name__}"
        )
    names = check_degradation_names(config["degradations"])
    native = check_native_degradations(config.get("native_degradations", []), names)
    sensor = _load_sensor(directory, names)
    try:
        saved = [PlannedStage.from_dict(stage) for stage in config["stages"]]
    except TypeError as err:
        raise ValueError(
            f"the stages in the adapter config of {directory} are malformed: {err}"
        ) from None
    fresh = plan_stages(
        backbone,
        [Stage(s.name, hook=s.hook) for s in saved],
        sample_input=sample_input,
        prompt_dim=None,
        prompt_size=None,
        heads=None,
        ffn_expansion=2.66,
        topm_ratios=None,
    )
    for old, new in zip(saved, fresh, strict=True):
        if (old.layout, old.stage_channels) != (new.layout, new.stage_channels):
            raise ValueError(
                f"stage {old.name!r}: the adapter expects a {old.layout} feature with "
                f"{old.stage_channels} channels, this backbone gives a {new.layout} feature with "
                f"{new.stage_channels} (a different configuration of {expected}?)"
            )
    units, multiple = _build(backbone, saved, len(names) - len(native), config["size_multiple"])
    modules = torch.nn.ModuleDict({unit_key(s.name): u for s, u in zip(saved, units, strict=True)})
    _load_weights(modules, tensors, f"adapter weights in {directory}")
    model = PIPModel(backbone, saved, units, names, multiple, native)
    model.sensor = sensor
    return model
