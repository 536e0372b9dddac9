"""Image files <-> float32 RGB arrays in [0, 1] (``3×H×W``, numpy), through PIL (and tifffile
for deep TIFFs).

Image files are untrusted input: every way a file can fail to decode (empty, truncated, not an
image, a decompression bomb, an unsupported sample format) is one ValueError that names the file.
The torch functions of ``pip_adapter.data`` (``read_image``, ``write_image``) wrap these;
``pip-adapter restore --onnx`` uses them directly, without loading PyTorch.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageOps

from pip_adapter.files import atomic_write

__all__ = ["IMAGE_EXTENSIONS", "check_images", "list_images", "read_rgb", "write_rgb"]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L"}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as a float32 RGB array of shape 3×H×W with values in [0, 1].

    EXIF orientation is applied (phone photos), grey and palette images are expanded to RGB and
    alpha is dropped. 8-bit files are scaled by 1/255 and 16-bit ones by 1/65535 (16-bit colour
    PNGs are decoded at 8-bit precision, Pillow's limit; 16-bit TIFFs at full precision);
    floating-point TIFFs are taken as values in [0, 1]. Values are clamped to [0, 1].

    Raises FileNotFoundError for a missing file and a one-line ValueError naming the file for
    anything that is not a readable image: an empty, truncated or corrupt file, a decompression
    bomb (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``), 32-bit integer or non-finite samples.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no image file at {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"cannot read image {str(path)!r}: it is a folder, not a file")
    try:
        with warnings.catch_warnings():
            # between MAX_IMAGE_PIXELS and twice that, PIL only warns: refuse those too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            array = _deep_tiff(path) if _is_tiff(path) else None
            if array is None:
                array = _read_with_pil(path)
    except PermissionError:
        raise
    except _ImageFileError as error:
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from None
    except Exception as error:  # any decoder failure on an untrusted file is the file's fault
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"cannot read image {str(path)!r}: not a valid image ({reason})") from None
    return np.ascontiguousarray(array.transpose(2, 0, 1))


class _ImageFileError(Exception):
    """A readable file whose content this reader refuses (the message says why)."""


def _is_tiff(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) in _TIFF_MAGIC


def _check_pixels(height: int, width: int) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and height * width > limit:
        raise _ImageFileError(
            f"{width}×{height} = {height * width} pixels is over the {limit} pixel limit "
            "(a possible decompression bomb; raise PIL.Image.MAX_IMAGE_PIXELS to allow it)"
        )


def _to_rgb(array: np.ndarray, scale: float) -> np.ndarray:
    """H×W or H×W×C samples -> H×W×3 float32 in [0, 1] (grey repeated, alpha dropped)."""
    values = array.astype(np.float32) / np.float32(scale)
    if not np.isfinite(values).all():
        raise _ImageFileError("it holds non-finite values (NaN or infinity)")
    if values.ndim == 2:
        values = values[..., None]
    channels = values.shape[-1]
    values = values[..., :1].repeat(3, axis=-1) if channels <= 2 else values[..., :3]
    return np.clip(values, 0.0, 1.0)


def _deep_tiff(path: Path) -> np.ndarray | None:
    """A TIFF with more than 8 bits or non-integer samples, read by tifffile (Pillow reads
    neither 16-bit colour nor floating-point colour TIFFs); ``None`` for a plain 8-bit TIFF."""
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        if not isinstance(page, tifffile.TiffPage):
            raise _ImageFileError("its first TIFF page cannot be read")
        kind = np.dtype(page.dtype).kind if page.dtype is not None else "u"
        if page.bitspersample <= 8 and kind == "u":
            return None
        if kind in "iu" and (kind == "i" or page.bitspersample > 16):
            raise _ImageFileError(
                f"{page.bitspersample}-bit {'signed ' if kind == 'i' else ''}integer samples are "
                "not supported (8- or 16-bit unsigned, or floating point in [0, 1])"
            )
        if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
            name = getattr(page.photometric, "name", page.photometric)
            raise _ImageFileError(f"deep TIFFs must be grey (MINISBLACK) or RGB, not {name}")
        _check_pixels(page.imagelength, page.imagewidth)
        array = page.asarray()
        if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and array.ndim == 3:
            array = np.moveaxis(array, 0, -1)
    return _to_rgb(array, 65535.0 if kind == "u" else 1.0)


def _read_with_pil(path: Path) -> np.ndarray:
    with Image.open(path) as file:
        file.load()
        image: Image.Image = file
        with contextlib.suppress(Exception):  # a broken EXIF block: keep the pixels as stored
            image = ImageOps.exif_transpose(file)
        if image.mode in _SIXTEEN_BIT_MODES or (image.mode == "I" and image.format == "PNG"):
            return _to_rgb(np.asarray(image), 65535.0)
        if image.mode in ("I", "F"):
            raise _ImageFileError(f"{image.mode!r} images are not supported")
        return _to_rgb(np.asarray(image.convert("RGB")), 255.0)


@functools.lru_cache(maxsize=65536)
def _decoded_size(path: str, size: int, modified_ns: int) -> tuple[int, int]:
    """Height and width of a readable image file (cached per file version: size and mtime)."""
    height, width = read_rgb(path).shape[-2:]
    return height, width


def check_images(
    paths: Sequence[str | os.PathLike[str]], min_side: int = 1, max_listed: int = 20
) -> None:
    """Raise one ValueError listing every file of ``paths`` that cannot be used as an image.

    A file fails if ``read_rgb`` refuses it or if its shorter side is under ``min_side``
    pixels. Each file is decoded once per version (size and modification time), so checking
    the same files again is cheap. The message lists up to ``max_listed`` files, on one line.
    """
    problems = []
    for path in paths:
        try:
            stat = os.stat(path)
            height, width = _decoded_size(str(path), stat.st_size, stat.st_mtime_ns)
        except (OSError, ValueError) as error:
            problems.append(str(error))
            continue
        if min(height, width) < min_side:
            problems.append(
                f"{str(path)!r} is {width}×{height} pixels, under the minimum side of {min_side}"
            )
    if problems:
        more = len(problems) - max_listed
        listed = "; ".join(problems[:max_listed]) + (f"; and {more} more" if more > 0 else "")
        raise ValueError(f"{len(problems)} of {len(paths)} images cannot be used: {listed}")


def write_rgb(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a 3×H×W (or 1×3×H×W) array in [0, 1] as an 8-bit RGB image (format from suffix).

    Parent folders are created. The file is written atomically (``pip_adapter.files``): a
    crash never leaves half an image. Refuses (ValueError) a path that is a folder or has no
    known image suffix; an existing file is replaced.
    """
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"an image to write must be 3×H×W, got shape {tuple(image.shape)}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write image {str(path)!r}: a folder of that name exists")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(
            f"cannot write image {str(path)!r}: unknown suffix {path.suffix!r}; "
            f"use one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    values = np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0)
    array = np.round(np.clip(values, 0, 1) * np.float32(255.0)).astype(np.uint8)
    picture = Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)))
    image_format = Image.registered_extensions()[path.suffix.lower()]
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
