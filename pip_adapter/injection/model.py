"""PIPModel: a backbone with PIP units attached by hooks, steered by ``degradation=``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from spandrel import SizeRequirements
from torch import nn

from pip_adapter._version import __version__
from pip_adapter.caching import CacheGroup
from pip_adapter.conditioning import (
    CLEAN,
    DegradationSpec,
    capturing,
    check_weights,
    degradation_weights,
    restorable_degradations,
    split_clean,
)
from pip_adapter.config import BLUR, PIPConfig
from pip_adapter.injection.calling import call_backbone, restored_image
from pip_adapter.injection.growth import GrowthMode, grow
from pip_adapter.injection.hooks import (
    Conditioning,
    HostedUnit,
    StageHook,
    attach_hook,
    detach_hook,
)
from pip_adapter.injection.plan import PlannedStage
from pip_adapter.injection.serialization import write_adapter, write_sensor
from pip_adapter.metrics import blur_effect
from pip_adapter.padding import crop_to, pad_to_requirements
from pip_adapter.sensor import DegradationSensor
from pip_adapter.unit import PromptInPrompt

__all__ = ["PIPModel", "blend_output", "check_blendable", "unit_key"]


def check_blendable(x: torch.Tensor, restored: torch.Tensor) -> None:
    """A ValueError unless the network's output has the input's shape: ``"clean"`` and output
    strengths blend the two."""
    if restored.shape != x.shape:
        raise ValueError(
            f"{CLEAN!r} and output strengths blend the input with the output, but this "
            f"backbone turns a {tuple(x.shape)} input into a {tuple(restored.shape)} output; "
            f"leave {CLEAN!r} out of its degradations and output_strength unset"
        )


def blend_output(
    x: torch.Tensor, restored: torch.Tensor, strength: torch.Tensor | float
) -> torch.Tensor:
    """``x + a · (restored − x)``, the output at strength ``a`` (one number, or a tensor with
    one per sample of a B×C×H×W batch), in the dtype ``x`` and ``restored`` promote to: how a
    model's output is blended with its input, by ``PIPModel`` (output strengths, ``"clean"``),
    the strength fits and the benchmarks (a unit's native-degradation gate, in hooks.py, blends
    features in the unit's dtype instead). ``torch.lerp`` is exact at both ends: ``x`` at 0,
    ``restored`` at 1."""
    dtype = torch.promote_types(x.dtype, restored.dtype)
    if isinstance(strength, torch.Tensor):
        strength = strength.to(dtype).view(-1, 1, 1, 1)
    return torch.lerp(x.to(dtype), restored.to(dtype), strength)


def unit_key(stage: str) -> str:
    """Key of a stage's unit in ``PIPModel.pip_units`` (module names may not contain dots)."""
    return stage.replace(".", "/")


# layers whose training mode moves state or adds noise: kept in eval mode in a frozen part.
# Other layers keep their training mode: some networks (e.g. PLKSR) switch to in-place
# inference paths in eval mode, through which the units' gradients could not flow back.
_STATEFUL = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)


def _is_frozen(module: nn.Module) -> bool:
    """True when the module has parameters and none of them requires gradients."""
    flags = [p.requires_grad for p in module.parameters()]
    return bool(flags) and not any(flags)


class WeightSensor(Protocol):
    """What ``model.sensor`` gives a blind call (a ``DegradationSensor`` does): soft weights
    ``B×T`` over the model's degradations."""

    def predict_weights(self, x: torch.Tensor) -> torch.Tensor: ...


class PIPModel(nn.Module):
    """A restoration backbone with PIP units on chosen stages. Build it with ``inject_pip``.

    ``model(x, degradation=...)`` runs the backbone with every unit conditioned on the given
    degradation (a name, one name per sample, ids, a ``{name: weight}`` mixture, ``B×T``
    weights, or ``None`` to ask ``model.sensor``). The weights are checked once here, then
    handed to every unit. An input the backbone does not accept as it is (see
    ``size_requirements``) is reflect-padded to the nearest size it accepts and the output
    cropped back, so any size works, and one it accepts is passed unchanged. The backbone is
    called as ``config`` says (``noise_level_map``, ``value_range``); when it returns a
    tuple, list or dict, the model returns the restored image (``config.output``).

    ``model.config`` is the resolved ``PIPConfig``; ``model.plan`` says where each unit sits
    (``PlannedStage``) and ``model.placement`` how the stages were chosen (a preset, the
    automatic placement, given stages). The units are submodules (``pip_units``) and follow
    ``.to()``, ``.half()``, DDP, deepcopy and pickling. The backbone's own ``state_dict`` keys are
    unchanged. Calling the backbone object directly (not through this model) runs it exactly
    as before injection: the hooks pass features through untouched when no ``degradation`` is
    in effect.

    Thread-safe in inference: the weights of a call are held per call (a context variable, see
    ``Conditioning``), so threads (or asyncio tasks) sharing one model, as a server's workers
    do, each get the restoration their own ``degradation=`` asks for. Training one model from
    several threads at once is not supported (the optimiser state is shared anyway).

    With ``"clean"`` among the degradations (an image that needs nothing), the units are built
    for the other degradations, and the output is ``torch.lerp(x, f(x), 1 - w_clean)``, where
    ``f`` is the network steered by the other weights renormalised: exactly ``x`` for a clean
    image (the backbone is not even run when every image of the batch is clean), exactly
    ``f(x)`` for an image without clean weight, and a softened restoration for a mixture, such
    as a sensor's unsure prediction. The backbone's output must then have the input's shape.
    ``config.output_strength`` generalises this: the share of ``f(x)`` is ``Σ_d w_d a_d``
    over the sample's weights, with ``a_d`` the strength of degradation ``d`` (1 unless set,
    0 for ``"clean"``), so that a degradation the network cannot improve can be restored
    softly or not at all (fit them with ``pip_adapter.training.calibrate_output_strength``);
    ``config.blur_strength`` sets blur's ``a`` per image from the input's blur effect.

    ``config.native_degradations`` are those the backbone already restores (e.g.
    ``("noise",)`` for a pretrained denoiser). Every unit's change is scaled by
    ``1 - w_native``, the sample's total weight on them (through ``torch.lerp``, exact at both
    ends): with a native label the model computes exactly what the backbone computes, however
    long the adapter trains; a mixture moves between the two. The units hold prompts only for
    the other degradations, their weights renormalised over them. ``"clean"`` and native
    degradations combine: ``config.adapted_degradations`` are those with prompts (neither).

    ``units`` may be other blocks with the same ``modulate(feature, weights)`` method as
    ``PromptInPrompt`` (e.g. ``pip_adapter.baselines.PromptIRBlock``), placed by the plan and
    config of an injected model; ``save_adapter`` stores PromptInPrompt units only.
    """

    def __init__(
        self,
        backbone: nn.Module,
        plan: Sequence[PlannedStage],
        units: Sequence[nn.Module],
        config: PIPConfig,
        placement: str = "given stages",
    ) -> None:
        super().__init__()
        names = [stage.name for stage in plan]
        resolved = (
            isinstance(config, PIPConfig)
            and isinstance(config.stages, tuple)
            and config.size_multiple is not None
            and names == [stage.pattern for stage in config.stages]
        )
        if not resolved:
            raise ValueError(
                "config must be the resolved PIPConfig of this plan (the model.config of "
                "inject_pip), with one stage per planned stage, in the same order"
            )
        self.backbone = backbone
        self.pip_units = nn.ModuleDict({unit_key(n): u for n, u in zip(names, units, strict=True)})
        self.plan = list(plan)
        self.config = config
        self.placement = placement
        self.sensor: nn.Module | None = None
        self._conditioning = Conditioning()
        self._caches = CacheGroup()  # its members: the caches the last forward pass used
        self._strength_cache: tuple[tuple, torch.Tensor] | None = None  # (key, table)
        self._requires_grad = {n: p.requires_grad for n, p in backbone.named_parameters()}
        self._unloaded = False
        modules = dict(backbone.named_modules())
        # the handles survive deepcopy and pickling along with the modules: they refer to the
        # modules' hook dicts, which are copied with them (see test_injection)
        self._hooks = [
            StageHook(unit, self._conditioning, stage.at, stage.layout, stage.channels)
            for stage, unit in zip(plan, units, strict=True)
        ]
        self._handles = [
            attach_hook(modules[stage.name], hook)
            for stage, hook in zip(plan, self._hooks, strict=True)
        ]

    @property
    def degradations(self) -> tuple[str, ...]:
        """The degradation vocabulary, in prompt order (``config.degradations``)."""
        return self.config.degradations

    @property
    def restorable_degradations(self) -> tuple[str, ...]:
        """The degradations the units restore: all but ``"clean"``, in prompt order."""
        return restorable_degradations(self.degradations)

    @property
    def size_multiple(self) -> int:
        """Input sides are padded to a multiple of this (``config.size_multiple``)."""
        return self.size_requirements.multiple_of

    @property
    def size_requirements(self) -> SizeRequirements:
        """The input sizes the backbone accepts (spandrel's ``SizeRequirements``: minimum
        side, multiple, square), from the resolved config."""
        config = self.config
        assert config.size_multiple is not None  # a resolved config has it (__init__)
        return SizeRequirements(
            minimum=config.size_minimum or 0,
            multiple_of=config.size_multiple,
            square=bool(config.size_square),
        )

    @property
    def stages(self) -> list[str]:
        """Qualified names of the backbone modules that carry a PIP unit."""
        return [stage.name for stage in self.plan]

    def degradation_weights(
        self, x: torch.Tensor, degradation: DegradationSpec | None
    ) -> torch.Tensor:
        """Checked ``B×T`` weights (rows summing to 1) for a ``degradation=`` argument; ``None``
        asks ``self.sensor``."""
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
        weights = cast(WeightSensor, self.sensor).predict_weights(x)
        return check_weights(weights, x.shape[0], len(self.degradations))

    def forward(
        self, x: torch.Tensor, degradation: DegradationSpec | None = None, **kwargs
    ) -> torch.Tensor:
        self._check_call(x)
        weights = self.degradation_weights(x, degradation)
        if self.config.blur_strength is None and all(a == 1 for a in self.config.strengths()):
            return self._full_output(x, weights, kwargs)  # no "clean", no strength below 1
        amount = self._amount(x, weights)
        tracing = torch.compiler.is_compiling() or capturing(x)  # no value may be read back
        if not tracing and bool((amount == 0).all()):
            return x.clone()  # every image is clean (or at strength 0): nothing to run
        restored = self._full_output(x, weights, kwargs)
        check_blendable(x, restored)
        return blend_output(x, restored, amount)

    def full_output(self, x: torch.Tensor, weights: torch.Tensor, **kwargs) -> torch.Tensor:
        """The network's output at full strength, ``f(x)``, for ``B×T`` weights over
        ``degradations`` (as ``degradation_weights`` returns them; checked and normalised
        again here, a ValueError for a wrong shape or value): the backbone steered by the
        weights with ``"clean"`` split off (``split_clean``), before the blend with the input
        that ``"clean"`` and the output strengths make. ``forward`` returns its blend; the
        strength fits (``pip_adapter.training``) fit that blend on it."""
        self._check_call(x)
        weights = check_weights(weights, x.shape[0], len(self.degradations))
        return self._full_output(x, weights, kwargs)

    def output_amount(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """How much of the network's full output ``forward`` keeps for each image of ``x``
        under ``B×T`` weights (checked and normalised again here): ``Σ w_i · a_i`` over the
        degradations, ``a_i`` their output strengths (``config.strengths()``: ``"clean"`` 0),
        blur's taken from each image's blur effect when ``config.blur_strength`` is set.
        ``forward`` returns ``x + amount · (full_output(x, weights) − x)``; the amount is linear
        in each strength. ``calibrate_blur_strength(blind=True)`` keeps the same sum in its own
        form, blur's weight ``w`` apart from the rest ``r`` (amount ``w · a + r``), as it fits
        blur's strength ``a`` itself, on the sensor's weights as they come."""
        self._check_call(x)
        return self._amount(x, check_weights(weights, x.shape[0], len(self.degradations)))

    def _amount(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``output_amount`` for weights already checked (``forward``'s)."""
        table = self._strength_table(self.config.strengths(), weights)
        line = self.config.blur_strength
        if line is not None:  # blur's strength from each image's blur effect
            table = table.expand_as(weights).clone()
            a0, a1 = line
            blur = (a0 + a1 * blur_effect(x)).clamp(0, 1)
            table[:, self.degradations.index(BLUR)] = blur.to(table)
        return (weights * table).sum(dim=1)

    def _check_call(self, x: object) -> None:
        """A RuntimeError once unloaded, a ValueError unless ``x`` is a B×C×H×W tensor."""
        if self._unloaded:
            raise RuntimeError("this PIPModel was unloaded; use the backbone unload() returned")
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a B×C×H×W image tensor, got {shape}")

    def _full_output(self, x: torch.Tensor, weights: torch.Tensor, kwargs: dict) -> torch.Tensor:
        """``full_output`` for weights already checked (``forward``'s)."""
        if CLEAN in self.degradations:
            weights = split_clean(weights, self.degradations.index(CLEAN))
        return self._restore(x, weights, kwargs)

    def _strength_table(self, strengths: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        """``config.strengths()`` as a tensor on ``like``'s device and dtype: each sample's
        share of the network's output is its weights times it (a row with all its weight on one
        degradation gets that strength exactly). Made once per strengths, device and dtype, so
        that a call recorded into a CUDA graph copies nothing from the host."""
        if torch.compiler.is_compiling():
            return torch.tensor(strengths, dtype=like.dtype, device=like.device)
        key = (strengths, like.device, like.dtype)
        if self._strength_cache is None or self._strength_cache[0] != key:
            table = torch.tensor(strengths, dtype=like.dtype, device=like.device)
            self._strength_cache = (key, table)  # only the current strengths are kept
        return self._strength_cache[1]

    def _restore(self, x: torch.Tensor, weights: torch.Tensor, kwargs: dict) -> torch.Tensor:
        """The backbone on ``x`` (padded, then cropped back) with every unit steered by
        ``weights`` (``B×T'`` over the degradations it restores, all but ``"clean"``; the native
        ones among them set the gate, see ``_unit_weights``)."""
        height, width = x.shape[-2:]
        padded = pad_to_requirements(x, self.size_requirements)
        unit_weights, gate = self._unit_weights(weights)
        token = self._conditioning.set(unit_weights, (padded.shape[-2], padded.shape[-1]), gate)
        try:
            with self._caches.checked():  # the units' inference caches, checked once
                out = call_backbone(self.backbone, padded, self.config, **kwargs)
        finally:
            self._conditioning.reset(token)
        return crop_to(restored_image(out, self.config), padded, height, width)

    def _unit_weights(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Split checked ``B×T`` weights into the units' weights (over the adapted
        degradations, rows summing to 1) and the gate ``1 - w_native`` (``None`` when no
        degradation is native)."""
        native_names = self.config.native_degradations
        if not native_names:
            return weights, None
        names = self.restorable_degradations  # the columns of weights ("clean" split off)
        native = torch.tensor([d in native_names for d in names], device=weights.device)
        gate = (1 - weights[:, native].sum(dim=1)).clamp(0, 1)
        adapted = weights[:, ~native]
        total = adapted.sum(dim=1, keepdim=True)
        # an all-native sample: its units' output is discarded (gate 0); any valid weights do
        adapted = torch.where(total > 0, adapted / total.clamp_min(1e-12), 1 / adapted.shape[1])
        return adapted, gate

    @property
    def recompute_units(self) -> bool:
        """Activation checkpointing of the units (``False`` by default; ``Trainer`` turns it on
        for adapter training, see ``TrainConfig.recompute_units``).

        When ``True``, a forward pass that records gradients keeps only each unit's input and
        runs the unit again during the backward pass (activation checkpointing as
        ``torch.utils.checkpoint`` does it, with less host work per saved tensor:
        ``pip_adapter.injection.recompute``), instead of keeping every intermediate tensor of
        the unit until then. With a frozen backbone the
        units hold most of what a training step keeps, so this cuts the step's peak memory
        by a large share (docs/benchmarks/transfer.md, "Cost") for one more forward pass of
        the units alone. Outputs and gradients are unchanged.
        """
        return any(hook.recompute for hook in self._hooks)

    @recompute_units.setter
    def recompute_units(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise TypeError(f"recompute_units must be True or False, got {enabled!r}")
        for hook in self._hooks:
            hook.recompute = enabled

    def freeze_backbone(self) -> PIPModel:
        """Train only the adapter: the backbone's parameters stop requiring gradients and its
        normalisation layers with running statistics (BatchNorm, ...) and dropout layers stay
        in eval mode through ``train()`` calls, so that adapter training leaves every backbone
        tensor, parameters and buffers alike, bit-exact, and the adapter learns on the
        network the backbone is at inference (without dropout)."""
        self.backbone.requires_grad_(False)
        self.pip_units.requires_grad_(True)
        return self.train(self.training)

    def unfreeze_backbone(self) -> PIPModel:
        """Train the backbone too (full fine-tuning): undoes ``freeze_backbone``."""
        self.backbone.requires_grad_(True)
        return self.train(self.training)

    def train(self, mode: bool = True) -> PIPModel:
        """Set training mode, except in frozen parts (the backbone when none of its parameters
        requires gradients, after ``freeze_backbone``; a sensor likewise frozen), whose
        normalisation layers with running statistics and dropout layers stay in eval mode:
        their batch statistics never move and their dropout is off."""
        super().train(mode)
        for part in (self.backbone, self.sensor):
            if mode and part is not None and _is_frozen(part):
                for module in part.modules():
                    if isinstance(module, _STATEFUL):
                        module.eval()
        return self

    def add_degradations(
        self,
        names: Sequence[str],
        mode: GrowthMode = "prompts",
        init: Mapping[str, str | Mapping[str, float]] | None = None,
    ) -> PIPModel:
        """Teach the model new degradations: every unit gets one new prompt row per name, and
        with ``degradation_ffn_rank`` its own feed-forward updates (appended to
        ``degradations``, ``config`` and, if attached, ``sensor``'s classes).

        ``mode="prompts"``: only the new rows require gradients, every other parameter of the
        model (backbone and sensor included) is frozen; training whatever requires gradients,
        with any optimiser and weight decay, then leaves the outputs for the old degradations
        bit-exact. ``mode="light"``: the units' layer-norm affine parameters and attention
        temperatures / top-m weights train too (train with replay of the old degradations;
        their outputs move slightly). A new row starts at the mean of the old rows (the
        uniform mixture of the old degradations), or at ``init[name]``: an old degradation's
        name or a ``{name: weight}`` mixture of old ones; its feed-forward updates at the
        rank-``r`` updates nearest to the same mixture of the old ones. The sensor's new
        classes start at the mean of its old ones (its old predictions keep their ranking);
        fine-tune it on all the degradations (``pip_adapter.training.train_sensor``) before
        blind use.

        Refuses (ValueError, the model untouched) existing, repeated or malformed names,
        ``"clean"`` (the identity needs no prompt) and ``"auto"``. Returns the model.
        """
        grow(self, names, mode, init)
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
            (
                cast(HostedUnit, unit).prompt_regularization(angle_degrees)
                for unit in self.pip_units.values()
            ),
            torch.zeros((), device=next(self.pip_units.parameters()).device),
        )

    def adapter_config(self) -> dict[str, Any]:
        """What ``save_adapter`` writes to ``adapter_config.json`` after the format header:
        ``config.to_dict()`` with the library version and a description of the backbone."""
        cls = type(self.backbone)
        features = [
            {"stage": stage.name, "layout": stage.layout, "channels": stage.stage_channels}
            for stage in self.plan
        ]
        backbone = {"class": cls.__name__, "module": cls.__module__, "features": features}
        return {"library_version": __version__, "backbone": backbone, **self.config.to_dict()}

    def save_adapter(self, directory: str | os.PathLike) -> Path:
        """Write the adapter alone (config + PIP unit weights), not the backbone, and
        ``self.sensor`` if set (``sensor_config.json`` + ``sensor.safetensors``). ``"clean"``
        is stored among the degradations like any name (the units have no prompt for it), and
        ``load_adapter`` rebuilds the same model."""
        hosted = [u for u in self.pip_units.values() if not isinstance(u, PromptInPrompt)]
        if hosted:
            raise TypeError(
                "save_adapter stores PromptInPrompt units, but this model hosts "
                f"{sorted({type(u).__name__ for u in hosted})}"
            )
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
        for stage, handle in zip(self.plan, self._handles, strict=True):
            detach_hook(modules[stage.name], handle)
        self._handles, self._hooks = [], []
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(self._requires_grad.get(name, param.requires_grad))
        self._unloaded = True
        return self.backbone
