"""Labelled picture grids of image tensors, for demos and reports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from pip_adapter._extras import needs_extra
from pip_adapter.files import atomic_write

with needs_extra("train", "pip_adapter.visualize"):
    from PIL import Image, ImageDraw

__all__ = ["image_grid", "save_image_grid"]

_LABEL_HEIGHT = 18
_GAP = 4


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy())


def image_grid(
    rows: Sequence[Sequence[torch.Tensor]],
    column_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
) -> Image.Image:
    """Lay out 3×H×W tensors (same size within a column) as a grid with text labels."""
    if not rows or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("rows must be a non-empty list of equally long lists of images")
    widths = [max(row[c].shape[-1] for row in rows) for c in range(len(rows[0]))]
    heights = [max(image.shape[-2] for image in row) for row in rows]
    left = 90 if row_labels else 0
    top = _LABEL_HEIGHT if column_labels else 0
    canvas = Image.new(
        "RGB",
        (
            left + sum(widths) + _GAP * (len(widths) - 1),
            top + sum(heights) + _GAP * (len(rows) - 1),
        ),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    x = left
    for label, width in zip(column_labels, widths, strict=False):
        draw.text((x + 3, 3), label, fill="black")
        x += width + _GAP
    y = top
    for r, row in enumerate(rows):
        if r < len(row_labels):
            draw.text((4, y + heights[r] // 2 - 6), row_labels[r], fill="black")
        x = left
        for c, image in enumerate(row):
            canvas.paste(_to_pil(image), (x, y))
            x += widths[c] + _GAP
        y += heights[r] + _GAP
    return canvas


def save_image_grid(
    path: str | os.PathLike,
    rows: Sequence[Sequence[torch.Tensor]],
    column_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
) -> Path:
    """Write ``image_grid``'s picture as a PNG (atomically)."""
    grid = image_grid(rows, column_labels, row_labels)
    return atomic_write(path, lambda p: grid.save(p, format="PNG"))
