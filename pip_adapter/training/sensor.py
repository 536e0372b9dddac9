"""Training a DegradationSensor: cross-entropy on synthetically degraded crops of clean images."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Sized
from functools import partial
from typing import cast

import kornia
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from pip_adapter.conditioning import CLEAN
from pip_adapter.data import (
    SyntheticAllInOne,
    atmospheric_haze,
    build_degradation,
    degrade,
    synthetic_depth,
    synthetic_pages,
)
from pip_adapter.data.degradations.blur import BLUR_PARAMETERS
from pip_adapter.data.degradations.compose import DegradeFn
from pip_adapter.data.degradations.lowlight import LOWLIGHT_PARAMETERS
from pip_adapter.data.degradations.rain import RAIN_PARAMETERS
from pip_adapter.data.synthetic import Images, image_sources
from pip_adapter.sensor import TEMPERATURE_RANGE, DegradationSensor, _TimmClassifier, crop_grid
from pip_adapter.training.schedule import warmup_cosine
from pip_adapter.vocabulary import degradation_index, degradation_name

__all__ = [
    "DEFAULT_SENSOR_CONTEXT",
    "DEFAULT_SENSOR_FAINT",
    "DEFAULT_SENSOR_GREY",
    "DEFAULT_SENSOR_GROUP",
    "DEFAULT_SENSOR_HAZE_FIELD",
    "DEFAULT_SENSOR_PAGES",
    "DEFAULT_SENSOR_SCALES",
    "DEFAULT_SENSOR_SOFT",
    "DEFAULT_SENSOR_STEPS",
    "DEFAULT_SENSOR_TEMPERATURE",
    "FAINT_RANGES",
    "calibrate_sensor",
    "fit_temperature",
    "train_sensor",
]

# benchmarks/sensor_accuracy.py: 1200 steps named 4-5 points more held-out photos than 400
# (the same data and seed)
DEFAULT_SENSOR_STEPS = 1200
# crops from an image source: degraded with this many pixels of real image around them (as a
# crop of a whole degraded photo is), and cut at these zoom factors (benchmarks/sensor_tuning.py,
# on validation photos that are in no split of the bundled ones)
DEFAULT_SENSOR_CONTEXT = 32
DEFAULT_SENSOR_SCALES = (1.0, 0.7, 0.5)
# the share of crops of each degradation in FAINT_RANGES drawn faint (benchmarks/sensor_tuning.py)
DEFAULT_SENSOR_FAINT = 0.25
# haze's depth map spans the region degraded for a crop (1) or a field up to this many times its
# side, of which the crop sees a window (see _HazeField); at most MAX_HAZE_FIELD (memory)
DEFAULT_SENSOR_HAZE_FIELD = 1.0
MAX_HAZE_FIELD = 8.0
# crops per side of a training item: 1, each item one crop; G, each item a patch of G×G crops
# degraded as one, judged as the sensor judges a photo (the mean logits of its crops); at most
# MAX_SENSOR_GROUP (memory: a batch holds G² crops per item)
DEFAULT_SENSOR_GROUP = 1
MAX_SENSOR_GROUP = 4
# the share of clean crops made monochrome, and the synthetic pages added to the photos (see
# train_sensor); at most MAX_SENSOR_PAGES (each is as likely as a photo: more would outweigh them)
DEFAULT_SENSOR_GREY = 0.0
DEFAULT_SENSOR_PAGES = 0
MAX_SENSOR_PAGES = 8
# the share of clean crops softened, and the default range of the Gaussian's standard deviation
# (pixels): well below the faintest motion blur (FAINT_RANGES: streaks of 7 pixels and more); a
# range reaches at most MAX_SOFT_SIGMA (a 3-pixel Gaussian spreads about as far as such a streak,
# but in every direction)
DEFAULT_SENSOR_SOFT = 0.0
SOFT_SIGMA = (0.5, 1.5)
# the share of an image source's training items that are clean (None: as many as of each
# degradation); at most MAX_CLEAN_SHARE (the extra clean items come from as many degraded ones)
MAX_CLEAN_SHARE = 0.5
# an image source's training items per class and epoch
_ITEMS_PER_CLASS = 256
MAX_SOFT_SIGMA = 4.0
# faint draws of the degradations whose mildest draws a sensor takes for "clean": their main
# parameters from the mild end of the default range (the others drawn as by default). Not haze:
# faint haze draws made the sensor take clean photos for hazy ones (sensor_tuning.py)
FaintRanges = Mapping[str, Mapping[str, tuple[float, float]]]
# degradation -> (its default ranges, {parameter: width of the faint draws at the mild end});
# a negative width takes the upper end (low light's brightness scale is mildest at its top)
FAINT_WIDTHS = {
    "rain": (RAIN_PARAMETERS, {"density": 0.001, "intensity": 0.1}),
    "blur": (BLUR_PARAMETERS, {"length": 2.0}),
    "lowlight": (LOWLIGHT_PARAMETERS, {"gamma": 0.2, "scale": -0.1}),
}


def _mild_end(default: tuple[float, float], width: float) -> tuple[float, float]:
    """The ``|width|`` at the lower end (``width > 0``) or the upper end of ``default``."""
    low, high = default
    # rounded: a range written down from a decimal end and width, as 0.4 - 0.1 = 0.3
    return (low, round(low + width, 9)) if width > 0 else (round(high + width, 9), high)


FAINT_RANGES: FaintRanges = {
    degradation: {name: _mild_end(ranges[name][0], width) for name, width in widths.items()}
    for degradation, (ranges, widths) in FAINT_WIDTHS.items()
}
# the temperature train_sensor gives the sensors it trains (see DegradationSensor): the one of
# minimum cross-entropy for two training seeds of the default recipe on the whole scikit-image
# validation photos of benchmarks/sensor_tuning.py (1.16 and 1.31 apart; the page prints the
# fit), as blind mode sees whole images; fewer wrong predictions made sure. With the colour
# validation photos too the fit is 1.15, within 0.002 of its whole-photo cross-entropy at 1.24
# on both seeds and with a larger calibration error on one: kept
DEFAULT_SENSOR_TEMPERATURE = 1.24


class _Recoloured:
    """A degradation applied after random colour changes of the clean crop (channel order, then
    kornia's saturation, gamma and contrast adjustments), so that the sensor judges the
    degradation rather than the colours of the few photos it was trained on; a ``grey`` share
    of the crops loses its colours altogether (saturation 0), as a monochrome camera or scan
    gives them. The changes are drawn from the item's generator, so items stay
    reproducible (with ``grey`` 0, as they were before it)."""

    def __init__(self, degradation: DegradeFn, grey: float = 0.0) -> None:
        self.degradation, self.grey = degradation, grey

    def __call__(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n = clean.shape[0]
        order = torch.stack([torch.randperm(3, generator=generator) for _ in range(n)])
        x = clean.gather(1, order.view(n, 3, 1, 1).expand_as(clean).to(clean.device))
        saturation, gamma, contrast = torch.rand(3, n, generator=generator).to(clean)
        saturation = 0.3 + 1.2 * saturation
        if self.grey > 0:
            monochrome = torch.rand(n, generator=generator).to(clean) < self.grey
            saturation = saturation.masked_fill(monochrome, 0.0)
        x = kornia.enhance.adjust_saturation(x, saturation)
        x = kornia.enhance.adjust_gamma(x, 0.7 + 0.7 * gamma)
        x = kornia.enhance.adjust_contrast_with_mean_subtraction(x, 0.6 + 0.6 * contrast)
        return self.degradation(x, generator=generator)


class _Softened:
    """A degradation applied after a ``share`` of the clean crops is softened by a Gaussian of
    a standard deviation drawn from ``sigma`` (a range, pixels), as a soft lens, a slight
    defocus or a photo shown larger than it was taken leave it: isotropic, unlike motion blur's
    streaks, so that the sensor learns that a soft image is not a blurred one. Draws come
    from the item's generator."""

    def __init__(
        self, degradation: DegradeFn, share: float, sigma: tuple[float, float] = SOFT_SIGMA
    ) -> None:
        self.degradation, self.share, self.sigma = degradation, share, sigma

    def __call__(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n = clean.shape[0]
        low, high = self.sigma
        softened, sigma = torch.rand(2, n, generator=generator).to(clean)
        sigma = (low + (high - low) * sigma).unsqueeze(-1).expand(n, 2)
        # three standard deviations a side, within what a reflected border allows a small crop
        side = min(2 * math.ceil(3 * high) + 1, 2 * min(clean.shape[-2:]) - 1)
        soft = kornia.filters.gaussian_blur2d(clean, (side, side), sigma, border_type="reflect")
        x = torch.where((softened < self.share).view(n, 1, 1, 1), soft, clean)
        return self.degradation(x, generator=generator)


class _HazeField:
    """Haze whose depth map spans a field up to ``field`` times the side of the degraded region
    (drawn from 1 to ``field``), of which the region gets a random window: as a crop of a
    whole hazy photo sees part of one depth map (near ground, sky, the horizon), where a depth
    map drawn for the region alone always holds a whole scene. The field's size and the window
    are drawn once per call, for the whole batch (``train_sensor`` degrades each crop alone, so
    per crop there), each image's depth map its own. Keyword parameters go to
    ``atmospheric_haze``; draws come from the item's generator."""

    def __init__(self, field: float) -> None:
        self.field = field

    def __call__(
        self, clean: torch.Tensor, generator: torch.Generator | None = None, **params: float
    ) -> torch.Tensor:
        n, _, height, width = clean.shape
        zoom = 1 + (self.field - 1) * torch.rand((), generator=generator).item()
        tall, wide = round(height * zoom), round(width * zoom)
        depth = synthetic_depth(n, tall, wide, generator, clean.device)
        top, left = (
            int(torch.randint(extent + 1, (), generator=generator))
            for extent in (tall - height, wide - width)
        )
        window = depth[..., top : top + height, left : left + width]
        return atmospheric_haze(clean, depth=window, generator=generator, **params)


class _Faint:
    """A degradation drawn faint (its main parameters from ``ranges``) for a ``share`` of the
    crops, as by default for the others, so that the sensor sees its mildest forms and does
    not call them clean. ``draw(clean, generator=..., **parameters)`` degrades (``None``:
    ``degrade`` by name), with its own draws of the parameters when given none. Draws come
    from the item's generator."""

    def __init__(
        self,
        degradation: str,
        share: float,
        ranges: Mapping[str, tuple[float, float]],
        draw: DegradeFn | None = None,
    ) -> None:
        self.share, self.ranges = share, dict(ranges)
        self.draw = partial(degrade, degradation=degradation) if draw is None else draw

    def __call__(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if torch.rand((), generator=generator).item() >= self.share:
            return self.draw(clean, generator=generator)
        draws = torch.rand(len(self.ranges), generator=generator).tolist()
        params = {
            name: low + (high - low) * u
            for (name, (low, high)), u in zip(self.ranges.items(), draws, strict=True)
        }
        return self.draw(clean, generator=generator, **params)


class _SensorLabels(Dataset):
    """A restoration dataset as a sensor sees it: each item's id mapped (by name) to the
    sensor's class, and, when the sensor knows ``"clean"`` and the dataset does not, one more
    share of items: the clean images of the dataset's items, labelled ``"clean"``."""

    def __init__(self, data: Dataset, degradations: tuple[str, ...], classes: tuple[str, ...]):
        unknown = [d for d in degradations if d not in classes]
        if unknown:
            raise ValueError(
                f"the dataset's degradations {unknown} are not among the sensor's "
                f"{list(classes)}; it has no class for them"
            )
        self.data, self.classes = data, classes
        self.items = len(cast(Sized, data))
        self.ids = [classes.index(d) for d in degradations]
        self.stride = len(degradations)  # one clean item per this many items
        with_clean = CLEAN in classes and CLEAN not in degradations
        self.extra = self.items // self.stride if with_clean else 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.data, "set_epoch"):
            self.data.set_epoch(epoch)

    def __len__(self) -> int:
        return self.items + self.extra

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if index < self.items:
            degraded, clean, label = self.data[index]
            return degraded, clean, self.ids[label]
        _, clean, _ = self.data[(index - self.items) * self.stride]
        return clean, clean, self.classes.index(CLEAN)


class _ExtraClean(Dataset):
    """An image source's items and ``extra`` more: the clean crops of evenly spread degraded
    items, labelled ``"clean"``, so that more of the items are clean than of each degradation
    (``train_sensor``'s ``clean_share``). A clean crop comes from its item's generator, so each
    epoch draws fresh ones, reproducibly."""

    def __init__(self, data: SyntheticAllInOne, extra: int, clean_id: int) -> None:
        self.data, self.extra, self.clean_id = data, extra, clean_id
        self.items = len(data)
        classes = len(data.degradations)
        self.degraded = [i for i in range(self.items) if i % classes != clean_id]

    def set_epoch(self, epoch: int) -> None:
        self.data.set_epoch(epoch)

    def __len__(self) -> int:
        return self.items + self.extra

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if index < self.items:
            return self.data[index]
        k = index - self.items
        _, clean, _ = self.data[self.degraded[k * len(self.degraded) // self.extra]]
        return clean, clean, self.clean_id


def _extra_clean(classes: tuple[str, ...], items: int, share: float | None) -> int:
    """How many clean items to add to ``items`` balanced over ``classes`` (one of them
    ``"clean"``) for a clean share of ``share`` (``None``: none added); refuses a share out of
    range or a sensor without ``"clean"``."""
    if share is None:
        return 0
    if CLEAN not in classes:
        raise ValueError(
            f"clean_share is the share of {CLEAN!r} items, a class this sensor lacks "
            f"({list(classes)}); leave it out"
        )
    low = 1 / len(classes)
    if (
        isinstance(share, bool)
        or not isinstance(share, int | float)
        or not low <= share <= MAX_CLEAN_SHARE
    ):
        raise ValueError(
            f"clean_share must be a share from 1/{len(classes)} (as many clean items as of each "
            f"degradation) to {MAX_CLEAN_SHARE:g}, got {share!r}"
        )
    return round((share * items - items / len(classes)) / (1 - share))


def _dataset(
    sensor: DegradationSensor,
    data: Dataset | Images,
    seed: int,
    recolour: bool,
    context: int,
    scales: tuple[float, ...],
    faint: float,
    faint_ranges: FaintRanges,
    haze_field: float,
    group: int,
    grey: float = 0.0,
    pages: int = 0,
    soft: float = 0.0,
    soft_sigma: tuple[float, float] = SOFT_SIGMA,
    extra_clean: int = 0,
) -> Dataset:
    if not isinstance(data, Dataset):
        custom: dict[str, DegradeFn] = {}
        for t in sensor.degradations:
            draw = _HazeField(haze_field) if t == "haze" and haze_field > 1 else None
            fn: DegradeFn = build_degradation(t) if draw is None else draw
            if faint > 0 and t in faint_ranges:
                fn = _Faint(t, faint, faint_ranges[t], draw)
            fn = _Recoloured(fn, grey) if recolour else fn
            custom[t] = _Softened(fn, soft, soft_sigma) if soft > 0 else fn
        images = [*image_sources(data), *synthetic_pages(pages, seed=seed)] if pages else data
        photos = SyntheticAllInOne(
            images,
            sensor.degradations,
            patch_size=sensor.crop_size * group,
            samples_per_degradation=_ITEMS_PER_CLASS,
            seed=seed,
            custom=custom,
            context=context,
            scales=scales,
        )
        if extra_clean:
            return _ExtraClean(photos, extra_clean, sensor.degradations.index(CLEAN))
        return photos
    degradations = getattr(data, "degradations", None)
    if degradations is None or tuple(degradations) == sensor.degradations:
        return data
    return _SensorLabels(data, tuple(degradations), sensor.degradations)


def _item_logits(sensor: DegradationSensor, items: torch.Tensor, group: int) -> torch.Tensor:
    """The logits of a batch of training items: of each item as it is (``group`` 1), or the
    mean over the ``group``×``group`` crops of each, as ``DegradationSensor`` judges a photo."""
    if group == 1:
        return sensor.classify(items)
    crops = crop_grid(items, sensor.crop_size, group)
    return sensor.classify(crops.flatten(0, 1)).unflatten(0, crops.shape[:2]).mean(dim=1)


def train_sensor(
    sensor: DegradationSensor,
    data: Dataset | Images = None,
    *,
    steps: int = DEFAULT_SENSOR_STEPS,
    batch_size: int = 16,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    warmup_steps: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
    progress: bool = True,
    recolour: bool = True,
    context: int = DEFAULT_SENSOR_CONTEXT,
    scales: tuple[float, ...] = DEFAULT_SENSOR_SCALES,
    faint: float = DEFAULT_SENSOR_FAINT,
    faint_ranges: FaintRanges | None = None,
    haze_field: float = DEFAULT_SENSOR_HAZE_FIELD,
    group: int = DEFAULT_SENSOR_GROUP,
    grey: float = DEFAULT_SENSOR_GREY,
    pages: int = DEFAULT_SENSOR_PAGES,
    soft: float = DEFAULT_SENSOR_SOFT,
    soft_sigma: tuple[float, float] = SOFT_SIGMA,
    clean_share: float | None = None,
    clean_offset: float = 0.0,
    temperature: float = DEFAULT_SENSOR_TEMPERATURE,
    device: torch.device | str | None = None,
) -> DegradationSensor:
    """Train ``sensor`` to name the degradation of an image; returns it frozen and in eval mode,
    ready to steer a PIPModel (``model.sensor = sensor``) without being trained further by it.

    ``data`` is a source of clean images (``None``: the bundled training photos, a folder, or a
    list of paths / 3×H×W tensors), degraded on the fly with the synthetic degradations named
    by ``sensor.degradations`` (see ``SyntheticAllInOne``, crops of
    ``sensor.crop_size``), or any dataset of ``(degraded, clean, degradation_id)`` items (e.g.
    the one a restoration model was trained on) whose ``degradations`` are among the sensor's,
    matched by name; a sensor that knows ``"clean"`` then also learns it from the items' clean
    images. With an
    image source, ``recolour`` first changes the colours of each clean crop at random (channel
    order, saturation, gamma, contrast): with few training photos, this is what makes the sensor
    judge the degradation rather than recognise the photos, and hold up on photos it never saw;
    ``context`` (pixels of real image the degradation sees around each crop, as in a whole
    degraded photo) and ``scales`` (zoom factors, see ``SyntheticAllInOne``) shape the crops;
    ``faint`` is the share of the crops of each degradation in ``faint_ranges`` (``None``:
    ``FAINT_RANGES``, for rain, blur and low light) drawn with its main parameters in those
    ranges (the mild end of the default ones), so that the sensor does not call a faint one
    clean; ``haze_field`` (from 1, the default, to 8) draws haze's depth map over a field up to
    this many times the side of the region degraded for a crop, of which the crop sees a random
    window, as a crop of a whole hazy photo sees part of one depth map. ``group`` (from 1, the
    default, to 4) trains on photos rather than crops: each item is a patch of ``group``×``group``
    crops of an image source (not a ``Dataset``, whose items are single crops), degraded as
    one, and the loss is that of the mean of their logits, as the sensor judges a whole photo,
    so a crop that shows nothing of the degradation (a flat sky in a blurred photo) need not
    name it; ``batch_size`` counts items, so a batch
    holds ``group``² times as many crops. Content the training photos may lack, seen clean
    and under every degradation alike (so it teaches what is not a degradation, and moves no
    class's prior): ``grey`` (a share, default 0) makes that share of the clean crops
    monochrome before the degradation (with ``recolour``; grey photos, scans); ``soft`` (a
    share, default 0) softens that share with a Gaussian whose standard deviation is drawn from
    ``soft_sigma`` (pixels, default 0.5 to 1.5, at most 4; a soft lens, a slight defocus:
    isotropic, unlike motion blur's streaks of 7 pixels and more), so that a soft photo is not
    taken for a blurred one; ``pages`` (0 to 8, default 0) adds that many
    ``synthetic_pages`` (printed text and line art, drawn from ``seed``) to the image source,
    each as likely as a photo. ``clean_share`` (``None``, the default: as many clean items as
    of each degradation; up to 0.5) makes that share of an image source's items clean, the
    extra ones the clean crops of degraded items, so that the sensor sees more of what it must
    leave alone (at the cost of a lower prior on every degradation). ``clean_offset``
    (default 0) is added to the trained sensor's ``"clean"`` logit, through its classifier's
    bias (so the sensor file and exported graphs carry it): a negative offset calls a photo
    clean only when "clean" wins by that margin, trading clean photos left alone for fewer
    degraded ones let through. ``temperature`` is set
    on the trained sensor, replacing the one it had (the default was fitted for
    ``views="none"``; see ``calibrate_sensor`` to fit one for other views or on labelled images
    of your own).

    AdamW with linear warm-up (default 5% of ``steps``) and cosine decay, a tqdm progress bar
    showing the loss and the running accuracy. Every epoch draws fresh crops and degradations.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    if not 0 <= faint <= 1:
        raise ValueError(f"faint must be a share in [0, 1], got {faint}")
    if (
        isinstance(haze_field, bool)
        or not isinstance(haze_field, int | float)
        or not 1 <= haze_field <= MAX_HAZE_FIELD
    ):
        raise ValueError(
            f"haze_field must be a number from 1 to {MAX_HAZE_FIELD:g}, got {haze_field!r}"
        )
    if isinstance(group, bool) or not isinstance(group, int) or not 1 <= group <= MAX_SENSOR_GROUP:
        raise ValueError(f"group must be an integer from 1 to {MAX_SENSOR_GROUP}, got {group!r}")
    for name, share in (("grey", grey), ("soft", soft)):
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"{name} must be a share in [0, 1], got {share!r}")
    if (
        not isinstance(soft_sigma, tuple | list)
        or len(soft_sigma) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in soft_sigma)
        or not 0 < soft_sigma[0] <= soft_sigma[1] <= MAX_SOFT_SIGMA
    ):
        raise ValueError(
            "soft_sigma must be a range (low, high) of pixels with 0 < low <= high <= "
            f"{MAX_SOFT_SIGMA:g}, got {soft_sigma!r}"
        )
    if soft == 0 and tuple(soft_sigma) != SOFT_SIGMA:
        raise ValueError(
            f"soft_sigma={soft_sigma!r} is the softening of soft's share of the crops, and "
            "soft is 0: give soft a share, or leave soft_sigma out"
        )
    if grey > 0 and not recolour:
        raise ValueError(f"grey={grey} is a colour change of the crops: it needs recolour=True")
    if isinstance(pages, bool) or not isinstance(pages, int) or not 0 <= pages <= MAX_SENSOR_PAGES:
        raise ValueError(f"pages must be an integer from 0 to {MAX_SENSOR_PAGES}, got {pages!r}")
    if (grey > 0 or pages or soft > 0) and isinstance(data, Dataset):
        raise ValueError(
            "grey, pages and soft change the crops of an image source (None, a folder, files "
            "or tensors); a Dataset's items come made: leave them at 0"
        )
    if clean_share is not None and isinstance(data, Dataset):
        raise ValueError(
            "clean_share adds clean crops to an image source (None, a folder, files or "
            "tensors); a Dataset's items come made: leave it out"
        )
    extra_clean = _extra_clean(
        sensor.degradations, len(sensor.degradations) * _ITEMS_PER_CLASS, clean_share
    )
    if group > 1 and isinstance(data, Dataset):
        raise ValueError(
            f"group={group} cuts each item into {group}x{group} crops, which needs photos "
            "(None, a folder, files or tensors); a Dataset's items are single crops: use group=1"
        )
    clean_bias = _clean_bias(sensor, clean_offset)  # checked before training changes anything
    sensor.temperature = temperature  # checked before training, set for the trained sensor
    ranges = FAINT_RANGES if faint_ranges is None else faint_ranges
    dataset = _dataset(
        sensor,
        data,
        seed,
        recolour,
        context,
        tuple(scales),
        faint,
        ranges,
        float(haze_field),
        group,
        float(grey),
        pages,
        float(soft),
        (float(soft_sigma[0]), float(soft_sigma[1])),
        extra_clean,
    )
    size = len(cast(Sized, dataset))
    if size < batch_size:
        raise ValueError(f"the dataset ({size} items) is smaller than one batch")
    if device is None:
        device = next(sensor.parameters()).device
    sensor.to(device).train().requires_grad_(True)
    optimizer = torch.optim.AdamW(sensor.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = max(1, steps // 20) if warmup_steps is None else warmup_steps
    scheduler = warmup_cosine(optimizer, steps, warmup)
    shuffle = torch.Generator().manual_seed(seed)
    step, epoch, correct, seen = 0, 0, 0.0, 0.0
    with tqdm(total=steps, desc="sensor", disable=not progress, dynamic_ncols=True) as bar:
        while step < steps:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                shuffle=True,
                drop_last=True,
                generator=shuffle,
                num_workers=num_workers,
            )
            for degraded, _, ids in loader:
                ids = ids.to(device)
                logits = _item_logits(sensor, degraded.to(device), group)
                loss = F.cross_entropy(logits, ids)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                # exponential moving averages, for the progress bar
                correct = 0.9 * correct + 0.1 * (logits.argmax(-1) == ids).float().mean().item()
                seen = 0.9 * seen + 0.1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / seen:.2f}")
                if step >= steps:
                    break
            epoch += 1
    if clean_bias is not None:
        with torch.no_grad():
            clean_bias[sensor.degradations.index(CLEAN)] += clean_offset
    return sensor.requires_grad_(False).eval()


def _clean_bias(sensor: DegradationSensor, offset: float) -> torch.Tensor | None:
    """The bias of ``sensor``'s classifier that ``train_sensor``'s ``clean_offset`` shifts:
    every crop's clean logit moves by the offset, so a photo's (a mean over crops, views and
    zoomed copies) moves by it too; ``None`` for no offset. Refuses what it cannot shift."""
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
        raise ValueError(f"clean_offset must be a finite number of logits, got {offset!r}")
    if offset == 0:
        return None
    if CLEAN not in sensor.degradations:
        raise ValueError(
            f"clean_offset shifts the {CLEAN!r} logit, which this sensor lacks "
            f"({list(sensor.degradations)}); leave it at 0"
        )
    bias = getattr(cast(_TimmClassifier, sensor.network).get_classifier(), "bias", None)
    if not isinstance(bias, torch.Tensor):
        raise ValueError(
            "clean_offset shifts the bias of the sensor's classifier, and this backbone's has "
            "none; leave it at 0"
        )
    return bias


def fit_temperature(logits: torch.Tensor, truth: torch.Tensor) -> float:
    """The temperature ``t`` that minimises the cross-entropy (negative log-likelihood) of
    ``softmax(logits / t)`` for the true classes ``truth`` (``N×T`` logits, ``N`` ids): one
    number, so the predicted class never changes, only how sure the weights are. Fitted on
    images the sensor was not trained on (over-confident on its own training crops, it would
    come out too low)."""
    if logits.dim() != 2 or truth.shape != logits.shape[:1] or not len(truth):
        raise ValueError(
            f"fit_temperature takes N×T logits and N class ids, got {tuple(logits.shape)} and "
            f"{tuple(truth.shape)}"
        )
    logits, truth = logits.detach().double(), truth.long()
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.clamp(low, high).exp(), truth)
        loss.backward()
        return loss

    optimizer.step(closure)
    return math.exp(log_t.detach().clamp(low, high).item())


@torch.no_grad()
def calibrate_sensor(
    sensor: DegradationSensor,
    images: Sequence[torch.Tensor],
    degradations: Sequence[str | int],
) -> DegradationSensor:
    """Set ``sensor.temperature`` to the one that best fits labelled images it was not trained
    on (``fit_temperature``): ``images`` are 3×H×W or 1×3×H×W tensors of any sizes (whole
    photos, as in use), ``degradations`` the true name (or class id) of each. Saved with the
    sensor; returns it."""
    if len(images) != len(degradations) or not len(images):
        raise ValueError(
            f"calibrate_sensor takes as many images as degradations (at least one), got "
            f"{len(images)} and {len(degradations)}"
        )
    names = sensor.degradations
    ids = [degradation_index(degradation_name(name, names), names) for name in degradations]
    training = sensor.training
    sensor.eval()  # its own statistics, and none of them moved by the calibration images
    try:
        logits = torch.cat([sensor(image.reshape(-1, *image.shape[-3:])) for image in images])
    finally:
        sensor.train(training)
    sensor.temperature = fit_temperature(logits, torch.tensor(ids, device=logits.device))
    return sensor
