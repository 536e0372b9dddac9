"""All-in-one training data synthesised from clean images, and fixed evaluation pairs.

Any folder of clean photos (or the bundled ones) becomes a multi-degradation training set:
random crops, flips / rotations, and a degradation chosen in turn from the tuple of degradations,
so each gets the same share of samples. The degradation id is its index in that tuple.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from pip_adapter.conditioning import DEFAULT_DEGRADATIONS
from pip_adapter.data._patches import (
    DegradationBalancedPatches,
    item_generator,
    paired_crop,
    paired_dihedral,
    randint,
)
from pip_adapter.data.degradations._common import as_image_batch
from pip_adapter.data.degradations.compose import DegradeFn, build_degradation
from pip_adapter.data.io import check_images, list_images, read_image
from pip_adapter.data.photos import sample_image_names, sample_images

__all__ = ["PairedImages", "SyntheticAllInOne", "build_eval_set"]

ImageSource = str | os.PathLike[str] | torch.Tensor
Images = str | os.PathLike[str] | Sequence[ImageSource] | None


def image_sources(images: Images) -> list[ImageSource]:
    """The training images ``images`` names (None: the bundled training photos; a folder; files
    or 3×H×W tensors), each checked to exist or to be an image tensor."""
    if images is None:
        return list(sample_images("train"))
    if isinstance(images, (str, os.PathLike)):
        paths = list_images(images)
        if not paths:
            raise FileNotFoundError(f"no image files found in {str(images)!r}")
        return list(paths)
    sources = list(images)
    if not sources:
        raise ValueError("images is empty")
    for index, source in enumerate(sources):
        if isinstance(source, torch.Tensor):
            as_image_batch(source, f"images[{index}]")
            if source.dim() != 3:
                raise ValueError(f"images[{index}] must be 3×H×W, got {tuple(source.shape)}")
        elif not Path(source).is_file():
            raise FileNotFoundError(f"images[{index}]: no file at {str(source)!r}")
    return sources


def min_training_side(patch_size: int) -> int:
    """The shortest image side accepted for ``patch_size`` patches: a quarter of the patch.

    Smaller images are padded to the patch (reflect), but below this the patch would be mostly
    padding.
    """
    return max(1, math.ceil(patch_size / 4))


def _check_training_images(sources: Sequence[ImageSource], patch_size: int) -> None:
    """One ValueError listing every unreadable or too small training image."""
    min_side = min_training_side(patch_size)
    check_images([s for s in sources if not isinstance(s, torch.Tensor)], min_side)
    small = [
        f"images[{i}] is {s.shape[-1]}×{s.shape[-2]} pixels"
        for i, s in enumerate(sources)
        if isinstance(s, torch.Tensor) and min(s.shape[-2:]) < min_side
    ]
    if small:
        raise ValueError(
            f"{'; '.join(small)}: under the minimum side of {min_side} for {patch_size}-pixel "
            "patches"
        )


def _resolve_degradations(
    degradations: Sequence[str],
    params: Mapping[str, Mapping[str, Any]] | None,
    custom: Mapping[str, DegradeFn] | None,
) -> tuple[tuple[str, ...], list[DegradeFn]]:
    """Check degradation names and build one ``fn(clean, generator)`` per degradation."""
    if isinstance(degradations, str):
        raise TypeError(
            f"degradations must be a sequence of names, e.g. ({degradations!r},), not a string"
        )
    degradations = tuple(degradations)
    if not degradations:
        raise ValueError("degradations is empty")
    if len(set(degradations)) != len(degradations):
        raise ValueError(f"degradations must be distinct, got {degradations}")
    params, custom = dict(params or {}), dict(custom or {})
    unknown = sorted(set(params) - set(degradations))
    if unknown:
        raise ValueError(
            f"params given for {unknown}, which are not among the degradations {degradations}"
        )
    functions: list[DegradeFn] = []
    for degradation in degradations:
        if degradation in custom:
            fn = custom[degradation]
            if degradation in params:
                raise ValueError(
                    f"params for custom degradation {degradation!r}: bind them into its function"
                )
        else:
            fn = build_degradation(degradation, **params.get(degradation, {}))
        functions.append(fn)
    return degradations, functions


class SyntheticAllInOne(DegradationBalancedPatches):
    """Multi-degradation training patches synthesised from clean images.

    Item ``i`` has degradation ``i % len(degradations)`` (balanced sampling); its image, crop,
    flip / rotation and degradation parameters come from a generator seeded by
    ``(seed, epoch, i)``, so an item is the same whichever DataLoader worker or
    DistributedSampler rank draws it. Call ``set_epoch`` to get fresh patches each epoch.

    Args:
        images: a folder of clean images, a list of image paths or 3×H×W tensors in [0, 1], or
            ``None`` for the bundled training photos.
        degradations: degradation names, in id order: built-in ones (``SYNTHETIC_DEGRADATIONS``:
            ``noise``, ``rain``, ``haze``, ``blur``, ``lowlight``, ``jpeg``, ``snow``, ``clean``),
            composites such as ``"rain+noise"``, or keys of ``custom``.
        patch_size: side of the square training patches (smaller images are reflect-padded;
            images with a side under a quarter of it are refused).
        samples_per_degradation: items per degradation and epoch; the length is this times
            ``len(degradations)``.
        seed: base seed.
        augment: apply a random flip / 90° rotation.
        params: fixed parameters per degradation, e.g. ``{"noise": {"sigma": 25}}``.
        custom: extra degradations by name, ``fn(clean_batch, generator=g) -> degraded``.
        context: pixels of real image around the patch that the degradation sees: it degrades
            a crop this much larger on every side, then the patch is cut out of it, so that
            blur kernels and streaks near the patch border spread real content, as they do in
            a whole photo, instead of the reflected border of a small crop.
        scales: zoom factors, one drawn per item (uniformly): a region ``1 / scale`` times the
            crop's side is cut and downscaled (antialiased) to it, so the patches show the
            photos' content at several sizes, as other photos would (at most as much as the
            image's shorter side allows). ``(1.0,)``: native resolution only.

    Items are ``(degraded, clean, degradation_id)`` with 3×P×P float tensors and an int id.
    """

    def __init__(
        self,
        images: Images = None,
        degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
        patch_size: int = 128,
        samples_per_degradation: int = 256,
        seed: int = 0,
        augment: bool = True,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        custom: Mapping[str, DegradeFn] | None = None,
        context: int = 0,
        scales: Sequence[float] = (1.0,),
    ) -> None:
        if context < 0:
            raise ValueError(f"context must be >= 0 pixels, got {context}")
        scales = tuple(scales)
        if not scales or not all(isinstance(s, (int, float)) and 0 < s <= 1 for s in scales):
            raise ValueError(f"scales must be numbers in (0, 1], got {scales}")
        if patch_size < 1 or samples_per_degradation < 1:
            raise ValueError(
                f"patch_size and samples_per_degradation must be positive, got {patch_size} "
                f"and {samples_per_degradation}"
            )
        super().__init__(samples_per_degradation, seed, augment)
        self.sources = image_sources(images)
        _check_training_images(self.sources, patch_size)
        self.degradations, self._functions = _resolve_degradations(degradations, params, custom)
        self.patch_size = patch_size
        self.context = context
        self.scales = tuple(float(s) for s in scales)

    def make_item(
        self, degradation_id: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        source = self.sources[randint(len(self.sources), generator)]
        image = source if isinstance(source, torch.Tensor) else read_image(source)
        margin, size = self.context, self.patch_size
        clean = self._zoomed_crop(image.float(), size + 2 * margin, generator)
        if self.augment:
            (clean,) = paired_dihedral((clean,), generator)
        degraded = self._functions[degradation_id](clean.unsqueeze(0), generator=generator)[0]
        inner = (slice(None), slice(margin, margin + size), slice(margin, margin + size))
        return degraded[inner], clean[inner]

    def _zoomed_crop(
        self, image: torch.Tensor, side: int, generator: torch.Generator
    ) -> torch.Tensor:
        """A random ``side``² crop of ``image`` at one of ``scales`` (drawn only if several)."""
        scale = (
            self.scales[randint(len(self.scales), generator)]
            if len(self.scales) > 1
            else self.scales[0]
        )
        region = min(round(side / scale), *image.shape[-2:]) if scale < 1 else side
        (clean,) = paired_crop((image,), max(region, side), generator)
        if clean.shape[-1] == side:
            return clean
        return F.interpolate(
            clean[None], size=(side, side), mode="bilinear", antialias=True, align_corners=False
        )[0].clamp(0, 1)


class PairedImages(Dataset):
    """Fixed ``(degraded, clean, degradation_id)`` triples held in memory, with a name for each.

    Images may differ in size between items; use ``batch_size=1`` in a DataLoader.
    """

    def __init__(
        self,
        degraded: Sequence[torch.Tensor],
        clean: Sequence[torch.Tensor],
        degradation_ids: Sequence[int],
        names: Sequence[str],
        degradations: Sequence[str],
    ) -> None:
        if not len(degraded) == len(clean) == len(degradation_ids) == len(names):
            raise ValueError("degraded, clean, degradation_ids and names must have the same length")
        self.degraded, self.clean = list(degraded), list(clean)
        self.degradation_ids, self.names = list(degradation_ids), list(names)
        self.degradations = tuple(degradations)

    def __len__(self) -> int:
        return len(self.degraded)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.degraded[index], self.clean[index], self.degradation_ids[index]

    def select(self, degradations: Sequence[str]) -> PairedImages:
        """The pairs of the named degradations, in their order here, with the same vocabulary
        (ids unchanged): e.g. one degradation's pairs, to evaluate or fit on alone."""
        unknown = [d for d in degradations if d not in self.degradations]
        if isinstance(degradations, str) or unknown:
            raise ValueError(
                f"PairedImages.select takes a list of its degradations {list(self.degradations)}, "
                f"got {degradations!r}"
            )
        keep = [
            i for i, t in enumerate(self.degradation_ids) if self.degradations[t] in degradations
        ]
        return PairedImages(
            [self.degraded[i] for i in keep],
            [self.clean[i] for i in keep],
            [self.degradation_ids[i] for i in keep],
            [self.names[i] for i in keep],
            self.degradations,
        )

    @property
    def labels(self) -> list[str]:
        """The degradation name of each item (e.g. for ``calibrate_output_strength``)."""
        return [self.degradations[i] for i in self.degradation_ids]


def build_eval_set(
    images: Sequence[torch.Tensor] | Literal["test", "ood"] | None = None,
    degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
    seed: int = 0,
    crop: int | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    names: Sequence[str] | None = None,
    custom: Mapping[str, DegradeFn] | None = None,
) -> PairedImages:
    """Fixed degraded / clean pairs for evaluation: every image under every degradation.

    ``images`` is a list of 3×H×W tensors, or the name of a bundled held-out set: ``"test"``
    (the default: three photos like the training ones, never used by the default training set)
    or ``"ood"`` (eight out-of-domain photos of other kinds, see ``sample_images``). The
    degraded version of image ``i`` under degradation ``t`` is drawn with a generator seeded by
    ``(seed, i, t)``, so the pairs are identical on every call and machine. ``crop`` takes a
    centred ``crop``×``crop`` region first (to keep CPU demos fast; an image smaller than the
    crop is used whole, a side shorter than it is kept whole); ``params`` fixes
    parameters per degradation, e.g. ``{"noise": {"sigma": 25}}``. Items are named
    ``"<image>/<degradation>"``.
    """
    if images is None or isinstance(images, str):
        split = "test" if images is None else images
        if split not in ("test", "ood"):
            raise ValueError(f"images must be 'test', 'ood' or a list of tensors, got {split!r}")
        if names is not None:
            raise ValueError(f"names are given by the bundled {split!r} photos; leave names out")
        images, names = sample_images(split), sample_image_names(split)
    images = list(images)
    names = [f"image{i}" for i in range(len(images))] if names is None else list(names)
    if len(names) != len(images):
        raise ValueError(f"got {len(names)} names for {len(images)} images")
    degradations, functions = _resolve_degradations(degradations, params, custom)
    degraded, clean, degradation_ids, labels = [], [], [], []
    for i, image in enumerate(images):
        batch, _ = as_image_batch(image, f"images[{i}]")
        if crop is not None:
            top = max(0, (batch.shape[-2] - crop) // 2)
            left = max(0, (batch.shape[-1] - crop) // 2)
            batch = batch[..., top : top + crop, left : left + crop]
        for t, (degradation, fn) in enumerate(zip(degradations, functions, strict=True)):
            degraded.append(fn(batch, generator=item_generator(seed, i, t))[0])
            clean.append(batch[0])
            degradation_ids.append(t)
            labels.append(f"{names[i]}/{degradation}")
    return PairedImages(degraded, clean, degradation_ids, labels, degradations)
