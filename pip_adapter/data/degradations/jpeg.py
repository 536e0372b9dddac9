"""JPEG compression artefacts (blocking, ringing, colour bleeding) from a real JPEG codec."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from pip_adapter.data.degradations._common import (
    SampledDegradation,
    as_image_batch,
    check_scalar,
    choice,
    restore_layout,
)

__all__ = ["JPEG_PARAMETERS", "JpegCompression", "jpeg_compression"]

# quality factor: (default sampling range, accepted values); whole numbers only
JPEG_PARAMETERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "quality": ((10.0, 40.0), (1.0, 100.0)),
}


def _check_quality(quality: float) -> int:
    value = check_scalar(quality, "quality", JPEG_PARAMETERS["quality"][1])
    if value != round(value):
        raise ValueError(f"quality must be a whole number (JPEG quality factor), got {quality}")
    return int(value)


def _encode_decode(image: torch.Tensor, quality: int) -> torch.Tensor:
    """One 3×H×W image in [0, 1] (CPU) through an 8-bit JPEG file of the given quality."""
    pixels = (image * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        array = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def jpeg_compression(
    clean: torch.Tensor,
    quality: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Compress each image as a JPEG file of its own quality factor and decode it again.

    The image is quantised to 8 bits and encoded by Pillow's libjpeg (baseline JPEG, 4:2:0
    chroma subsampling, the libjpeg quantisation tables scaled by the quality factor), which
    produces the real artefacts: 8×8 blocking, ringing around edges, colour bleeding. The
    default range 10–40 is the one of the JPEG-artefact-removal literature (ARCNN, DnCNN-3,
    FBCNN and the all-in-one benchmarks test at quality 10, 20, 30 and 40). The codec runs on the
    CPU; CUDA images are copied there and back.

    Args:
        clean: B×3×H×W (or 3×H×W) in [0, 1].
        quality: JPEG quality factor, a whole number; ``None`` draws one per image uniformly
            from {10, …, 40}; accepted [1, 100] (lower = stronger artefacts).
        generator: torch.Generator for reproducible draws.
    """
    batch, unbatched = as_image_batch(clean, "clean")
    n = batch.shape[0]
    if quality is None:
        low, high = (int(v) for v in JPEG_PARAMETERS["quality"][0])
        qualities = choice(range(low, high + 1), n, generator, torch.device("cpu"))
    else:
        qualities = torch.full((n,), float(_check_quality(quality)))
    host = batch.detach().cpu()
    compressed = torch.stack(
        [_encode_decode(image, int(q)) for image, q in zip(host, qualities.tolist(), strict=True)]
    )
    return restore_layout(compressed.to(batch.device), clean, unbatched)


class JpegCompression(SampledDegradation):
    """Module form of ``jpeg_compression``; ``quality=None`` samples one per image."""

    function = staticmethod(jpeg_compression)
    ranges = JPEG_PARAMETERS

    def __init__(self, quality: float | None = None) -> None:
        super().__init__(quality=None if quality is None else _check_quality(quality))
