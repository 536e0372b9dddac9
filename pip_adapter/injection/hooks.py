"""The forward hooks through which PIP units act on a backbone, without editing its source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from einops import rearrange
from torch import nn

from pip_adapter.injection.stages import find_feature, find_spatial_size
from pip_adapter.unit import PromptInPrompt

__all__ = ["Conditioning", "StageHook", "attach_hook", "detach_hooks", "has_pip_hooks"]


class Conditioning:
    """The degradation weights of the forward pass in progress, shared with the stage hooks.

    ``weights`` is set by ``PIPModel.forward`` for the duration of the backbone call and is
    ``None`` otherwise, in which case the hooks pass features through unchanged. ``gate``
    (``B``, or ``None`` for all ones) is how much of each unit's change to apply: 0 for a
    native degradation, which keeps the feature exactly as the backbone computes it.
    """

    def __init__(self) -> None:
        self.weights: torch.Tensor | None = None
        self.gate: torch.Tensor | None = None


class StageHook:
    """Applies one PIP unit to the input (pre-hook) or output (hook) of one module.

    A plain picklable object holding its unit and the shared :class:`Conditioning`, so that a
    ``copy.deepcopy`` or pickle of the PIPModel carries working hooks that point at the copies.
    """

    def __init__(
        self,
        unit: PromptInPrompt,
        conditioning: Conditioning,
        hook: str,
        layout: str,
        channels: tuple[int, int],
    ) -> None:
        self.unit = unit
        self.conditioning = conditioning
        self.hook = hook
        self.layout = layout
        self.channels = channels

    def gated_unit(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The unit's output, moved back towards ``x`` by ``1 - gate`` (``torch.lerp`` is exact
        at both ends: gate 0 returns ``x``, gate 1 the unit's output, bit for bit)."""
        y = self.unit(x, weights)
        gate = self.conditioning.gate
        if gate is None:
            return y
        return torch.lerp(x.to(y.dtype), y, gate.to(y.dtype)[:, None, None, None])

    def modulate(self, feature: torch.Tensor, args: tuple, kwargs: Mapping[str, Any]):
        weights = self.conditioning.weights
        if self.layout == "tokens":
            height, width = find_spatial_size(feature.shape[1], args, kwargs)
            x = rearrange(feature, "b (h w) c -> b c h w", h=height, w=width)
        else:
            x = feature
        start, stop = self.channels
        if start == 0 and stop == x.shape[1]:
            x = self.gated_unit(x, weights)
        else:
            modulated = self.gated_unit(x[:, start:stop], weights)
            x = torch.cat([x[:, :start], modulated, x[:, stop:]], dim=1)
        if self.layout == "tokens":
            return rearrange(x, "b c h w -> b (h w) c")
        return x

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict, *output: Any):
        if self.conditioning.weights is None:
            return None
        if self.hook == "input":
            key, feature = find_feature(args, kwargs)
            feature = self.modulate(feature, args, kwargs)
            if isinstance(key, int):
                return (*args[:key], feature, *args[key + 1 :]), kwargs
            return args, {**kwargs, key: feature}
        (out,) = output
        if isinstance(out, torch.Tensor):
            return self.modulate(out, args, kwargs)
        return (self.modulate(out[0], args, kwargs), *out[1:])


def attach_hook(module: nn.Module, hook: StageHook) -> None:
    if hook.hook == "input":
        module.register_forward_pre_hook(hook, with_kwargs=True)
    else:
        module.register_forward_hook(hook, with_kwargs=True)


_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
)


def detach_hooks(module: nn.Module) -> None:
    """Remove every StageHook from ``module`` (by identity of type, so copies work too)."""
    ids = [
        key
        for attr in ("_forward_pre_hooks", "_forward_hooks")
        for key, hook in getattr(module, attr).items()
        if isinstance(hook, StageHook)
    ]
    for attr in _HOOK_DICTS:
        hooks = getattr(module, attr)
        for key in ids:
            hooks.pop(key, None)


def has_pip_hooks(model: nn.Module) -> bool:
    return any(
        isinstance(hook, StageHook)
        for module in model.modules()
        for attr in ("_forward_pre_hooks", "_forward_hooks")
        for hook in getattr(module, attr).values()
    )
