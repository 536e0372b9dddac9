"""PIPModel: a backbone with PIP units attached by hooks, steered by ``degradation=``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from pip_adapter._version import __version__
from pip_adapter.conditioning import DegradationSpec, degradation_weights
from pip_adapter.injection.hooks import Conditioning, StageHook, attach_hook, detach_hooks
from pip_adapter.injection.plan import PlannedStage
from pip_adapter.injection.serialization import write_adapter, write_sensor
from pip_adapter.padding import crop_to, pad_to_multiple
from pip_adapter.sensor import DegradationSensor
from pip_adapter.unit import PromptInPrompt

__all__ = ["PIPModel", "check_native_degradations", "unit_key"]


def unit_key(stage: str) -> str:
    """Key of a stage's unit in ``PIPModel.pip_units`` (module names may not contain dots)."""
    return stage.replace(".", "/")


def check_native_degradations(
    native: Sequence[str], degradations: Sequence[str]
) -> tuple[str, ...]:
    """Validate ``native_degradations``: distinct names from ``degradations``, leaving at least
    one degradation for the units to learn."""
    if isinstance(native, str) or not isinstance(native, Sequence):
        raise ValueError(
            f"native_degradations must be a sequence of names such as ('noise',), got {native!r}"
        )
    names = tuple(native)
    unknown = [n for n in names if n not in degradations]
    if unknown:
        raise ValueError(
            f"native_degradations {unknown} are not among the degradations {list(degradations)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"native_degradations must be distinct, got {list(names)}")
    if len(names) == len(degradations):
        raise ValueError(
            f"native_degradations {list(names)} cover every degradation; leave at least one "
            "for the PIP units to learn"
        )
    return names


def _is_frozen(module: nn.Module) -> bool:
    """True when the module has parameters and none of them requires gradients."""
    flags = [p.requires_grad for p in module.parameters()]
    return bool(flags) and not any(flags)


class PIPModel(nn.Module):
    """A restoration backbone with PIP units on chosen stages. Build it with ``inject_pip``.

    ``model(x, degradation=...)`` runs the backbone with every unit conditioned on the given
    degradation (a name, one name per sample, ids, a ``{name: weight}`` mixture, ``B×T``
    weights, or ``None`` to ask ``model.sensor``). Inputs are reflect-padded to
    ``size_multiple`` and outputs cropped back, so any size works.

    The units are submodules (``pip_units``) and follow ``.to()``, ``.half()``, DDP, deepcopy
    and pickling. The backbone's own ``state_dict`` keys are unchanged. Calling the backbone
    object directly (not through this model) runs it exactly as before injection: the hooks
    pass features through untouched when no ``degradation`` is in effect. Not thread-safe:
    one forward at a time per model.

    ``native_degradations`` are those the backbone already restores (e.g. ``("noise",)`` for a
    pretrained denoiser). Every unit's change is scaled by ``1 - w_native``, the sample's
    total weight on them (through ``torch.lerp``, exact at both ends): for a native label the
    model computes exactly what the backbone computes; a mixture moves between the two. The
    units hold prompts only for the other degradations, their weights renormalised over them.
    """

    def __init__(
        self,
        backbone: nn.Module,
        plan: Sequence[PlannedStage],
        units: Sequence[PromptInPrompt],
        degradations: Sequence[str],
        size_multiple: int = 1,
        native_degradations: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.pip_units = nn.ModuleDict(
            {unit_key(p.name): u for p, u in zip(plan, units, strict=True)}
        )
        self.plan = list(plan)
        self.degradations = tuple(degradations)
        self.native_degradations = check_native_degradations(
            native_degradations, self.degradations
        )
        self.size_multiple = size_multiple
        self.sensor: nn.Module | None = None
        self._conditioning = Conditioning()
        self._requires_grad = {n: p.requires_grad for n, p in backbone.named_parameters()}
        self._unloaded = False
        modules = dict(backbone.named_modules())
        for stage, unit in zip(plan, units, strict=True):
            hook = StageHook(unit, self._conditioning, stage.hook, stage.layout, stage.channels)
            attach_hook(modules[stage.name], hook)

    @property
    def stages(self) -> list[str]:
        """Qualified names of the backbone modules that carry a PIP unit."""
        return [stage.name for stage in self.plan]

    def degradation_weights(
        self, x: torch.Tensor, degradation: DegradationSpec | None
    ) -> torch.Tensor:
        """``B×T`` weights for a ``degradation=`` argument; ``None`` asks ``self.sensor``."""
        if degradation is not None:
            return degradation_weights(degradation, self.degradations, x.shape[0], x.device)
        if self.sensor is None:
            raise ValueError(
                "degradation=None asks model.sensor (a pip_adapter.DegradationSensor) for blind "
                "restoration, but no sensor is attached; pass degradation= one of "
                f"{list(self.degradations)} (or a mixture), or set model.sensor"
            )
        names = tuple(getattr(self.sensor, "degradations", ()))
        if names != self.degradations:
            raise ValueError(
                f"model.sensor predicts {list(names)} but this model's degradations are "
                f"{list(self.degradations)}"
            )
        return self.sensor.predict_weights(x)

    def _unit_weights(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Split ``B×T`` weights into the units' weights (over the non-native degradations)
        and the gate ``1 - w_native`` (``None`` when no degradation is native)."""
        if not self.native_degradations:
            return weights, None
        native = torch.tensor(
            [name in self.native_degradations for name in self.degradations],
            device=weights.device,
        )
        gate = (1 - weights[:, native].sum(dim=1)).clamp(0, 1)
        adapted = weights[:, ~native]
        # an all-native sample: its units' output is discarded (gate 0); any valid weights do
        adapted = torch.where(adapted.sum(dim=1, keepdim=True) > 0, adapted, 1.0)
        return adapted, gate

    def forward(
        self, x: torch.Tensor, degradation: DegradationSpec | None = None, **kwargs
    ) -> torch.Tensor:
        if self._unloaded:
            raise RuntimeError("this PIPModel was unloaded; use the backbone unload() returned")
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a B×C×H×W image tensor, got {shape}")
        weights = self.degradation_weights(x, degradation)
        height, width = x.shape[-2:]
        padded = pad_to_multiple(x, self.size_multiple)
        self._conditioning.weights, self._conditioning.gate = self._unit_weights(weights)
        try:
            out = self.backbone(padded, **kwargs)
        finally:
            self._conditioning.weights = self._conditioning.gate = None
        return crop_to(out, padded, height, width)

    def freeze_backbone(self) -> PIPModel:
        """Train only the adapter: the backbone's parameters stop requiring gradients and the
        backbone stays in eval mode through ``train()`` calls, so that adapter training leaves
        every backbone tensor, parameters and buffers (BatchNorm running statistics) alike,
        bit-exact. Dropout and drop-path in a frozen backbone are therefore off as well: the
        adapter learns on the network the backbone is at inference."""
        self.backbone.requires_grad_(False)
        self.pip_units.requires_grad_(True)
        return self.train(self.training)

    def unfreeze_backbone(self) -> PIPModel:
        """Train the backbone too (full fine-tuning): undoes :meth:`freeze_backbone`."""
        self.backbone.requires_grad_(True)
        return self.train(self.training)

    def train(self, mode: bool = True) -> PIPModel:
        """Set training mode, except for frozen parts, which stay in eval mode: the backbone
        when none of its parameters requires gradients (after :meth:`freeze_backbone`), and a
        sensor likewise frozen. Their batch statistics and dropout never move."""
        super().train(mode)
        for part in (self.backbone, self.sensor):
            if mode and part is not None and _is_frozen(part):
                part.eval()
        return self

    def parameter_counts(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts."""
        params = list(self.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

    def print_trainable_parameters(self) -> None:
        trainable, total = self.parameter_counts()
        print(
            f"trainable params: {trainable:,d} || all params: {total:,d} || "
            f"trainable%: {100 * trainable / max(total, 1):.4f}"
        )

    def prompt_regularization(self, angle_degrees: float = 90.0) -> torch.Tensor:
        """Sum over units of the angle penalty that keeps degradation prompts apart."""
        return sum(
            (unit.prompt_regularization(angle_degrees) for unit in self.pip_units.values()),
            torch.zeros((), device=next(self.pip_units.parameters()).device),
        )

    def adapter_config(self) -> dict:
        """What ``save_adapter`` writes to ``adapter_config.json``."""
        cls = type(self.backbone)
        return {
            "library_version": __version__,
            "backbone": {"class": cls.__name__, "module": cls.__module__},
            "degradations": list(self.degradations),
            "native_degradations": list(self.native_degradations),
            "size_multiple": self.size_multiple,
            "stages": [stage.to_dict() for stage in self.plan],
        }

    def save_adapter(self, directory: str | os.PathLike) -> Path:
        """Write the adapter alone (config + PIP unit weights), not the backbone, and
        ``self.sensor`` if set (``sensor_config.json`` + ``sensor.safetensors``)."""
        sensor = None
        if self.sensor is not None:
            if not isinstance(self.sensor, DegradationSensor):
                raise TypeError(
                    "save_adapter stores a pip_adapter.DegradationSensor, but model.sensor is a "
                    f"{type(self.sensor).__name__}; save it yourself or set model.sensor = None"
                )
            config = {"library_version": __version__, **self.sensor.config()}
            sensor = (config, self.sensor.state_dict())
        directory = write_adapter(directory, self.adapter_config(), self.pip_units.state_dict())
        write_sensor(directory, sensor)
        return directory

    def unload(self) -> nn.Module:
        """Remove every hook and return the original backbone, as it was before injection."""
        modules = dict(self.backbone.named_modules())
        for stage in self.plan:
            detach_hooks(modules[stage.name])
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(self._requires_grad.get(name, param.requires_grad))
        self._unloaded = True
        return self.backbone
