"""Per-item seeding, paired random crops and flips / rotations for the training datasets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


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


def pad_to_size(image: torch.Tensor, size: int) -> torch.Tensor:
    """Pad a C×H×W image at the bottom / right so both sides are at least ``size``."""
    pad_h, pad_w = max(0, size - image.shape[-2]), max(0, size - image.shape[-1])
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < image.shape[-2] and pad_w < image.shape[-1] else "replicate"
    return F.pad(image.unsqueeze(0), (0, pad_w, 0, pad_h), mode=mode)[0]


def paired_crop(
    images: tuple[torch.Tensor, ...], size: int, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """The same random ``size``×``size`` crop of each C×H×W image (padded first if smaller)."""
    images = tuple(pad_to_size(image, size) for image in images)
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
