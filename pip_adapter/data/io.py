"""Image files <-> float RGB tensors in [0, 1] (3×H×W): ``pip_adapter.image_files`` (numpy, PIL,
tifffile) with torch tensors.

Image files are untrusted input: every way a file can fail to decode (empty, truncated, not an
image, a decompression bomb, an unsupported sample format) is one ValueError that names the file.
"""

from __future__ import annotations

import os

import torch

from pip_adapter.image_files import (
    IMAGE_EXTENSIONS,
    check_images,
    list_images,
    read_rgb,
    write_rgb,
)

__all__ = ["IMAGE_EXTENSIONS", "check_images", "list_images", "read_image", "write_image"]


def read_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a float32 RGB tensor of shape 3×H×W with values in [0, 1]:
    ``pip_adapter.image_files.read_rgb`` (the torch-free reader, whose decoding rules and
    one-line errors it shares) as a tensor."""
    return torch.from_numpy(read_rgb(path))


def write_image(image: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """Write a 3×H×W (or 1×3×H×W) tensor in [0, 1] as an 8-bit RGB image (format from suffix).

    Parent folders are created. The file is written atomically (``pip_adapter.files``): a
    crash never leaves half an image. Refuses (ValueError) a path that is a folder or has no
    known image suffix; an existing file is replaced.
    """
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"write_image expects a 3×H×W tensor, got shape {tuple(image.shape)}")
    write_rgb(image.detach().float().cpu().numpy(), path)
