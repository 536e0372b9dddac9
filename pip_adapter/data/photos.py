"""Real photographs bundled with the package, and deterministic train / held-out splits.

The photos (public domain / CC0, sources and licences in ``photos/ATTRIBUTION.md``) let the demo
and tests train and evaluate without downloads. Demos train on the ``"train"`` split and report
metrics on the ``"test"`` (held-out) split so that numbers are never measured on training photos.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeVar

import torch

from pip_adapter.data.io import read_image

__all__ = ["PHOTO_DIR", "SAMPLE_PHOTOS", "sample_image_names", "sample_images", "split_train_test"]

PHOTO_DIR: Path = Path(__file__).with_name("photos")

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

Split = Literal["all", "train", "test"]
T = TypeVar("T")


def sample_image_names(split: Split = "all") -> list[str]:
    """Names of the bundled photos in ``split`` ("all", "train" or "test"), in a fixed order."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    return [name for name, part in SAMPLE_PHOTOS.items() if split in ("all", part)]


def sample_images(split: Split = "all") -> list[torch.Tensor]:
    """The bundled photos in ``split`` as float32 RGB tensors (3×H×W, values in [0, 1]).

    Nine photographs, longer side at most 512 pixels; ``"train"`` has six, ``"test"`` three.
    """
    return [read_image(PHOTO_DIR / f"{name}.png") for name in sample_image_names(split)]


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
