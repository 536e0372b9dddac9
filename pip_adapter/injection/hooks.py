"""The forward hooks through which PIP units act on a backbone, without editing its source."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any, Protocol, cast

import torch
from einops import rearrange
from torch import nn
from torch.utils.hooks import RemovableHandle

from pip_adapter.config import HookPoint
from pip_adapter.injection.recompute import recomputed
from pip_adapter.injection.trace import Layout, find_feature, find_spatial_size, token_grid

__all__ = ["Conditioning", "HostedUnit", "StageHook", "attach_hook", "detach_hook", "has_pip_hooks"]

# set on every module that carries a StageHook (as accelerate marks its hooked modules), so that
# a second injection is refused; copies and pickles of the module carry it with the hook
_MARK = "_pip_stage_hook"


# the weights of one forward pass, with the (H, W) of the image the backbone runs on and the
# gate of native degradations (None: every unit applies fully)
_Call = tuple[torch.Tensor, tuple[int, int], torch.Tensor | None]


class Conditioning:
    """The degradation weights of the forward passes in progress, read by the stage hooks.

    ``PIPModel.forward`` sets them (already checked: ``B×T``, rows summing to 1) for the
    duration of its backbone call (``token = set(weights, image_size)`` ... ``reset(token)``);
    ``weights`` is ``None`` outside a call, and the hooks then pass features through unchanged.
    ``image_size`` is the ``(H, W)`` of the image the backbone runs on, from which token stages
    that do not receive their own ``(H, W)`` infer their grid. ``gate`` (``B``, or ``None`` for
    all ones) is how much of each unit's change to apply: 0 for a native degradation, whose
    feature stays exactly what the backbone computes.

    The weights are held per call, not on this shared object: in a ``contextvars.ContextVar``,
    so that threads (each has its own context) and asyncio tasks (each runs in a copy of the
    context) sharing one model each see their own call's weights. While ``torch.compile`` or
    ``torch.export`` traces the model, where a context variable cannot be set, a plain
    attribute carries them instead (tracing runs the forward once, in one thread; the traced
    graph takes the weights as a value, not from this object); a backbone compiled on its own
    reads the context variable, which tracing supports. Copies and pickles get a fresh variable
    with no weights set.
    """

    def __init__(self) -> None:
        self._current: ContextVar[_Call | None] = ContextVar("pip_weights", default=None)
        self._traced: _Call | None = None

    def _call(self) -> _Call | None:
        """The call in progress in this thread / task (or being traced), else ``None``."""
        if torch.compiler.is_compiling() and self._traced is not None:
            return self._traced
        return self._current.get()

    @property
    def weights(self) -> torch.Tensor | None:
        """The weights of the call in progress in this thread / task, or ``None``."""
        call = self._call()
        return None if call is None else call[0]

    @property
    def image_size(self) -> tuple[int, int] | None:
        """The ``(H, W)`` the backbone runs on in the call in progress, or ``None``."""
        call = self._call()
        return None if call is None else call[1]

    @property
    def gate(self) -> torch.Tensor | None:
        """The gate of the call in progress (``None``: apply every unit fully)."""
        call = self._call()
        return None if call is None else call[2]

    def set(
        self, weights: torch.Tensor, image_size: tuple[int, int], gate: torch.Tensor | None = None
    ) -> Token | None:
        """Make ``weights`` (with ``image_size`` and ``gate``) current until ``reset`` is called
        with the returned token."""
        if torch.compiler.is_compiling():
            self._traced = (weights, image_size, gate)
            return None
        return self._current.set((weights, image_size, gate))

    def reset(self, token: Token | None) -> None:
        """Restore the weights that were current before the matching ``set``."""
        if token is None:
            self._traced = None
        else:
            self._current.reset(token)

    def __getstate__(self) -> dict[str, Any]:
        return {}  # a context variable cannot be copied or pickled; weights are per call anyway

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._current = ContextVar("pip_weights", default=None)
        self._traced = None


class HostedUnit(Protocol):
    """What a stage hosts: a module (a ``PromptInPrompt``, or a baseline block) applied to the
    feature with weights the model checked, and the penalty that keeps its prompts apart."""

    def modulate(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor: ...

    def prompt_regularization(self, angle_degrees: float = 90.0) -> torch.Tensor: ...


class StageHook:
    """Applies one PIP unit to the input (pre-hook) or output (hook) of one module.

    A plain picklable object holding its unit and the shared ``Conditioning``, so that a
    ``copy.deepcopy`` or pickle of the PIPModel carries working hooks that point at the copies.
    The unit is called through ``unit.modulate(feature, weights)``: the weights were checked
    once by the model. ``recompute`` (``PIPModel.recompute_units``): while gradients are
    recorded, keep only the unit's input and run the unit again in the backward pass.
    """

    def __init__(
        self,
        unit: nn.Module,
        conditioning: Conditioning,
        at: HookPoint,
        layout: Layout,
        channels: tuple[int, int],
    ) -> None:
        self.unit = unit
        self.conditioning = conditioning
        self.at = at
        self.layout = layout
        self.channels = channels
        self.recompute = False

    def _grid(self, length: int, args: tuple, kwargs: Mapping[str, Any]) -> tuple[int, int]:
        """``(h, w)`` of a token sequence: from the module's arguments, else from the image."""
        grid = find_spatial_size(length, args, kwargs)
        if grid is None and self.conditioning.image_size is not None:
            grid = token_grid(length, self.conditioning.image_size)
        if grid is None:
            raise ValueError(
                f"cannot tell the (height, width) of {length} tokens for an image of "
                f"{self.conditioning.image_size}; the backbone resized its features in a way "
                "the dry run did not show (pad the input as model.size_requirements says)"
            )
        return grid

    def _gated(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The unit's output, moved back towards ``x`` by ``1 - gate`` (``torch.lerp`` is exact
        at both ends: gate 0 returns ``x``, gate 1 the unit's output, bit for bit)."""
        modulate = cast(HostedUnit, self.unit).modulate
        if self.recompute and torch.is_grad_enabled():
            y = recomputed(modulate, x, weights)
        else:
            y = modulate(x, weights)
        gate = self.conditioning.gate
        if gate is None:
            return y
        return torch.lerp(x.to(y.dtype), y, gate.to(y.dtype)[:, None, None, None])

    def _transform(
        self, feature: torch.Tensor, weights: torch.Tensor, args: tuple, kwargs: Mapping[str, Any]
    ) -> torch.Tensor:
        if self.layout == "tokens":
            height, width = self._grid(feature.shape[1], args, kwargs)
            x = rearrange(feature, "b (h w) c -> b c h w", h=height, w=width)
        elif self.layout == "channels_last":
            x = rearrange(feature, "b h w c -> b c h w")
        else:
            x = feature
        start, stop = self.channels
        if start == 0 and stop == x.shape[1]:
            x = self._gated(x, weights)
        else:
            modulated = self._gated(x[:, start:stop], weights)
            x = torch.cat([x[:, :start], modulated, x[:, stop:]], dim=1)
        if self.layout == "tokens":
            return rearrange(x, "b c h w -> b (h w) c").contiguous()
        if self.layout == "channels_last":
            return rearrange(x, "b c h w -> b h w c").contiguous()
        return x

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict, *output: Any):
        weights = self.conditioning.weights
        if weights is None:
            return None
        if self.at == "input":
            found = find_feature(args, kwargs)
            if found is None:
                raise ValueError(f"a PIP stage ({type(module).__name__}) received no tensor")
            key, feature = found
            feature = self._transform(feature, weights, args, kwargs)
            if isinstance(key, int):
                return (*args[:key], feature, *args[key + 1 :]), kwargs
            return args, {**kwargs, key: feature}
        (out,) = output
        if isinstance(out, torch.Tensor):
            return self._transform(out, weights, args, kwargs)
        return (self._transform(out[0], weights, args, kwargs), *out[1:])


def attach_hook(module: nn.Module, hook: StageHook) -> RemovableHandle:
    """Register ``hook`` on ``module``; the returned handle removes it (``detach_hook``)."""
    if hook.at == "input":
        handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    else:
        handle = module.register_forward_hook(hook, with_kwargs=True)
    setattr(module, _MARK, True)
    return handle


def detach_hook(module: nn.Module, handle: RemovableHandle) -> None:
    """Remove the hook that ``attach_hook`` registered on ``module``."""
    handle.remove()
    if hasattr(module, _MARK):
        delattr(module, _MARK)


def has_pip_hooks(model: nn.Module) -> bool:
    """Whether ``model`` or one of its submodules carries a PIP unit's hook."""
    return any(hasattr(module, _MARK) for module in model.modules())
