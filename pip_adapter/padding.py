"""Padding inputs to the size a backbone accepts, and cropping its outputs back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from spandrel import SizeRequirements

__all__ = ["crop_to", "pad_to_requirements", "pad_to_size"]


def pad_to_size(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad ``B×C×H×W`` at the bottom and right to ``height×width``.

    Reflect padding (no artificial edges), or replicate where the image is too small to
    reflect.
    """
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def pad_to_requirements(x: torch.Tensor, requirements: SizeRequirements) -> torch.Tensor:
    """Pad ``B×C×H×W`` (as ``pad_to_size``) to the smallest size that meets spandrel's
    ``requirements`` (minimum side, multiple, square); an input that meets them is returned
    as it is, so a backbone that accepts a size sees exactly the image it was given."""
    pad_w, pad_h = requirements.get_padding(x.shape[-1], x.shape[-2])
    return pad_to_size(x, x.shape[-2] + pad_h, x.shape[-1] + pad_w)


def crop_to(output: torch.Tensor, padded: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop a backbone's output for ``padded`` back to an input of ``height×width``.

    Outputs larger than the input by an integer factor (super-resolution) are cropped to the
    scaled size.
    """
    if output.shape[-2:] == padded.shape[-2:]:
        return output[..., :height, :width]
    scale = output.shape[-2] // padded.shape[-2]
    return output[..., : height * scale, : width * scale]
