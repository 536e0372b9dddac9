"""Rebuild the wallpaper photos (benchmarks/wallpapers/) from the Debian packages they ship in.

Run once, on a Debian 12 (bookworm) system, with the packages unpacked (no install needed):

    apt-get download lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds \
        plasma-workspace-wallpapers
    for f in *.deb; do dpkg -x "$f" UNPACKED; done
    python tools/make_wallpaper_photos.py --root UNPACKED

Each photo is read from the package's files, downscaled with a Lanczos filter to at most 512
pixels on its longer side and written as an 8-bit RGB JPEG (quality 90). The photos, their
authors, licences and splits are listed in benchmarks/wallpaper_photos.py (``WALLPAPERS``); this
script writes them out as benchmarks/wallpapers/ATTRIBUTION.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from wallpaper_photos import WALLPAPER_DIR, WALLPAPERS  # noqa: E402

LONGER_SIDE = 512
QUALITY = 90
LICENCES = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "GPL-2+": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "LGPL-3": "https://www.gnu.org/licenses/lgpl-3.0.html",
}
HEADER = """# Wallpaper photos (benchmark data)

Photographs from Debian 12's desktop-wallpaper packages, for training the degradation sensor on
more kinds of photos (split "train") and for choosing its recipe on colour photos it never saw
(split "validation"); see `benchmarks/wallpaper_photos.py`. They are not part of the
pip-adapter package (not in the wheel). Authors and licences as each package's
`/usr/share/doc/PACKAGE/copyright` file gives them (plasma-workspace-wallpapers: the licence and
author in each wallpaper's `metadata.json`).

**These files are not under pip-adapter's MIT licence**: each is under its own licence, in
the table (CC0 1.0, CC BY 4.0, CC BY-SA 3.0 / 4.0, GPL-2+ or LGPL-3). The texts of the GNU
licences are in `LICENSES/` (GPL-2, and LGPL-3 with the GPL-3 it extends, copied from Debian's
`/usr/share/common-licenses`); the Creative Commons ones are at the links. The full-size
originals (for the GPL and LGPL files, their preferred form for modification) are in the Debian
source packages `lomiri-wallpapers` 20.04.0-2, `mate-backgrounds` 1.26.0-1 and
`plasma-workspace-wallpapers` 4:5.27.5-2, kept at <https://snapshot.debian.org/package/NAME/VERSION/>.

Modifications (by the pip-adapter developers, released under the same licence as each
original): downscaled with a Lanczos filter to 512 pixels on the longer side and re-encoded as
8-bit RGB JPEG (quality 90) by `tools/make_wallpaper_photos.py`.

| File | Subject | Author | Source (Debian package: file) | Licence | Size | Split |
| --- | --- | --- | --- | --- | --- | --- |
"""


def save(source: Path, name: str) -> str:
    """Write photo ``name`` from ``source``; its size as the attribution gives it."""
    image = Image.open(source).convert("RGB")
    original = f"{image.width}×{image.height}"
    scale = LONGER_SIDE / max(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    image.save(WALLPAPER_DIR / f"{name}.jpg", quality=QUALITY, optimize=True)
    print(f"{name}.jpg {image.width}×{image.height}")
    return f"{image.width}×{image.height} (from {original})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the packages, unpacked")
    args = parser.parse_args()
    rows = []
    for name, photo in WALLPAPERS.items():
        size = save(args.root / photo.path, name)
        licence = f"[{photo.licence}]({LICENCES[photo.licence]})"
        rows.append(
            f"| `{name}.jpg` | {photo.subject} | {photo.author} | {photo.package}: "
            f"`/{photo.path}` | {licence} | {size} | {photo.split} |"
        )
    (WALLPAPER_DIR / "ATTRIBUTION.md").write_text(HEADER + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
