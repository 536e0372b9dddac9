"""Gallery of the seven synthetic degradations on bundled photos.

Run:  python benchmarks/degradation_gallery.py [--seed 0] [--size 288] [--out PATH]
Writes docs/images/degradations.jpg (quality 92): one row per photo, columns
clean | noise | rain | haze | blur | lowlight | jpeg | snow, each degradation with parameters
drawn from its default range (seeded, so the picture is reproducible).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from pip_adapter.data import degrade, read_image
from pip_adapter.data.photos import PHOTO_DIR

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("clean", "noise", "rain", "haze", "blur", "lowlight", "jpeg", "snow")
PHOTOS = ("astronaut", "chelsea", "coffee")
LABEL_HEIGHT = 22


def centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    top = max(0, (image.shape[-2] - size) // 2)
    left = max(0, (image.shape[-1] - size) // 2)
    return image[:, top : top + size, left : left + size]


def to_pil(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def gallery(seed: int, size: int) -> Image.Image:
    rows = []
    for row, name in enumerate(PHOTOS):
        clean = centre_crop(read_image(PHOTO_DIR / f"{name}.png"), size)
        cells = [clean]
        for column, degradation in enumerate(COLUMNS[1:]):
            generator = torch.Generator().manual_seed(seed * 1000 + row * 10 + column)
            cells.append(degrade(clean, degradation, generator=generator))
        rows.append(cells)
    height, width = rows[0][0].shape[-2:]
    canvas = Image.new("RGB", (width * len(COLUMNS), LABEL_HEIGHT + height * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(COLUMNS):
        draw.text((column * width + 6, 5), label, fill="black")
    for row, cells in enumerate(rows):
        for column, cell in enumerate(cells):
            canvas.paste(to_pil(cell), (column * width, LABEL_HEIGHT + row * height))
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=288, help="side of the centre crops")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "degradations.jpg")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    gallery(args.seed, args.size).save(args.out, quality=92)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
