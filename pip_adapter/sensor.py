"""DegradationSensor: which degradation does an image have? It steers PIP in blind mode.

Degradations are either local statistics (noise, rain streaks, blur) or global ones (haze, low
light), and downscaling an image would erase the local ones. The sensor therefore classifies a
few fixed crops at native resolution (an evenly spaced grid of up to ``crops_per_side``² crops
of ``crop_size`` pixels) and averages their logits. Any input size works: a side shorter than a
crop is mirrored out to the crop size (which keeps local statistics), so the network always
sees ``crop_size``² inputs, as in training. Each crop can also be judged in a few mirrored
views (test-time augmentation, ``views``), and the image can also be judged zoomed out, beside
the native crops (``scale_weights``: a downscaled copy's crops see more of a global degradation
such as haze; their mean logits join the native ones in a weighted mean). The weights a
PIPModel gets are a softmax of the mean logits divided by a ``temperature`` fitted on labelled
validation images (``pip_adapter.training.calibrate_sensor``), so that a wrong prediction is
more often an unsure one, which steers a mixture rather than a hard label. With
``statistics=True`` the sensor also reads a few physical statistics of each crop (noise level,
sharpness across scales, streak orientation, dark channel, brightness: ``image_statistics``),
which depend less on what a photo shows than features learned from a few training photos do.
With ``sharpness=True`` it reads how steep each crop's steepest edges are for their height
(``edge_sharpness``): a motion blur of 7 pixels or more spreads every edge over that many
pixels, while a soft photo that needs nothing still has a few steep ones, the cue that tells
such a photo from a blurred one (benchmarks/sensor_tuning.py).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from types import MappingProxyType, ModuleType
from typing import Any, Protocol, cast

import timm
import torch
import torch.nn.functional as F
from torch import nn

from pip_adapter._extras import needs_extra
from pip_adapter.conditioning import DEFAULT_DEGRADATIONS, check_degradation_names

__all__ = [
    "DEFAULT_SENSOR_BACKBONE",
    "DEFAULT_SENSOR_SCALE_WEIGHTS",
    "DEFAULT_SENSOR_VIEWS",
    "SENSOR_SHARPNESS",
    "SENSOR_STATISTICS",
    "SENSOR_VIEWS",
    "DegradationSensor",
    "crop_grid",
    "crop_views",
    "edge_sharpness",
    "image_statistics",
    "zoom",
]

DEFAULT_SENSOR_BACKBONE = "resnet10t"
SUGGESTED_BACKBONES = ("resnet10t", "regnetx_002", "mobilenetv3_small_100", "resnet18")
# bounds that keep a sensor config (also one read from an untrusted file) from asking for
# absurd work: every image is mirrored out to crop_size and cut into crops_per_side² crops
MAX_CROP_SIZE = 1024
# image_statistics pools a crop by 4: smaller crops have nothing left to measure
MIN_STATISTICS_CROP = 4
MAX_CROPS_PER_SIDE = 16
# the temperatures a sensor accepts (also from a file): softmax(logits / temperature)
TEMPERATURE_RANGE = (0.01, 100.0)
# test-time views of a crop whose logits the sensor averages, as (quarter turns, mirrored left
# to right); no quarter turn on its own, which would lay rain streaks (drawn within 25° of
# vertical, as real rain falls) on their side
SENSOR_VIEWS: dict[str, tuple[tuple[int, bool], ...]] = {
    "none": ((0, False),),
    "hflip": ((0, False), (0, True)),
    "flips": ((0, False), (0, True), (2, False), (2, True)),  # with upside down, both ways
}
DEFAULT_SENSOR_VIEWS = "none"
# the zoom factors a photo is judged at, each with its weight in the mean of their logits: the
# photo as it is (1.0) by default; at most MAX_SCALES of them, each from MIN_SCALE to 1
DEFAULT_SENSOR_SCALE_WEIGHTS: Mapping[float, float] = MappingProxyType({1.0: 1.0})
MAX_SCALES = 4
MIN_SCALE = 1 / 16
# what image_statistics measures of a crop, in the order of its columns
SENSOR_STATISTICS = (
    "noise level",  # Immerkaer's estimate: what survives a filter that cancels smooth content
    "gradient, 1x",  # mean gradient magnitude at full resolution, and of the 2x / 4x pooled
    "gradient, 2x",  # image: blur removes the fine scale first
    "gradient, 4x",
    "across / along columns",  # gradient energy across vs along columns: vertical streaks
    "bright / dark detail",  # energy of detail above vs below its surroundings: rain adds light
    "dark channel",  # mean of the local minimum over channels and a 7x7 window: haze lifts it
    "contrast",  # standard deviation of the luminance
    "saturation",
    "brightness",  # mean luminance, and the share of dark pixels: low light
    "dark share",
    "highlight",  # the brightest luminance: a dim photo has none
)
# what edge_sharpness measures of a crop, in the order of its columns: percentiles of the
# gradient magnitude over the range of the SHARPNESS_WINDOW² window around each pixel (an edge
# spread over n pixels rises by about 1/n of its height per pixel)
SENSOR_SHARPNESS = ("edge slope, 90th percentile", "edge slope, 99th percentile", "steepest edge")
SHARPNESS_WINDOW = 9  # wider than the spread of the faintest default motion blur (7 pixels)
# added to the window's range: a flat window's noise is not a steep edge
_SHARPNESS_FLOOR = 0.02
_EPS = 1e-4  # keeps the logarithms of flat crops finite
# Immerkaer (1996): the difference of two Laplacians, blind to content up to second order
_NOISE_KERNEL = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def _check_backbone_name(name: str) -> None:
    if not isinstance(name, str) or not timm.is_model(name):
        close = difflib.get_close_matches(str(name), timm.list_models(), n=5, cutoff=0.6)
        hint = f"did you mean {close}? " if close else ""
        raise ValueError(
            f"unknown timm backbone {name!r}; {hint}small ones that work well: "
            f"{list(SUGGESTED_BACKBONES)} (timm.list_models() lists them all)"
        )


def _crop_offsets(length: int, crop: int, count: int) -> list[int]:
    """``count`` evenly spaced crop offsets along an axis: first at 0 and last flush with the end,
    or centred for a single crop."""
    if count == 1:
        return [(length - crop) // 2]
    return [round(i * (length - crop) / (count - 1)) for i in range(count)]


def _mirror_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Extend the bottom / right of ``x`` by mirroring until both sides are at least ``size``."""
    if x.shape[-2] == 1 or x.shape[-1] == 1:  # a single row or column: nothing to mirror
        x = F.pad(x, (0, int(x.shape[-1] == 1), 0, int(x.shape[-2] == 1)), mode="replicate")
    while x.shape[-2] < size or x.shape[-1] < size:
        pad_h, pad_w = (max(0, min(size - n, n - 1)) for n in x.shape[-2:])
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return x


def crop_grid(x: torch.Tensor, crop_size: int, crops_per_side: int) -> torch.Tensor:
    """Fixed native-resolution crops of ``x`` (B×C×H×W): B×n×C×s×s, ``s = crop_size``.

    Along each axis, as many crops as needed to cover it (at most ``crops_per_side``), evenly
    spaced; a side shorter than ``s`` is first mirrored out to ``s``.
    """
    x = _mirror_to(x, crop_size)
    height, width = x.shape[-2:]
    rows = _crop_offsets(height, crop_size, min(crops_per_side, -(-height // crop_size)))
    cols = _crop_offsets(width, crop_size, min(crops_per_side, -(-width // crop_size)))
    crops = [x[:, :, t : t + crop_size, c : c + crop_size] for t in rows for c in cols]
    return torch.stack(crops, dim=1)


def zoom(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` (B×C×H×W in [0, 1]) downscaled by ``scale`` (each side rounded, at least 1 pixel),
    antialiased bilinear as the zoomed training crops of ``SyntheticAllInOne``; ``x`` itself at
    scale 1."""
    if scale == 1:
        return x
    size = [max(1, round(side * scale)) for side in x.shape[-2:]]
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(
        0, 1
    )


def _check_scale_weights(weights: Mapping[float, float]) -> dict[float, float]:
    """``weights`` as a ``{scale: weight}`` dict of floats, or a ValueError naming the rule."""
    rule = (
        f"scale_weights must map 1 to {MAX_SCALES} zoom factors from {MIN_SCALE:g} to 1 to "
        f"positive weights, e.g. {{1.0: 1.0, 0.5: 0.5}}, got {weights!r}"
    )

    def number(value: Any) -> bool:
        return (
            not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
        )

    if not isinstance(weights, Mapping) or not 1 <= len(weights) <= MAX_SCALES:
        raise ValueError(rule)
    for scale, weight in weights.items():
        if not (number(scale) and MIN_SCALE <= scale <= 1 and number(weight) and weight > 0):
            raise ValueError(rule)
    return {float(scale): float(weight) for scale, weight in weights.items()}


def crop_views(crops: torch.Tensor, views: str) -> torch.Tensor:
    """The test-time views named ``views`` (see ``SENSOR_VIEWS``) of square crops
    ``N×C×s×s``: ``V×N×C×s×s``, the crops as they are first."""
    return torch.stack(
        [
            torch.rot90(crops.flip(-1) if mirrored else crops, turns, dims=(-2, -1))
            for turns, mirrored in SENSOR_VIEWS[views]
        ]
    )


def _log_mean(x: torch.Tensor) -> torch.Tensor:
    """``log(mean + eps)`` over all but the batch axis."""
    return (x.flatten(1).mean(dim=1) + _EPS).log()


def _kornia(option: str = "statistics") -> ModuleType:
    """kornia, which the statistics are computed with: it comes with the ``train`` extra, so it
    is imported when statistics are asked for and the core install loads the sensor without it."""
    with needs_extra("train", f"DegradationSensor({option}=True)"):
        import kornia
    return kornia


def image_statistics(crops: torch.Tensor) -> torch.Tensor:
    """Physical statistics of each crop (``N×3×h×w`` in [0, 1]): ``N×len(SENSOR_STATISTICS)``,
    mostly logarithms, so that scaling an image's content moves them by a shift. Each is a
    mean over the crop, differentiable and traceable (the sensor is exported with them)."""
    kornia = _kornia()
    grey = kornia.color.rgb_to_grayscale(crops)
    kernel = _NOISE_KERNEL.to(grey)[None]
    residual = kornia.filters.filter2d(grey, kernel, border_type="reflect").abs()
    noise = _log_mean(residual * (math.sqrt(math.pi / 2) / 6))
    scales = [
        _log_mean(kornia.filters.sobel(F.avg_pool2d(grey, k) if k > 1 else grey)) for k in (1, 2, 4)
    ]
    gradient = kornia.filters.spatial_gradient(grey, mode="diff")[:, 0]  # N×2×h×w: d/dx, d/dy
    across = _log_mean(gradient[:, 0].square()) - _log_mean(gradient[:, 1].square())
    detail = grey - kornia.filters.box_blur(grey, (5, 5), border_type="reflect")
    bright = _log_mean(detail.clamp(min=0).square()) - _log_mean(detail.clamp(max=0).square())
    lowest = crops.amin(dim=1, keepdim=True)
    dark_channel = -F.max_pool2d(-lowest, 7, stride=1, padding=3)
    flat = grey.flatten(1)
    highest = crops.amax(dim=1)
    saturation = ((highest - lowest[:, 0]) / (highest + _EPS)).flatten(1).mean(dim=1)
    return torch.stack(
        [
            noise,
            *scales,
            across,
            bright,
            _log_mean(dark_channel),
            (flat.std(dim=1) + _EPS).log(),
            saturation,
            _log_mean(grey),
            torch.sigmoid((0.1 - flat) * 50).mean(dim=1),
            (flat.amax(dim=1) + _EPS).log(),
        ],
        dim=1,
    )


def _window_max(x: torch.Tensor) -> torch.Tensor:
    """The maximum of the ``SHARPNESS_WINDOW``² window around each pixel of ``x`` (N×1×h×w):
    the same numbers as a square max pooling (a replicated border pixel is one the window
    already holds), as elementwise maxima of shifted copies along the columns, then the rows,
    a fraction of the pooling's time on a CPU."""
    pad, (height, width) = SHARPNESS_WINDOW // 2, x.shape[-2:]
    x = F.pad(x, (0, 0, pad, pad), mode="replicate")
    x = reduce(torch.maximum, (x[..., i : i + height, :] for i in range(SHARPNESS_WINDOW)))
    x = F.pad(x, (pad, pad, 0, 0), mode="replicate")
    return reduce(torch.maximum, (x[..., i : i + width] for i in range(SHARPNESS_WINDOW)))


def edge_sharpness(crops: torch.Tensor) -> torch.Tensor:
    """How steep the steepest edges of each crop (``N×3×h×w`` in [0, 1]) are for their height:
    ``N×len(SENSOR_SHARPNESS)``, logarithms of percentiles of the gradient magnitude over the
    range of the window around each pixel. Blur lowers them all (every edge spread over its
    length); content only as far as it lacks steep edges altogether. Differentiable and
    traceable, as ``image_statistics``."""
    kornia = _kornia("sharpness")
    grey = kornia.color.rgb_to_grayscale(crops)
    slope = kornia.filters.spatial_gradient(grey, mode="diff")[:, 0].square().sum(dim=1).sqrt()
    ratio = (slope / (_window_max(grey) + _window_max(-grey) + _SHARPNESS_FLOOR)[:, 0]).flatten(1)
    pixels = ratio.shape[1]
    steepest = ratio.topk(max(1, pixels // 10), dim=1).values  # sorted, steepest first
    columns = [steepest[:, -1], steepest[:, max(1, pixels // 100) - 1], steepest[:, 0]]
    return (torch.stack(columns, dim=1) + _EPS).log()


class _StatisticsHead(nn.Module):
    """Logits from measurements of each crop (``image_statistics`` or ``edge_sharpness``,
    ``columns`` of them): normalised (batch norm: their scales differ), then a small
    perceptron; added to the learned network's logits."""

    def __init__(
        self,
        classes: int,
        measure: Callable[[torch.Tensor], torch.Tensor] = image_statistics,
        columns: int = len(SENSOR_STATISTICS),
        hidden: int = 64,
    ) -> None:
        super().__init__()
        self.measure = measure
        self.norm = nn.BatchNorm1d(columns)
        self.hidden = nn.Linear(columns, hidden)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        features = self.measure(crops.float())
        if self.training and features.shape[0] == 1:  # no batch statistics of one crop
            norm = self.norm
            features = F.batch_norm(
                features, norm.running_mean, norm.running_var, norm.weight, norm.bias, False
            )
        else:
            features = self.norm(features)
        return self.classifier(F.gelu(self.hidden(features))).to(crops.dtype)


def _grow_classes(old: nn.Module, new: nn.Module, count: int) -> None:
    """Copy ``old``'s rows (one per class, ``count`` of them) into ``new`` and start every
    further row at their mean, so a new class's logit is the mean of the old logits."""
    with torch.no_grad():
        for key, value in old.state_dict().items():
            grown = new.state_dict()[key]
            grown[:count] = value
            grown[count:] = value.mean(dim=0, keepdim=True)
    new.requires_grad_(next(old.parameters()).requires_grad)


class _TimmClassifier(Protocol):
    """What the sensor uses of a timm classification model besides calling it."""

    pretrained_cfg: dict[str, Any]

    def get_classifier(self) -> nn.Module: ...

    def reset_classifier(self, num_classes: int) -> None: ...


class DegradationSensor(nn.Module):
    """Classifies the degradation of images: ``sensor(x)`` gives logits ``B×T``.

    Args:
        degradations: names, in the order of the logits (and of a PIPModel's prompts);
            ``"clean"`` among them is a class like the others, for images that need nothing.
        backbone: a timm model name; built with ``pretrained=False`` (no download).
        crop_size: side of the native-resolution crops that are classified.
        crops_per_side: at most this many crops along each axis (so at most its square).
        views: test-time views of each crop whose logits are averaged, a name from
            ``SENSOR_VIEWS`` (``"none"``, ``"hflip"``, ``"flips"``); each view costs one more
            pass of the network.
        scale_weights: the zoom factors the image is judged at (``zoom``), each with its
            weight: the logits are the weighted mean over them of the mean logits of the
            zoomed image's crops. ``None``: ``DEFAULT_SENSOR_SCALE_WEIGHTS``, ``{1.0: 1.0}``,
            the image as it is; with ``{1.0: 1.0, 0.5: 0.5}`` a half-scale copy's crops, each
            seeing four times the area of a native one, also count, half as much (the sensor
            is trained on crops zoomed out down to 0.5, see ``train_sensor``'s ``scales``).
            A zoomed copy costs the passes of its own crops; a blind ONNX or
            ``torch.export`` graph holds the native scale only (export refuses others).
        temperature: the logits are divided by it before the softmax of ``predict_weights``
            (above 1: softer weights); ``train_sensor`` sets the default, ``calibrate_sensor``
            fits one on labelled images.
        statistics: also classify each crop by its ``image_statistics`` (a small perceptron
            whose logits are added to the network's), trained with it by ``train_sensor``.
        sharpness: also classify each crop by its ``edge_sharpness`` (the same way): a cue
            that tells a soft photo that needs nothing from a blurred one.

    ``predict_weights(x)`` gives soft weights (``B×T``, rows sum to 1) that a PIPModel uses when
    called without ``degradation=``. Train it with ``pip_adapter.training.train_sensor``.
    Inputs are float RGB images in [0, 1], ``B×3×H×W``, of any size. ``views``,
    ``scale_weights`` and ``temperature`` are settable and saved with the sensor; a sensor file
    without them loads with ``DEFAULT_SENSOR_VIEWS``, ``{1.0: 1.0}`` and temperature 1 (what it
    was judged with then), and without statistics or sharpness.
    """

    mean: torch.Tensor  # the classifier's input normalisation (buffers)
    std: torch.Tensor

    def __init__(
        self,
        degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
        backbone: str = DEFAULT_SENSOR_BACKBONE,
        crop_size: int = 128,
        crops_per_side: int = 3,
        views: str = DEFAULT_SENSOR_VIEWS,
        temperature: float = 1.0,
        statistics: bool = False,
        scale_weights: Mapping[float, float] | None = None,
        sharpness: bool = False,
    ) -> None:
        super().__init__()
        names = check_degradation_names(degradations)
        for key, value, most in (
            ("crop_size", crop_size, MAX_CROP_SIZE),
            ("crops_per_side", crops_per_side, MAX_CROPS_PER_SIDE),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"{key} must be an integer from 1 to {most}, got {value!r}")
        _check_backbone_name(backbone)
        for key, value in (("statistics", statistics), ("sharpness", sharpness)):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be True or False, got {value!r}")
            if value:
                _kornia(key)  # a missing extra is named before anything is built
        if statistics and crop_size < MIN_STATISTICS_CROP:
            raise ValueError(
                f"statistics need a crop_size of at least {MIN_STATISTICS_CROP} (they pool the "
                f"crop by 4), got {crop_size}"
            )
        self.degradations = names
        self.backbone_name = backbone
        self.crop_size = crop_size
        self.crops_per_side = crops_per_side
        self.views = views
        self.temperature = temperature
        self.scale_weights = (
            DEFAULT_SENSOR_SCALE_WEIGHTS if scale_weights is None else scale_weights
        )
        self.network = timm.create_model(backbone, pretrained=False, num_classes=len(names))
        cfg = cast(_TimmClassifier, self.network).pretrained_cfg
        mean = torch.tensor(cfg.get("mean", (0.5, 0.5, 0.5)), dtype=torch.float32)
        std = torch.tensor(cfg.get("std", (0.5, 0.5, 0.5)), dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.statistics = _StatisticsHead(len(names)) if statistics else None
        self.sharpness = (
            _StatisticsHead(len(names), edge_sharpness, len(SENSOR_SHARPNESS))
            if sharpness
            else None
        )

    @property
    def views(self) -> str:
        """The test-time views averaged per crop (a name from ``SENSOR_VIEWS``)."""
        return self._views

    @views.setter
    def views(self, name: str) -> None:
        if not isinstance(name, str) or name not in SENSOR_VIEWS:
            raise ValueError(f"views must be one of {list(SENSOR_VIEWS)}, got {name!r}")
        self._views = name

    @property
    def scale_weights(self) -> dict[float, float]:
        """The zoom factors the image is judged at and their weights (a copy)."""
        return dict(self._scale_weights)

    @scale_weights.setter
    def scale_weights(self, weights: Mapping[float, float]) -> None:
        self._scale_weights = _check_scale_weights(weights)

    @property
    def temperature(self) -> float:
        """What the logits are divided by before ``predict_weights``' softmax."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        low, high = TEMPERATURE_RANGE
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise ValueError(f"temperature must be a number from {low} to {high}, got {value!r}")
        self._temperature = float(value)

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this sensor (saved as ``sensor_config.json``)."""
        return {
            "degradations": list(self.degradations),
            "backbone": self.backbone_name,
            "crop_size": self.crop_size,
            "crops_per_side": self.crops_per_side,
            "views": self.views,
            "temperature": self.temperature,
            "statistics": self.statistics is not None,
            # [scale, weight] pairs: JSON keys would be strings
            "scale_weights": [list(pair) for pair in self._scale_weights.items()],
            "sharpness": self.sharpness is not None,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DegradationSensor:
        """A freshly initialised sensor from ``config``'s output (one written before ``views``
        and ``temperature`` existed gets the default views and temperature 1, one written
        before ``statistics`` or ``sharpness`` existed neither, and one written before
        ``scale_weights`` existed the native scale alone)."""
        pairs = config.get("scale_weights", [[1.0, 1.0]])
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], int | float) for p in pairs
        ):
            raise ValueError(
                f"scale_weights must be a list of [scale, weight] pairs, got {pairs!r}"
            )
        scale_weights = dict(map(tuple, pairs))
        if len(scale_weights) != len(pairs):
            twice = sorted({p[0] for p in pairs if [q[0] for q in pairs].count(p[0]) > 1})
            raise ValueError(
                f"scale_weights names the scale {twice[0]!r} twice; give each scale once, as "
                f"[[scale, weight], ...], got {pairs!r}"
            )
        return cls(
            config["degradations"],
            config["backbone"],
            config["crop_size"],
            config["crops_per_side"],
            config.get("views", "none"),  # what it was judged with before views existed
            config.get("temperature", 1.0),
            config.get("statistics", False),
            scale_weights,
            config.get("sharpness", False),
        )

    def add_degradations(self, names: Sequence[str]) -> DegradationSensor:
        """Add output classes for new degradations, keeping the old classes' weights.

        Each new class's weights start at the mean of the old ones, so its logit is the mean of
        the old logits: never above the largest, so the old predictions keep their ranking
        until training (``train_sensor`` on all the degradations) teaches the new classes.
        """
        names = tuple(names)
        vocabulary = check_degradation_names((*self.degradations, *names))
        network = cast(_TimmClassifier, self.network)
        old = network.get_classifier()
        if not isinstance(old, nn.Module) or not old.state_dict():
            raise TypeError(f"cannot grow the classifier of {self.backbone_name}: {old!r}")
        reference = next(iter(old.state_dict().values()))
        network.reset_classifier(len(vocabulary))
        _grow_classes(old, network.get_classifier().to(reference), len(self.degradations))
        for head in self._heads():
            old = head.classifier
            head.classifier = nn.Linear(old.in_features, len(vocabulary)).to(old.weight)
            _grow_classes(old, head.classifier, len(self.degradations))
        self.degradations = vocabulary
        return self

    def classify(self, crops: torch.Tensor) -> torch.Tensor:
        """Logits of each crop as it is (no cropping): ``N×3×h×w`` -> ``N×T``; for training."""
        logits = self.network((crops - self.mean.to(crops.dtype)) / self.std.to(crops.dtype))
        for head in self._heads():
            logits = logits + head(crops)
        return logits

    def _heads(self) -> list[_StatisticsHead]:
        """The heads whose logits add to the network's: statistics, sharpness (those built)."""
        return [head for head in (self.statistics, self.sharpness) if head is not None]

    def classify_views(self, crops: torch.Tensor) -> torch.Tensor:
        """Logits of each square crop, the mean over its test-time ``views``: ``N×3×s×s`` ->
        ``N×T``."""
        views = crop_views(crops, self.views)
        return self.classify(views.flatten(0, 1)).unflatten(0, views.shape[:2]).mean(dim=0)

    def weights_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Soft weights (float32, rows sum to 1) from this sensor's logits: their softmax at
        ``temperature``."""
        return (logits.float() / self.temperature).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``B×T``: the mean over each image's fixed crops (and their views), at each
        zoom factor of ``scale_weights``, and the weighted mean over those."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"the sensor takes B×3×H×W image tensors, got {shape}")
        if x.shape[1] != 3:
            raise ValueError(f"the sensor takes RGB images (3 channels), got {x.shape[1]}")
        if not x.is_floating_point():
            raise ValueError(f"the sensor takes float images in [0, 1], got dtype {x.dtype}")
        if min(x.shape[-2:]) < 1:
            raise ValueError(
                f"the sensor needs images of at least 1×1 pixels, got {tuple(x.shape)}"
            )
        if len(self._scale_weights) == 1:
            return self._grid_logits(zoom(x, next(iter(self._scale_weights))))
        total = sum(self._scale_weights.values())
        logits = [  # summed in float32, as weights_from_logits reads them, even under autocast
            weight / total * self._grid_logits(zoom(x, scale)).float()
            for scale, weight in self._scale_weights.items()
        ]
        return torch.stack(logits).sum(dim=0)

    def _grid_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The mean logits of each image's crops (``crop_grid``) and their views: ``B×T``."""
        crops = crop_grid(x, self.crop_size, self.crops_per_side)
        logits = self.classify_views(crops.flatten(0, 1))
        return logits.unflatten(0, crops.shape[:2]).mean(dim=1)

    def predict_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Soft degradation weights ``B×T`` (float32, rows sum to 1) for a PIPModel."""
        return self.weights_from_logits(self(x))

    def predict(self, x: torch.Tensor) -> list[str]:
        """The most likely degradation name of each image."""
        return [self.degradations[i] for i in self(x).argmax(dim=-1).tolist()]

    def extra_repr(self) -> str:
        return (
            f"degradations={self.degradations}, backbone={self.backbone_name!r}, "
            f"crop_size={self.crop_size}, crops_per_side={self.crops_per_side}, "
            f"views={self.views!r}, temperature={self.temperature:g}, "
            f"statistics={self.statistics is not None}, sharpness={self.sharpness is not None}, "
            f"scale_weights={self._scale_weights}"
        )
