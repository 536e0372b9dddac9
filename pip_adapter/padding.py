"""Padding inputs to the size a backbone accepts, and cropping its outputs back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from spandrel import SizeRequirements
from torch.fx.experimental.symbolic_shapes import statically_known_true

__all__ = ["crop_to", "pad_to_requirements", "pad_to_size"]


def pad_to_size(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad ``B×C×H×W`` at the bottom and right to ``height×width``.

    Reflect padding (no artificial edges), or replicate where the image is too small to
    reflect. Traceable with symbolic sizes (``torch.export``): the shortcut for "nothing to
    pad" is taken only where that is known for every size, so no size gets specialised.
    """
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if (isinstance(pad_h, int) and isinstance(pad_w, int)) or torch.compiler.is_dynamo_compiling():
        nothing = not (pad_h or pad_w)  # plain sizes, or torch.compile (which guards on them)
    else:  # torch.export's symbolic sizes: only what holds for every size
        nothing = statically_known_true(pad_h == 0) and statically_known_true(pad_w == 0)
    if nothing:
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def pad_to_requirements(x: torch.Tensor, requirements: SizeRequirements) -> torch.Tensor:
    """Pad ``B×C×H×W`` (as ``pad_to_size``) to the smallest size that meets spandrel's
    ``requirements`` (minimum side, multiple, square); an input that meets them is returned
    as it is, so a backbone that accepts a size sees exactly the image it was given."""
    height, width = (_accepted(side, requirements) for side in x.shape[-2:])
    if requirements.square:
        height = width = torch.sym_max(height, width)  # type: ignore[assignment]
    return pad_to_size(x, height, width)


def _accepted(side: int, requirements: SizeRequirements) -> int:
    """The smallest side from ``side`` up that ``requirements`` accept (square aside). Plain
    arithmetic, no branch on the size: traced with symbolic sizes (``torch.export``), it
    holds for every size rather than for the traced one's case (spandrel's ``get_padding``
    branches on ``side % multiple``)."""
    side = torch.sym_max(side, requirements.minimum) if requirements.minimum > 1 else side
    return side + (-side) % requirements.multiple_of


def crop_to(output: torch.Tensor, padded: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop a backbone's output for ``padded`` back to an input of ``height×width``.

    Outputs larger than the input by an integer factor (super-resolution) are cropped to the
    scaled size.
    """
    if output.shape[-2:] == padded.shape[-2:]:
        return output[..., :height, :width]
    scale = output.shape[-2] // padded.shape[-2]
    return output[..., : height * scale, : width * scale]
