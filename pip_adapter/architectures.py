"""What spandrel knows about a network: its architecture id and the input sizes it accepts.

spandrel (and, when installed, spandrel_extra_arches) registers one ``Architecture`` per
network family, with an ``id`` (``"NAFNet"``, ``"MPRNet"``, ...) and a loader that reads the
hyperparameters from a state dict and returns a ``ModelDescriptor`` whose
``size_requirements`` (``minimum``, ``multiple_of``, ``square``) say which inputs the network
accepts. A network built from one of their classes, or loaded through their ``ModelLoader``,
is recognised here by the package its class lives in; its size requirements come from
spandrel's own loader, run on its state dict.
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from spandrel import MAIN_REGISTRY, Architecture, ModelBase, SizeRequirements
from torch import nn

__all__ = [
    "SpandrelInfo",
    "architecture_id",
    "find_architecture",
    "registered_architectures",
    "size_requirements",
    "spandrel_info",
]

logger = logging.getLogger(__name__)


def registered_architectures() -> list[Architecture]:
    """spandrel's architectures, then spandrel_extra_arches' (if installed), without
    installing the extra ones into spandrel's global registry."""
    architectures = [support.architecture for support in MAIN_REGISTRY]
    try:
        from spandrel_extra_arches import EXTRA_REGISTRY
    except ImportError:
        return architectures
    return architectures + [support.architecture for support in EXTRA_REGISTRY]


def find_architecture(model: nn.Module | ModelBase) -> Architecture | None:
    """The spandrel ``Architecture`` whose package defines ``model``'s class, else None."""
    if isinstance(model, ModelBase):
        return model.architecture
    module = type(model).__module__ + "."
    for architecture in registered_architectures():
        if module.startswith(type(architecture).__module__ + "."):
            return architecture
    return None


def architecture_id(model: nn.Module | ModelBase) -> str | None:
    """spandrel's id of ``model``'s architecture (``"NAFNet"``, ``"MPRNet"``), else None."""
    architecture = find_architecture(model)
    return architecture.id if architecture is not None else None


@dataclass(frozen=True)
class SpandrelInfo:
    """What spandrel's descriptor says about a network: its architecture id, the image
    channels it takes and returns, its scale (2 or 4 for super-resolution) and the input
    sizes it accepts."""

    id: str
    input_channels: int
    output_channels: int
    scale: int
    size_requirements: SizeRequirements


# per network, what spandrel's loader made of its state dict (hyperparameters do not change
# during a network's life; the loader builds a second network, so this is worth keeping)
_INFO: weakref.WeakKeyDictionary[nn.Module, SpandrelInfo | None] = weakref.WeakKeyDictionary()


def _load(architecture: Architecture, state: dict[str, torch.Tensor]) -> ModelBase:
    """spandrel's descriptor for ``state``: built on the meta device where the architecture
    allows it (no memory, no initialisation), else on the CPU."""
    try:
        with torch.device("meta"):
            return architecture.load({k: v.to("meta") for k, v in state.items()})
    except Exception:  # architectures that read values while building: build for real
        return architecture.load(state)


def spandrel_info(model: nn.Module | ModelBase) -> SpandrelInfo | None:
    """spandrel's description of ``model`` (a network of one of its classes, or a
    descriptor), or None if spandrel does not know the network or cannot read it."""
    if isinstance(model, ModelBase):
        return _info_of(model)
    if model in _INFO:
        return _INFO[model]
    architecture = find_architecture(model)
    info = None
    if architecture is not None:
        try:
            info = _info_of(_load(architecture, model.state_dict()))
        except Exception as err:  # spandrel's loader rejects this configuration
            logger.warning(
                "spandrel could not describe this %s (%s: %s); its size requirements are unknown",
                architecture.id,
                type(err).__name__,
                err,
            )
    _INFO[model] = info
    return info


def _info_of(descriptor: ModelBase) -> SpandrelInfo:
    return SpandrelInfo(
        descriptor.architecture.id,
        descriptor.input_channels,
        descriptor.output_channels,
        descriptor.scale,
        descriptor.size_requirements,
    )


# Networks that reflect-pad their input to a multiple of their attention window themselves,
# so spandrel asks for no multiple: the attribute holding the window, keyed by spandrel's
# architecture id. Padding to it first (reflect, as they do) gives the same output and makes
# their own padding a no-op for every size, which a traced graph (export) needs: their
# ``if pad_h or pad_w`` would otherwise fix the graph to one case of the size.
SELF_PADDED_WINDOW = {
    "SwinIR": "window_size",
    "Swin2SR": "window_size",
    "HAT": "window_size",
}


def _with_window(model: nn.Module, info: SpandrelInfo) -> SizeRequirements:
    """spandrel's requirements, with the multiple widened to the network's window where it
    pads to one itself (``SELF_PADDED_WINDOW``)."""
    rule = info.size_requirements
    window = getattr(model, SELF_PADDED_WINDOW.get(info.id, ""), None)
    if not isinstance(window, int) or window <= 1:
        return rule
    return SizeRequirements(
        minimum=rule.minimum,
        multiple_of=math.lcm(rule.multiple_of, window),
        square=rule.square,
    )


def size_requirements(model: Any) -> SizeRequirements:
    """The input sizes ``model`` accepts, as spandrel's ``SizeRequirements`` (``minimum``
    side, sides a ``multiple_of``, ``square``): the one answer used for padding by
    ``PIPModel``, ``restore_tiled``, ``evaluate`` and export.

    In order: the model's own ``size_requirements`` (a ``PIPModel``'s, from its config; a
    spandrel descriptor's), spandrel's for a network of one of its classes (with the
    multiple widened to its window where it pads to one itself: ``SELF_PADDED_WINDOW``), an
    integer
    ``size_multiple`` attribute (any callable), else no requirement.
    """
    own = getattr(model, "size_requirements", None)
    if isinstance(own, SizeRequirements):
        return own
    if isinstance(model, nn.Module):
        info = spandrel_info(model)
        if info is not None:
            return _with_window(model, info)
    multiple = getattr(model, "size_multiple", None)
    if isinstance(multiple, int) and multiple >= 1:
        return SizeRequirements(multiple_of=multiple)
    return SizeRequirements()
