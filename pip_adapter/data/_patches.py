"""Per-item seeding, paired random crops and flips / rotations for the training datasets."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from pip_adapter.padding import pad_to_size


def item_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from integer ``keys`` (e.g. seed, epoch, index).

    Every dataset item gets its own stream, so results do not depend on the order in which
    DataLoader workers or a DistributedSampler visit the items.
    """
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2)
    seed = (int(state[0]) << 32 | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF
    return torch.Generator().manual_seed(seed)


def randint(high: int, generator: torch.Generator) -> int:
    """Uniform integer in [0, high)."""
    return int(torch.randint(high, (1,), generator=generator).item())


def paired_crop(
    images: tuple[torch.Tensor, ...], size: int, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """The same random ``size``×``size`` crop of each C×H×W image (padded first if smaller)."""
    images = tuple(
        pad_to_size(image[None], max(size, image.shape[-2]), max(size, image.shape[-1]))[0]
        for image in images
    )
    height, width = images[0].shape[-2:]
    top = randint(height - size + 1, generator)
    left = randint(width - size + 1, generator)
    return tuple(image[..., top : top + size, left : left + size] for image in images)


def paired_dihedral(
    images: tuple[torch.Tensor, ...], generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """The same random flip / 90° rotation (one of the 8 symmetries of the square) of each image."""
    choice = randint(8, generator)
    flip, turns = choice >= 4, choice % 4
    out = []
    for image in images:
        if flip:
            image = image.flip(-1)
        out.append(torch.rot90(image, turns, dims=(-2, -1)).contiguous())
    return tuple(out)


class DegradationBalancedPatches(Dataset):
    """Base of the training sets: item ``i`` belongs to degradation ``i % len(degradations)``
    and draws all its randomness from a generator seeded by ``(seed, epoch, i)``.

    Subclasses set ``degradations`` and implement ``make_item``.
    """

    degradations: tuple[str, ...]

    def __init__(self, samples_per_degradation: int, seed: int, augment: bool) -> None:
        self.samples_per_degradation = samples_per_degradation
        self.seed = seed
        self.augment = augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw different patches for ``epoch`` (same epoch, same patches)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_degradation * len(self.degradations)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        degradation_id = index % len(self.degradations)
        degraded, clean = self.make_item(
            degradation_id, item_generator(self.seed, self.epoch, index)
        )
        return degraded, clean, degradation_id

    def make_item(
        self, degradation_id: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(degraded, clean)`` patch pair of one item of degradation ``degradation_id``."""
        raise NotImplementedError
