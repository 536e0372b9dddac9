"""Image files <-> float RGB tensors in [0, 1] (3×H×W), through PIL."""

from __future__ import annotations

import os

import torch

from pip_adapter.image_files import IMAGE_EXTENSIONS, list_images, read_rgb, write_rgb

__all__ = ["IMAGE_EXTENSIONS", "list_images", "read_image", "write_image"]


def read_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a float32 RGB tensor of shape 3×H×W with values in [0, 1].

    EXIF orientation is applied (phone photos), grey and palette images are expanded to RGB,
    alpha is dropped and 16-bit greyscale PNGs keep their full precision.
    """
    return torch.from_numpy(read_rgb(path))


def write_image(image: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """Write a 3×H×W (or 1×3×H×W) tensor in [0, 1] as an 8-bit RGB image (format from suffix)."""
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"write_image expects a 3×H×W tensor, got shape {tuple(image.shape)}")
    write_rgb(image.detach().float().cpu().numpy(), path)
