"""Miniature copies of the AirNet / PromptIR / PIP folder layout, written for the tests.

Every degraded file is the exact 8-bit inverse of its clean file (``degraded = 255 - clean``),
so ``degraded + clean == 1`` proves that pairs are matched and cropped / flipped together.
"""

from pathlib import Path

import numpy as np
from PIL import Image


def write_pair(degraded: Path, clean: Path, seed: int, size=(36, 44)) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    for path, array in ((clean, pixels), (degraded, 255 - pixels)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)


def write_clean(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


# (degraded, clean, seed) of the paired images, relative to data/
_PAIRS = (
    ("Train/Derain/rainy/rain-1.png", "Train/Derain/gt/norain-1.png", 11),
    ("Train/Derain/rainy/rain-2.png", "Train/Derain/gt/norain-2.png", 12),
    ("Train/Derain/rainy/rain-3.png", "Train/Derain/gt/norain-3.png", 13),
    ("Train/Dehaze/synthetic/part1/0005_0.8_0.04.png", "Train/Dehaze/original/0005.png", 20),
    ("Train/Dehaze/synthetic/part2/0007_1_0.2.png", "Train/Dehaze/original/0007.png", 21),
    ("Train/Deblur/blur/GOPR0372_000047.png", "Train/Deblur/sharp/GOPR0372_000047.png", 30),
    ("Train/Enhance/low/2.png", "Train/Enhance/high/2.png", 40),
    ("test/derain/Rain100L/input/rain-1.png", "test/derain/Rain100L/target/norain-1.png", 60),
    ("test/derain/Rain100L/input/rain-2.png", "test/derain/Rain100L/target/rain-2.png", 61),
    ("test/dehaze/outdoor/input/0001_0.9_0.16.png", "test/dehaze/outdoor/target/0001.png", 70),
    ("test/deblur/blur/x.png", "test/deblur/sharp/x.png", 80),
    ("test/enhance/low/1.png", "test/enhance/high/1.png", 90),
)
# (clean image, seed), relative to data/; noise is synthesised on them
_CLEAN = (
    ("Train/Denoise/00001.bmp", 0),
    ("Train/Denoise/a1.png", 1),
    ("Train/Denoise/unlisted.png", 2),
    ("test/denoise/bsd68/original/0.png", 50),
    ("test/denoise/bsd68/original/1.png", 51),
)


def make_layout(root: Path) -> Path:
    """A miniature copy of the standard training and test folders and list files in ``root``."""
    data = root / "data"
    for degraded, clean, seed in _PAIRS:
        write_pair(data / degraded, data / clean, seed)
    for clean, seed in _CLEAN:
        write_clean(data / clean, seed)
    lists = root / "data_dir"
    (lists / "noisy").mkdir(parents=True)
    (lists / "noisy/denoise.txt").write_text("00001.bmp\na1.png\n")
    (lists / "rainy").mkdir()
    (lists / "rainy/rainTrain.txt").write_text("rainy/rain-1.png\nrainy/rain-3.png\n")
    return root
