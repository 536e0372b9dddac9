"""Image files <-> float32 RGB arrays in [0, 1] (``3×H×W``, numpy), through PIL.

The torch functions of ``pip_adapter.data`` (``read_image``, ``write_image``) wrap these;
``pip-adapter restore --onnx`` uses them directly, without loading torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = ["IMAGE_EXTENSIONS", "list_images", "read_rgb", "write_rgb"]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I"}


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as a float32 RGB array of shape 3×H×W with values in [0, 1].

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
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def write_rgb(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a 3×H×W (or 1×3×H×W) array in [0, 1] as an 8-bit RGB image (format from suffix)."""
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"an image to write must be 3×H×W, got shape {tuple(image.shape)}")
    array = np.round(np.clip(image.astype(np.float32), 0, 1) * 255.0).astype(np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0))).save(path)


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by extension, case-insensitive), sorted by path.

    Raises FileNotFoundError when ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} does not exist")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
