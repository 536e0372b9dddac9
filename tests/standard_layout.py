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


def make_layout(root: Path) -> Path:
    """A miniature copy of the standard training and test folders and list files in ``root``."""
    train = root / "data" / "Train"
    for i, name in enumerate(("00001.bmp", "a1.png", "unlisted.png")):
        write_clean(train / "Denoise" / name, i)
    for n in (1, 2, 3):
        write_pair(
            train / "Derain/rainy" / f"rain-{n}.png",
            train / "Derain/gt" / f"norain-{n}.png",
            10 + n,
        )
    write_pair(
        train / "Dehaze/synthetic/part1/0005_0.8_0.04.png", train / "Dehaze/original/0005.png", 20
    )
    write_pair(
        train / "Dehaze/synthetic/part2/0007_1_0.2.png", train / "Dehaze/original/0007.png", 21
    )
    write_pair(
        train / "Deblur/blur/GOPR0372_000047.png", train / "Deblur/sharp/GOPR0372_000047.png", 30
    )
    write_pair(train / "Enhance/low/2.png", train / "Enhance/high/2.png", 40)
    lists = root / "data_dir"
    (lists / "noisy").mkdir(parents=True)
    (lists / "noisy/denoise.txt").write_text("00001.bmp\na1.png\n")
    (lists / "rainy").mkdir()
    (lists / "rainy/rainTrain.txt").write_text("rainy/rain-1.png\nrainy/rain-3.png\n")

    test = root / "data" / "test"
    for i in range(2):
        write_clean(test / "denoise/bsd68/original" / f"{i}.png", 50 + i)
    write_pair(
        test / "derain/Rain100L/input/rain-1.png", test / "derain/Rain100L/target/norain-1.png", 60
    )
    write_pair(
        test / "derain/Rain100L/input/rain-2.png", test / "derain/Rain100L/target/rain-2.png", 61
    )
    write_pair(
        test / "dehaze/outdoor/input/0001_0.9_0.16.png", test / "dehaze/outdoor/target/0001.png", 70
    )
    write_pair(test / "deblur/blur/x.png", test / "deblur/sharp/x.png", 80)
    write_pair(test / "enhance/low/1.png", test / "enhance/high/1.png", 90)
    return root
