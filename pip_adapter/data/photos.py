"""Real photographs bundled with the package, and deterministic train / held-out splits.

The photos (public domain / CC0 / CC BY 2.0, sources and licences in ``photos/ATTRIBUTION.md``)
let the demo and tests train and evaluate without downloads. Demos train on the ``"train"`` split
and report metrics on the ``"test"`` (held-out) split so that numbers are never measured on
training photos. The ``"ood"`` split is a second held-out set of photos of other kinds (animals,
flowers, a regatta, ruins, a city at night, a micrograph) from other packages, to measure how
results carry over to images unlike the training ones.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeVar

import torch

from pip_adapter.data.io import read_image

__all__ = [
    "OOD_PHOTOS",
    "OOD_PHOTO_DIR",
    "PHOTO_DIR",
    "SAMPLE_PHOTOS",
    "sample_image_names",
    "sample_images",
    "split_train_test",
]

PHOTO_DIR: Path = Path(__file__).with_name("photos")
OOD_PHOTO_DIR: Path = PHOTO_DIR / "ood"

# name -> split; the held-out photos are natural scenes with fine texture (fur, wood, petals)
SAMPLE_PHOTOS: dict[str, str] = {
    "astronaut": "train",
    "rocket": "train",
    "china": "train",
    "grace_hopper": "train",
    "hubble_deep_field": "train",
    "retina": "train",
    "chelsea": "test",
    "coffee": "test",
    "flower": "test",
}

# the out-of-domain held-out set: name -> what it shows (never used for training or tuning)
OOD_PHOTOS: dict[str, str] = {
    "parrots": "two macaws, close-up (Kodak kodim23)",
    "monarch": "monarch butterfly on pink flowers",
    "sailboats": "windsurfers and a yacht at sea, from above",
    "tulips": "red and yellow tulips with leaves",
    "raccoon": "raccoon among palm leaves",
    "ruins": "gothic stone arches against the sky",
    "city_night": "glass towers at night",
    "ihc": "stained tissue under a microscope (immunohistochemistry)",
}

Split = Literal["all", "train", "test", "ood"]
SPLITS: tuple[str, ...] = ("all", "train", "test", "ood")
T = TypeVar("T")


def sample_image_names(split: Split = "all") -> list[str]:
    """Names of the bundled photos in ``split``, in a fixed order.

    ``"train"`` (six) and ``"test"`` (three held-out) split the nine original photos, which
    ``"all"`` names; ``"ood"`` names the eight out-of-domain held-out photos (not part of
    ``"all"``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    if split == "ood":
        return list(OOD_PHOTOS)
    return [name for name, part in SAMPLE_PHOTOS.items() if split in ("all", part)]


def sample_images(split: Split = "all") -> list[torch.Tensor]:
    """The bundled photos in ``split`` as float32 RGB tensors (3×H×W, values in [0, 1]).

    Longer side at most 512 pixels, shorter side at least 256 for the held-out ones.
    ``"all"`` is the nine original photos: ``"train"`` has six, ``"test"`` three (held out).
    ``"ood"`` is a second held-out set of eight photos of other kinds, taken from packages the
    training photos do not come from (scipy, sporco, Kivy's examples, one scikit-image
    micrograph): report results on it beside ``"test"``, and never use it for training or for
    tuning defaults, or it stops measuring generalisation.
    """
    folder = OOD_PHOTO_DIR if split == "ood" else PHOTO_DIR
    return [read_image(folder / f"{name}.png") for name in sample_image_names(split)]


def split_train_test(
    items: Sequence[T], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[T], list[T]]:
    """Split ``items`` (e.g. image paths) into (train, test), deterministically.

    The split depends only on the set of items (they are sorted by ``str`` first, so listing
    order does not matter), ``test_fraction`` and ``seed``. At least one item goes to each side
    when there are two or more items.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(items) < 2:
        raise ValueError(f"need at least 2 items to split, got {len(items)}")
    ordered = sorted(items, key=str)
    random.Random(seed).shuffle(ordered)
    num_test = min(max(1, round(test_fraction * len(ordered))), len(ordered) - 1)
    return ordered[num_test:], ordered[:num_test]
