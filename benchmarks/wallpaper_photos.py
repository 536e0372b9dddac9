"""Photographs of many kinds from Debian's desktop-wallpaper packages, as benchmark data: more
kinds of photos for training the degradation sensor (``"train"``) and a colour validation set
for choosing its recipe (``"validation"``, never trained on). They live in the repository
(benchmarks/wallpapers/, not in the wheel); tools/make_wallpaper_photos.py rebuilds them from
the packages, and benchmarks/wallpapers/ATTRIBUTION.md gives every file's author and licence.

None of them comes from the packages of the bundled photos (scikit-image, scikit-learn,
matplotlib) or of the out-of-domain held-out set (scipy, sporco, Kivy).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from pip_adapter.data.io import read_image

WALLPAPER_DIR: Path = Path(__file__).with_name("wallpapers")
Split = Literal["train", "validation"]
SPLITS: tuple[str, ...] = ("train", "validation")

LOMIRI = "lomiri-wallpapers-16.04 20.04.0-2"
LOMIRI_20 = "lomiri-wallpapers-20.04 20.04.0-2"
MATE = "mate-backgrounds 1.26.0-1"
PLASMA = "plasma-workspace-wallpapers 4:5.27.5-2"
LOMIRI_DIR = "usr/share/backgrounds"
MATE_DIR = "usr/share/backgrounds/mate/nature"
PLASMA_DIR = "usr/share/wallpapers"


@dataclass(frozen=True)
class Wallpaper:
    """One photo: what it shows, where it comes from (Debian package and file in it), its
    author and licence (as the package's copyright file or metadata gives them), its split."""

    subject: str
    package: str
    path: str
    author: str
    licence: str
    split: Split


def _lomiri(subject: str, file: str, author: str, licence: str, split: Split) -> Wallpaper:
    return Wallpaper(subject, LOMIRI, f"{LOMIRI_DIR}/{file}", author, licence, split)


def _mate(subject: str, file: str, author: str, split: Split) -> Wallpaper:
    return Wallpaper(subject, MATE, f"{MATE_DIR}/{file}", author, "GPL-2+", split)


def _plasma(subject: str, name: str, image: str, author: str, split: Split) -> Wallpaper:
    path = f"{PLASMA_DIR}/{name}/contents/images/{image}"
    return Wallpaper(subject, PLASMA, path, author, "LGPL-3", split)


# name -> photo; the validation photos are one of each kind (city, animal indoors, close-up,
# sky, dusk, objects, texture, mountains)
WALLPAPERS: dict[str, Wallpaper] = {
    "bridge": _lomiri(
        "a white bridge's cables over a flat bay",
        "Bridge_by_Sander_Klootwijk.jpg",
        "Sander Klootwijk",
        "CC-BY-SA-4.0",
        "validation",
    ),
    "dragonfly": _lomiri(
        "leaves against a blue sky",
        "Dragonfly_by_Bolly.jpg",
        '"Bolly"',
        "CC-BY-SA-4.0",
        "train",
    ),
    "fig": _lomiri(
        "a halved fig in a red bowl on concrete",
        "Picture_0B_by_freespace.jpg",
        'Trevor "Freespace"',
        "CC-BY-4.0",
        "train",
    ),
    "brushes": _lomiri(
        "paint brushes, close-up",
        "Picture_1A_by_freespace.jpg",
        'Trevor "Freespace"',
        "CC-BY-4.0",
        "train",
    ),
    "wine": _lomiri(
        "a glass of wine on a table, indoors",
        "Wine_by_Jakkub_Mede.jpg",
        "Jakub Mede",
        "CC-BY-4.0",
        "train",
    ),
    "aitzgorri": _lomiri(
        "autumn meadow below a mountain ridge",
        "aitzgorri_by_Aitzol_Berasategi.jpg",
        "Aitzol Berasategi",
        "CC-BY-4.0",
        "train",
    ),
    "lamp": _lomiri(
        "hanging lamps and a paper bird, indoors",
        "free_by_Peter_Nerlich.jpg",
        "Peter Nerlich",
        "CC-BY-SA-4.0",
        "train",
    ),
    "dog": _lomiri(
        "a dog at a wooden door",
        "friends_by_Aitzol_Berasategi.jpg",
        "Aitzol Berasategi",
        "CC-BY-4.0",
        "validation",
    ),
    "clock": _lomiri(
        "a wall clock, close-up",
        "greentock_by_Peter_Nerlich.jpg",
        "Peter Nerlich",
        "CC-BY-SA-4.0",
        "train",
    ),
    "stream": _lomiri(
        "a stream over rocks in a forest",
        "life_by_Aitzol_Berasategi.jpg",
        "Aitzol Berasategi",
        "CC-BY-4.0",
        "train",
    ),
    "mountains": _lomiri(
        "a path below snowy peaks",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "Aitzol Berasategi",
        "CC-BY-4.0",
        "validation",
    ),
    "dandelions": _lomiri(
        "dandelion clocks in a field, against the light",
        "seeding_by_Clements_Engelhardt.jpg",
        "Clemens Engelhardt",
        "CC0-1.0",
        "train",
    ),
    "sunset": _lomiri(
        "the sun setting over hills",
        "sunset_by_Aitzol_Berasategi.jpg",
        "Aitzol Berasategi",
        "CC-BY-4.0",
        "train",
    ),
    "nuthatch": Wallpaper(
        "a nuthatch on a tree trunk",
        LOMIRI_20,
        f"{LOMIRI_DIR}/Kleiber_by_Lukas_Baubkus.jpg",
        "Lukas Baubkus",
        "CC-BY-SA-3.0",
        "train",
    ),
    "water_drop": _mate("a drop falling into water", "Aqua.jpg", "Charles Barbin", "train"),
    "leaf": _mate(
        "a green leaf's veins, close-up",
        "Blinds.jpg",
        "Lennart Poettering, Andrea Cimitan",
        "train",
    ),
    "dune": _mate("dune grass by the sea", "Dune.jpg", "Marco Cogoni, Hylke Bons", "train"),
    "red_flower": _mate("an orange flower, close-up", "FreshFlower.jpg", "Jens Ansorg", "train"),
    "garden": _mate("a red flower in a garden", "Garden.jpg", "Charles Barbin", "train"),
    "meadow": _mate(
        "blades of grass", "GreenMeadow.jpg", "Timothy Schellhase, Lapo Calamandrei", "train"
    ),
    "ladybird": _mate(
        "a ladybird on a leaf by forget-me-nots",
        "LadyBird.jpg",
        "Charles Barbin",
        "validation",
    ),
    "raindrops": _mate(
        "drops of water on leaves", "RainDrops.jpg", '"blackcombwhistler07"', "train"
    ),
    "storm": _mate("storm clouds over a plain", "Storm.jpg", "Sergey Nazarov", "validation"),
    "seed_head": _mate(
        "a seed head before an orange flower",
        "TwoWings.jpg",
        "Charles Barbin, Hylke Bons",
        "train",
    ),
    "wood": _mate("weathered wooden boards", "Wood.jpg", "Jean-François Fortin Tam", "validation"),
    "yellow_flower": _mate(
        "a yellow flower, close-up", "YellowFlower.jpg", "Charles Barbin", "train"
    ),
    "lake": _plasma(
        "a wooden jetty on a lake", "BytheWater", "1920x1080.jpg", "Maciej Wiklo", "train"
    ),
    "cups": _plasma(
        "rows of coloured cups, from above",
        "ColorfulCups",
        "2560x1600.jpg",
        "Dmitri Popov",
        "validation",
    ),
    "boats": _plasma(
        "rowing boats on a shore at dusk",
        "EveningGlow",
        "1920x1080.jpg",
        "Ian Hex",
        "validation",
    ),
    "fallen_leaf": _plasma(
        "fallen autumn leaves", "FallenLeaf", "1920x1080.jpg", "Martin Klapetek", "train"
    ),
    "facade": _plasma(
        "a curved facade of concrete slats, black and white",
        "Grey",
        "1920x1080.jpg",
        "Sigi Sagi",
        "train",
    ),
    "moss": _plasma(
        "moss with one red sprout", "OneStandsOut", "1920x1080.jpg", "Risto Saukonpää", "train"
    ),
    "forest_path": _plasma(
        "a path through a spruce forest", "Path", "1920x1080.jpg", "Risto Saukonpää", "train"
    ),
    "night_lake": _plasma(
        "a lake under the sky of a summer night",
        "summer_1am",
        "1920x1080.jpg",
        "Risto Saukonpää",
        "train",
    ),
}


def wallpaper_names(split: Split) -> list[str]:
    """Names of the wallpaper photos in ``split``, in a fixed order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    return [name for name, photo in WALLPAPERS.items() if photo.split == split]


def wallpaper_paths(split: Split) -> list[Path]:
    """The JPEG files of the wallpaper photos in ``split``."""
    return [WALLPAPER_DIR / f"{name}.jpg" for name in wallpaper_names(split)]


def wallpapers_digest(split: Split) -> str:
    """A digest of the files of ``split`` (names and bytes): what a sensor trained or measured
    on them depends on, for the caches' keys."""
    digest = hashlib.sha256()
    for path in wallpaper_paths(split):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def wallpaper_photos(split: Split) -> list[torch.Tensor]:
    """The wallpaper photos in ``split`` as 3×H×W float RGB tensors in [0, 1] (longer side
    512 pixels)."""
    return [read_image(path) for path in wallpaper_paths(split)]
