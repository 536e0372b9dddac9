"""How a backbone is called and which of its outputs is the restored image.

Most restoration networks map a ``[0, 1]`` image to an image. Some need more (the
conventions spandrel's descriptors encode in their call functions): a noise-level map as an
extra input channel (DRUNet, FDnCNN), another value range (MixDehazeNet works in
``[-1, 1]``), or they return several images (MPRNet's three stages, FBCNN's image and
quality factor). A ``PIPConfig`` names these (``noise_level_map``, ``value_range``,
``output``); presets fill them for spandrel's architectures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pip_adapter.config import PIPConfig

__all__ = ["backbone_input", "call_backbone", "describe_output", "restored_image", "select_output"]

OutputKey = int | str | None


def backbone_input(x: torch.Tensor, config: PIPConfig) -> torch.Tensor:
    """``x`` (``[0, 1]`` images) as the backbone takes it: in its value range, with the
    constant noise-level map channel if it takes one."""
    if config.value_range is not None:
        low, high = config.value_range
        x = x * (high - low) + low
    if config.noise_level_map is not None:
        level = x.new_full((x.shape[0], 1, *x.shape[2:]), config.noise_level_map)
        x = torch.cat([x, level], dim=1)
    return x


def select_output(output: Any, key: OutputKey) -> Any:
    """The element ``key`` of a tuple / list / dict output (``None``: the output itself)."""
    return output if key is None else output[key]


def restored_image(output: Any, config: PIPConfig) -> torch.Tensor:
    """The restored image in a backbone's output, mapped back to ``[0, 1]``."""
    image = select_output(output, config.output)
    if config.value_range is not None:
        low, high = config.value_range
        image = (image - low) / (high - low)
    return image


def call_backbone(backbone: nn.Module, x: torch.Tensor, config: PIPConfig, **kwargs: Any) -> Any:
    """The backbone's raw output for ``[0, 1]`` images ``x``, called as ``config`` says."""
    return backbone(backbone_input(x, config), **kwargs)


def _is_image(value: Any, sample: torch.Tensor) -> bool:
    """An image for ``sample``: a 4-D tensor with its batch and its size times an integer."""
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or value.shape[0] != sample.shape[0]:
        return False
    (height, width), (h, w) = sample.shape[-2:], value.shape[-2:]
    return h % height == 0 and w % width == 0 and h // height == w // width >= 1


def _entries(output: Any) -> list[tuple[int | str, Any]]:
    if isinstance(output, Mapping):
        return list(output.items())
    return list(enumerate(output))


def describe_output(output: Any) -> str:
    """``tuple of 3: [0] 1×3×64×64, [1] ...`` for error messages."""

    def shape(value: Any) -> str:
        if isinstance(value, torch.Tensor):
            return "×".join(map(str, value.shape)) or "scalar"
        return type(value).__name__

    parts = ", ".join(f"[{key!r}] {shape(value)}" for key, value in _entries(output))
    return f"{type(output).__name__} of {len(_entries(output))}: {parts}"


def resolve_output(output: Any, key: OutputKey, sample: torch.Tensor, owner: str) -> OutputKey:
    """Which element of the dry run's ``output`` is the restored image: ``key`` if given
    (checked), the one image in a tuple / list / dict, else a ValueError listing them."""
    if isinstance(output, torch.Tensor):
        if key is not None:
            raise ValueError(
                f"output={key!r} picks an element of a tuple, list or dict output, but "
                f"{owner} returns a tensor; leave output=None"
            )
        if not _is_image(output, sample):
            raise ValueError(
                f"{owner} returned a {tuple(output.shape)} tensor for a "
                f"{tuple(sample.shape)} input; PIP needs a network that returns an image"
            )
        return None
    if not isinstance(output, Sequence | Mapping) or isinstance(output, str):
        raise ValueError(
            f"{owner} returned a {type(output).__name__}; PIP needs a network that returns an "
            "image, or a tuple, list or dict of outputs with one restored image"
        )
    entries = dict(_entries(output))
    if key is not None:
        if key not in entries or not _is_image(entries[key], sample):
            raise ValueError(
                f"output={key!r} is not an image in {owner}'s output ({describe_output(output)})"
            )
        return key
    images = [k for k, value in entries.items() if _is_image(value, sample)]
    if len(images) != 1:
        found = "no image" if not images else f"{len(images)} images"
        raise ValueError(
            f"{owner} returns a {describe_output(output)}, with {found}; name the restored "
            "image with output= (PIPConfig.output: an index or key)"
        )
    return images[0]
