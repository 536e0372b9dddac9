"""Synthetic pages of text and line art, rendered with Pillow's default font: clean images of
printed content (thin dark strokes on flat paper), which no bundled photo shows and which a
sensor trained on photos alone takes for rain."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

__all__ = ["synthetic_pages"]

# the characters of the pages' words, and the font sizes (pixels) of their paragraphs
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:-()"
_FONT_SIZES = (8, 40)


def _words(rng: np.random.Generator, count: int) -> str:
    """``count`` random words of 1 to 9 characters."""
    lengths = rng.integers(1, 10, count)
    return " ".join("".join(rng.choice(list(_LETTERS), n)) for n in lengths)


def _paragraph(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple, ink: int) -> None:
    """Lines of random words in one font size, filling the ``(left, top, right, bottom)`` box."""
    left, top, right, bottom = box
    size = int(rng.integers(*_FONT_SIZES))
    font = ImageFont.load_default(size=size)
    y = top
    while y + size <= bottom:
        draw.text((left, y), _words(rng, max(1, (right - left) // (size * 3))), fill=ink, font=font)
        y += round(size * rng.uniform(1.2, 1.8))


def _line_art(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple, ink: int) -> None:
    """A table grid, boxes, circles and lines of 1 to 3 pixels in the ``box``."""
    left, top, right, bottom = box
    width = int(rng.integers(1, 4))
    rows, columns = (int(n) for n in rng.integers(2, 7, 2))
    for i in range(rows + 1):
        y = top + (bottom - top) * i // rows
        draw.line((left, y, right, y), fill=ink, width=width)
    for i in range(columns + 1):
        x = left + (right - left) * i // columns
        draw.line((x, top, x, bottom), fill=ink, width=width)
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = sorted(rng.integers(left, right, 2).tolist())
        y0, y1 = sorted(rng.integers(top, bottom, 2).tolist())
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), outline=ink, width=width)
        else:
            draw.line((x0, y0, x1, y1), fill=ink, width=width)


def synthetic_pages(count: int, size: int = 512, seed: int = 0) -> list[torch.Tensor]:
    """``count`` clean ``size``×``size`` pages (3×H×W in [0, 1]), the same for a ``seed``:
    paragraphs of random words at font sizes from 8 to 40 pixels and line art (tables, boxes,
    circles), dark ink on light paper of a random grey and tint, lit unevenly as a scan or a
    photo of a page is. Pillow's default font; nothing is downloaded."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 64:
        raise ValueError(f"size must be an integer of at least 64 pixels, got {size!r}")
    rng = np.random.default_rng(seed)
    pages = []
    for _ in range(count):
        image = Image.new("L", (size, size), int(rng.integers(200, 256)))
        draw = ImageDraw.Draw(image)
        ink = int(rng.integers(0, 80))
        y = int(rng.integers(4, 24))
        while y < size - 16:
            height = int(rng.integers(size // 8, size // 3))
            box = (int(rng.integers(4, 32)), y, size - int(rng.integers(4, 32)), y + height)
            (_line_art if rng.random() < 0.3 else _paragraph)(draw, rng, box, ink)
            y += height + int(rng.integers(8, 32))
        grey = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)
        # uneven light: a linear ramp of up to 15% across the page, in a random direction
        axis = torch.linspace(-1, 1, size)
        ys, xs = torch.meshgrid(axis, axis, indexing="ij")
        angle = rng.uniform(0, 2 * np.pi)
        light = 1 - 0.075 * rng.uniform() * (1 + np.cos(angle) * xs + np.sin(angle) * ys) / 2
        tint = torch.from_numpy(rng.uniform(0.92, 1.0, 3).astype(np.float32)).view(3, 1, 1)
        pages.append((grey * light * tint).clamp(0, 1).contiguous())
    return pages
