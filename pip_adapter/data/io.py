"""Image files <-> float RGB tensors in [0, 1] (3×H×W), through PIL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from pip_adapter.files import atomic_write

__all__ = ["IMAGE_EXTENSIONS", "list_images", "read_image", "write_image"]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I"}


def read_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a float32 RGB tensor of shape 3×H×W with values in [0, 1].

    EXIF orientation is applied (phone photos), grey and palette images are expanded to RGB,
    alpha is dropped and 16-bit greyscale PNGs keep their full precision.
    """
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in _SIXTEEN_BIT_MODES:
            array = np.asarray(image, dtype=np.float32) / 65535.0
            array = np.repeat(array[..., None], 3, axis=2)
        else:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def write_image(image: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """Write a 3×H×W (or 1×3×H×W) tensor in [0, 1] as an 8-bit RGB image (format from suffix).

    Written atomically (``pip_adapter.files``): a failure never leaves a partial file.
    """
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"write_image expects a 3×H×W tensor, got shape {tuple(image.shape)}")
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"cannot write image {str(path)!r}: unknown suffix {path.suffix!r}")
    array = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    picture = Image.fromarray(array.permute(1, 2, 0).cpu().numpy())
    atomic_write(path, lambda temporary: picture.save(temporary, format=image_format))


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by extension, case-insensitive), sorted by path.

    Raises FileNotFoundError when ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} does not exist")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
