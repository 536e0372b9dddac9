"""Degradation sensor: training recipes compared on validation photos (choosing the defaults).

Each recipe trains a DegradationSensor (five degradations and "clean") with ``train_sensor`` on
the six bundled training photos (one recipe adds the training photos of benchmarks/wallpapers),
then names the degradation of validation photos: nine photographs that ship with scikit-image
(a motorcycle, a photographer, coins, the moon, a page, cells, brick, grass and gravel
textures, most of them grey) that are in no split of the bundled photos, and eight colour
photos of other kinds (the validation split of benchmarks/wallpapers), whole and as random
256² and 128² crops. The held-out sets (``sample_images("test")``
and ``"ood"``) play no part here: they measure the chosen recipe in
``benchmarks/sensor_accuracy.py`` and ``benchmarks/quality.py``.

Run:  python benchmarks/sensor_tuning.py [--variants NAME,...] [--threads 1]
Each recipe's sensor is kept in ``runs/sensor_tuning/<name>/seed<seed>/`` and reused while its
settings are unchanged; ``--seed`` trains another one. Writes docs/benchmarks/sensor_tuning.md
with every recipe and seed measured so far, and its numbers to sensor_tuning.json beside it,
from which ``--variants ''`` renders the page again without training or measuring any
sensor (the table of the ``sharpness`` recipe's cue on the validation photos is kept there too,
and measured again, a minute or two, when the library's code or those photos changed).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import skimage
import skimage.data
import torch
import torch.nn.functional as F
from digests import code_digest
from machine import comparison_parser, cpu_name, describe_machine, parse_comparison
from safetensors import safe_open
from safetensors.torch import load_file
from sensor_accuracy import (
    DEGRADATIONS,
    accuracy,
    calibration_error,
    confusion,
    confusion_table,
    labelled_images,
)
from sensor_recipe import (
    BUNDLED,
    DEFAULT_TRAINING,
    SENSOR_PHOTOS,
    describe_sensor_recipe,
    describe_views,
    recipe_key,
    sensor_photos,
)
from wallpaper_photos import WALLPAPERS, wallpaper_names, wallpaper_photos, wallpapers_digest

import pip_adapter as pa
from pip_adapter.conditioning import SURE_AT
from pip_adapter.files import write_json, write_safetensors, write_text
from pip_adapter.sensor import (
    DEFAULT_SENSOR_VIEWS,
    SENSOR_SHARPNESS,
    SENSOR_VIEWS,
    SHARPNESS_WINDOW,
    crop_grid,
    crop_views,
    edge_sharpness,
    zoom,
)
from pip_adapter.training import fit_temperature, train_sensor
from pip_adapter.training.sensor import (
    DEFAULT_SENSOR_STEPS,
    DEFAULT_SENSOR_TEMPERATURE,
    FAINT_RANGES,
)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "sensor_tuning"
# faint draws below the default ranges (up to their mild end)
BELOW = {
    "rain": {"density": (0.001, 0.002), "intensity": (0.3, 0.5)},
    "haze": {"beta": (0.02, 0.04)},
    "blur": {"length": (5.0, 7.0)},
    "lowlight": {"gamma": (1.2, 1.5), "scale": (0.4, 0.6)},
}
# faint draws from the mild end of the default ranges: train_sensor's, and haze's
MILD_END = {**FAINT_RANGES, "haze": {"beta": (0.04, 0.07)}}
# the context and zoom of every recipe after "before" (session 4's, kept as it was tried)
CONTEXT_ZOOM = {"context": 32, "scales": (1.0, 0.7, 0.5)}
# name -> (what it changes, train_sensor's settings); "before" is the recipe of main before the
# context and zoom defaults
VARIANTS: dict[str, tuple[str, dict]] = {
    "before": ("crops degraded alone, native scale", {"context": 0, "scales": (1.0,), "faint": 0}),
    "context_scales": (
        "32 px of context, zoom 1 / 0.7 / 0.5",
        {**CONTEXT_ZOOM, "faint": 0},
    ),
    "context_scales_1800": (
        "the same, 1800 steps",
        {**CONTEXT_ZOOM, "faint": 0, "steps": 1800},
    ),
    "faint": (
        "context and zoom, a quarter of rain / haze / blur / low-light crops fainter than the "
        "default range (below its mild end)",
        {**CONTEXT_ZOOM, "faint": 0.25, "faint_ranges": BELOW},
    ),
    "mild_end": (
        "context and zoom, a quarter of those crops from the mild end of the default range",
        {**CONTEXT_ZOOM, "faint": 0.25, "faint_ranges": MILD_END},
    ),
    "mild_end_no_haze": (
        "the same for rain / blur / low light only (haze as by default): the defaults",
        DEFAULT_TRAINING,
    ),
    "mild_end_clean": (
        "as `mild_end` (a quarter of the haze crops too from the mild end of its range, beta "
        "0.04 to 0.07), and 2 of every 7 items clean rather than 1 of 6, the extra ones drawn "
        "as the clean class draws its own (`train_sensor(faint_ranges=..., clean_share=2/7)`)",
        {**DEFAULT_TRAINING, "faint_ranges": MILD_END, "clean_share": 2 / 7},
    ),
    "statistics": (
        "the defaults, and the sensor also reads physical statistics of each crop "
        "(`DegradationSensor(statistics=True)`)",
        {**DEFAULT_TRAINING, "statistics": True},
    ),
    "wallpapers": (
        f"the defaults, trained on {SENSOR_PHOTOS['bundled+wallpapers']} (landscapes, "
        "close-ups, objects, indoors, dusk: more kinds of photos)",
        {**DEFAULT_TRAINING, "photos": "bundled+wallpapers"},
    ),
    "haze_field": (
        "the defaults, and haze's depth map drawn over a field up to 3 times the side of the "
        "region degraded for a crop, of which the crop sees a random window, as a crop of a "
        "whole hazy photo sees part of one depth map (`train_sensor(haze_field=3)`)",
        {**DEFAULT_TRAINING, "haze_field": 3.0},
    ),
    "groups": (
        "the defaults, trained on photos rather than crops: each item a 256² patch degraded as "
        "one, whose loss is that of the mean logits of its 2×2 crops, as the sensor judges a "
        "photo; 4 items a batch (16 crops, as by default) (`train_sensor(group=2, batch_size=4)`)",
        {**DEFAULT_TRAINING, "group": 2, "batch_size": 4},
    ),
    "content": (
        "the defaults, and content the bundled photos never show, in every class: a quarter of "
        "the crops monochrome (grey photos, scans), a quarter softened by a Gaussian of 0.5 to "
        "1.5 px (a soft lens, defocus) and a synthetic page of text and line art beside the "
        "six photos (`train_sensor(grey=0.25, soft=0.25, pages=1)`)",
        {**DEFAULT_TRAINING, "grey": 0.25, "soft": 0.25, "pages": 1},
    ),
    "content_soft3": (
        "as `content`, with a tenth of the crops monochrome rather than a quarter (grey clean "
        "crops made hazy grey textures pass for clean) and the softening Gaussian drawn from "
        "0.5 to 3 px, as soft as the soft validation photos (`train_sensor(grey=0.1, soft=0.25, "
        "soft_sigma=(0.5, 3.0), pages=1)`)",
        {**DEFAULT_TRAINING, "grey": 0.1, "soft": 0.25, "soft_sigma": (0.5, 3.0), "pages": 1},
    ),
    "content_offset": (
        "as `content`, with the clean logit lowered by 0.5 after training, so that a photo is "
        "called clean only when clean wins by that margin (`train_sensor(grey=0.25, soft=0.25, "
        "pages=1, clean_offset=-0.5)`)",
        {**DEFAULT_TRAINING, "grey": 0.25, "soft": 0.25, "pages": 1, "clean_offset": -0.5},
    ),
    "regnetx_002": (
        "the defaults, with timm's `regnetx_002` as the sensor's network (2.3M parameters "
        "against resnet10t's 4.9M) (`DegradationSensor(backbone=...)`)",
        {**DEFAULT_TRAINING, "backbone": "regnetx_002"},
    ),
    "mobilenetv3_small_100": (
        "the defaults, with timm's `mobilenetv3_small_100` as the sensor's network (1.5M "
        "parameters)",
        {**DEFAULT_TRAINING, "backbone": "mobilenetv3_small_100"},
    ),
    "sharpness": (
        "the defaults, and the sensor also reads how steep each crop's steepest edges are for "
        "their height (percentiles of the gradient over the local 9×9 range): a blur spreads "
        "every edge, a soft photo keeps a few steep ones (`DegradationSensor(sharpness=True)`)",
        {**DEFAULT_TRAINING, "sharpness": True},
    ),
    "soft": (
        "the defaults, and a quarter of every class's crops softened by a Gaussian of 0.5 to 3 "
        "px before the degradation, so that a soft photo under haze is learnt as hazy, not "
        "blurred (`train_sensor(soft=0.25, soft_sigma=(0.5, 3.0))`)",
        {**DEFAULT_TRAINING, "soft": 0.25, "soft_sigma": (0.5, 3.0)},
    ),
}
# the settings of a recipe that build the sensor rather than train it
SENSOR_OPTIONS = ("statistics", "backbone", "sharpness")
DEFAULT_RECIPE = "mild_end_no_haze"  # train_sensor's defaults
# skimage.data loaders of the validation photos (grey ones are used as grey RGB), and the
# colour validation photos of benchmarks/wallpapers
VALIDATION = ("camera", "brick", "grass", "gravel", "coins", "moon", "page", "cell")
COLOUR_VALIDATION = tuple(wallpaper_names("validation"))
VALIDATION_NAMES = ("stereo_motorcycle", *VALIDATION, *COLOUR_VALIDATION)
# views of each validation photo: (label, crop side or None for the whole photo)
VIEWS = (("whole", None), ("256", 256), ("128", 128))
ALL_PHOTOS = tuple(label for label, _ in VIEWS)
DRAWS = 12  # degradation draws per photo, class and view
DRAW_SEED = 1  # the same draws for every recipe and training seed
# the validation images of the scikit-image photos, per view of the photos: the first ones
GREY_IMAGES = (len(VALIDATION) + 1) * len(DEGRADATIONS) * DRAWS


def as_photo(array) -> torch.Tensor:
    """An HxW or HxWx3 uint8 array as a 3×H×W float photo, longer side at most 512 pixels (as
    the bundled photos)."""
    image = torch.as_tensor(array.copy()).float() / 255
    image = image.expand(3, *image.shape) if image.dim() == 2 else image[..., :3].permute(2, 0, 1)
    scale = 512 / max(image.shape[-2:])
    if scale < 1:
        size = [round(side * scale) for side in image.shape[-2:]]
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True)[0]
    return image.clamp(0, 1).contiguous()


def validation_photos() -> list[torch.Tensor]:
    """The validation photos, in the order of ``VALIDATION_NAMES``: scikit-image's, then the
    colour ones of benchmarks/wallpapers."""
    left, _, _ = skimage.data.stereo_motorcycle()
    grey = [as_photo(left)] + [as_photo(getattr(skimage.data, name)()) for name in VALIDATION]
    return grey + wallpaper_photos("validation")


def recipe_settings(name: str, seed: int) -> tuple[dict, dict]:
    """``train_sensor``'s settings for recipe ``name`` and ``seed`` (with the name of its photo
    set, ``"photos"``, if not the bundled photos), and the sensor's options."""
    settings = {"steps": DEFAULT_SENSOR_STEPS, "seed": seed, **VARIANTS[name][1]}
    return settings, {k: settings.pop(k) for k in SENSOR_OPTIONS if k in settings}


def settings_key(settings: dict, options: dict) -> dict:
    """A run's settings and options as ``settings.json`` stores them (tuples as lists)."""
    return recipe_key(json.loads(json.dumps({**settings, **options})))


def new_sensor(options: dict, seed: int) -> pa.DegradationSensor:
    torch.manual_seed(seed)  # the same initial weights for every recipe
    return pa.DegradationSensor(DEGRADATIONS, **options)


def kept_sensor(
    name: str, seed: int, runs: Path = RUNS
) -> tuple[pa.DegradationSensor, float] | None:
    """The sensor of recipe ``name`` and ``seed`` kept in ``runs`` and its training time, or
    ``None`` if it is not there or was trained with other settings. ``benchmarks/quality.py``
    takes the default recipe's from here: it trains its sensor just so (same photos, settings,
    seed and initial weights), so the two are the same sensor."""
    settings, options = recipe_settings(name, seed)
    folder = runs / name / f"seed{seed}"
    stored = folder / "settings.json"
    if not stored.is_file() or json.loads(stored.read_text())["settings"] != settings_key(
        settings, options
    ):
        return None
    sensor = new_sensor(options, seed)
    sensor.load_state_dict(load_file(folder / "sensor.safetensors"))
    return sensor.eval(), json.loads(stored.read_text())["seconds"]


def trained_sensor(name: str, args: argparse.Namespace) -> tuple[pa.DegradationSensor, float]:
    """The sensor of recipe ``name``, trained here or reused from ``runs/``; its training time."""
    kept = kept_sensor(name, args.seed, args.runs)
    if kept is not None:
        return kept
    settings, options = recipe_settings(name, args.seed)
    sensor = new_sensor(options, args.seed)
    folder = args.runs / name / f"seed{args.seed}"
    photos = sensor_photos(settings.get("photos", BUNDLED))
    started = time.perf_counter()
    train_sensor(
        sensor, photos, progress=False, **{k: v for k, v in settings.items() if k != "photos"}
    )
    seconds = time.perf_counter() - started
    (folder / LOGITS).unlink(missing_ok=True)  # measured on the sensor this replaces
    write_safetensors(folder / "sensor.safetensors", sensor.state_dict())
    write_json(
        folder / "settings.json", {"settings": settings_key(settings, options), "seconds": seconds}
    )
    return sensor, seconds


LOGITS = "logits.safetensors"  # a run's validation logits, per view of the photos
ALL_VIEWS = "flips"  # the test-time views compared: every other set is a subset of them
# the zoomed copy whose logits are kept beside the native ones for the default recipe (the
# crops as they are), and the weights it is given beside the native crops' weight of 1 in
# ``zooms_table`` (``DegradationSensor(scale_weights={1.0: 1.0, ZOOM: w})``)
ZOOM = 0.5
ZOOM_WEIGHTS = (0.25, 0.5, 0.75, 1.0)


def measured_views(name: str) -> str:
    """The test-time views whose logits are kept for recipe ``name``: every one for the default
    recipe (``views_table`` compares them), the crop as it is for the others (a quarter of the
    work; the recipes are compared without views)."""
    return ALL_VIEWS if name == DEFAULT_RECIPE else "none"


def zoom_key(label: str) -> str:
    """The kept logits of the ``ZOOM`` copies of the validation images of view ``label``."""
    return f"{label}.zoom{ZOOM:g}.logits"


@torch.no_grad()
def view_logits(
    sensor: pa.DegradationSensor,
    photos: list[torch.Tensor],
    size: int | None,
    first: int = 0,
    views: str = ALL_VIEWS,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of every validation image (mean over its crops; of its copy zoomed by
    ``scale``, as ``DegradationSensor`` crops one) in each test-time view of ``views``,
    ``N×V×T``, and the true classes ``N``."""
    logits, truth = [], []
    for image, t in labelled_images(photos, size, DRAWS, DRAW_SEED, first):
        grid = crop_grid(zoom(image, scale), sensor.crop_size, sensor.crops_per_side)
        crops = crop_views(grid[0], views)
        logits.append(sensor.classify(crops.flatten(0, 1)).unflatten(0, crops.shape[:2]).mean(1))
        truth.append(t)
    return torch.stack(logits), torch.tensor(truth)


def pooled(logits: torch.Tensor, views: str) -> torch.Tensor:
    """The sensor's logits (``N×T``) with the test-time views ``views``, from ``view_logits``'
    per-view ones (of ``ALL_VIEWS``, or of the first of them alone, ``"none"``): their mean
    over those views (as ``DegradationSensor.classify_views``)."""
    index = [SENSOR_VIEWS[ALL_VIEWS].index(view) for view in SENSOR_VIEWS[views]]
    return logits[:, index].mean(dim=1)


def counts(weights: torch.Tensor, truth: torch.Tensor) -> dict:
    """Confusion counts and the wrong predictions made with a top weight of at least SURE_AT."""
    top, predicted = weights.max(dim=-1)
    return {
        "confusion": confusion(weights, truth).tolist(),
        "sure_and_wrong": int(((predicted != truth) & (top >= SURE_AT)).sum()),
    }


def measure(
    sensor: pa.DegradationSensor,
    photos: list[torch.Tensor],
    folder: Path,
    views: str,
    zoomed: bool = False,
) -> dict:
    """Confusion counts on whole validation photos (also photo by photo) and on random 256²
    and 128² crops of them, as the sensor was trained to see them (no views, temperature 1),
    from the logits of the test-time views ``views``, kept in ``folder`` (for ``views_table``;
    reused while the sensor and the validation photos are and they hold those views; kept for
    the first photos only, those of the others are added); ``zoomed``: the logits of the
    images' ``ZOOM`` copies are kept too (for ``zooms_table``)."""
    kept, stored = kept_photos(folder), kept_views(folder)
    reused = kept is not None and kept == list(VALIDATION_NAMES[: len(kept)])
    if reused and stored is not None and set(SENSOR_VIEWS[views]) <= set(SENSOR_VIEWS[stored]):
        views = stored  # the kept logits hold every view asked for: theirs, for the others
    else:
        kept = None
    changed = kept != list(VALIDATION_NAMES)
    if not changed:
        tensors = load_file(folder / LOGITS)
    else:
        first = len(kept or [])
        before = load_file(folder / LOGITS) if first else {}
        tensors = {}
        for label, size in VIEWS:
            logits, truth = view_logits(sensor, photos[first:], size, first, views)
            if first:
                logits = torch.cat([before[f"{label}.logits"], logits])
                truth = torch.cat([before[f"{label}.truth"], truth])
            tensors[f"{label}.logits"], tensors[f"{label}.truth"] = logits, truth
    for label, size in VIEWS:
        if zoomed and len(tensors.get(zoom_key(label), ())) != len(tensors[f"{label}.truth"]):
            tensors[zoom_key(label)] = view_logits(sensor, photos, size, 0, "none", ZOOM)[0]
            changed = True
    if changed:
        photo_names = json.dumps(VALIDATION_NAMES)
        digest = wallpapers_digest("validation")
        write_safetensors(
            folder / LOGITS,
            tensors,
            metadata={"photos": photo_names, "digest": digest, "views": views},
        )
    # the scikit-image photos come first: their counts compare with every run before the
    # colour photos joined (the same images, drawn alike); the colour ones are kept apart
    grey = GREY_IMAGES
    results: dict = {"sure_and_wrong": {}, "colour": {"sure_and_wrong": {}}}
    for label, _ in VIEWS:
        plain = pooled(tensors[f"{label}.logits"], "none").softmax(dim=-1)
        truth = tensors[f"{label}.truth"]
        for part, rows in ((results, slice(None, grey)), (results["colour"], slice(grey, None))):
            measured = counts(plain[rows], truth[rows])
            part[label] = measured["confusion"]
            part["sure_and_wrong"][label] = measured["sure_and_wrong"]
    whole = pooled(tensors["whole.logits"], "none")
    results["photos"] = photo_confusions(whole, tensors["whole.truth"])
    return results


def photo_confusions(logits: torch.Tensor, truth: torch.Tensor) -> dict[str, list[list[int]]]:
    """The confusion counts of each validation photo seen whole (its rows of ``logits`` and
    ``truth``, which follow ``VALIDATION_NAMES``): which photos a recipe misreads, and as what."""
    rows = len(DEGRADATIONS) * DRAWS
    return {
        name: confusion(
            logits[i * rows : (i + 1) * rows], truth[i * rows : (i + 1) * rows]
        ).tolist()
        for i, name in enumerate(VALIDATION_NAMES)
    }


def kept_photos(folder: Path) -> list[str] | None:
    """The validation photos of the logits kept in ``folder`` (the scikit-image ones for logits
    kept before the colour ones joined), or ``None`` if none are kept or the colour photos'
    files changed since."""
    if not (folder / LOGITS).is_file():
        return None
    with safe_open(folder / LOGITS, "pt") as kept:
        metadata = kept.metadata() or {}
    if "photos" not in metadata:
        return ["stereo_motorcycle", *VALIDATION]
    if metadata.get("digest") != wallpapers_digest("validation"):
        return None
    return json.loads(metadata["photos"])


def kept_views(folder: Path) -> str | None:
    """The test-time views of the logits kept in ``folder`` (``ALL_VIEWS`` for logits kept
    before other views were measured), or ``None`` if none are kept."""
    if not (folder / LOGITS).is_file():
        return None
    with safe_open(folder / LOGITS, "pt") as kept:
        return (kept.metadata() or {}).get("views", ALL_VIEWS)


def confusion_scores(confusions: dict[str, torch.Tensor]) -> tuple[list[float], float, int]:
    """From the confusion counts of each view: the accuracy per view (%), and on whole photos
    the clean recall (%) and the number of degraded photos called clean."""
    scores = [100 * accuracy(c) for c in confusions.values()]
    whole, clean = confusions["whole"], DEGRADATIONS.index("clean")
    recall = 100 * whole[clean, clean].item() / whole[clean].sum().item()
    return scores, recall, int(whole[:clean, clean].sum().item())


def part_summary(confusions: dict[str, torch.Tensor], sure_and_wrong: int) -> dict:
    """The page's numbers of a set of photos: accuracy per view of the photos and their mean,
    and on whole photos the clean recall, the degraded photos called clean and the wrong
    predictions made with confidence (a hard label rather than a mixture)."""
    accuracies, recall, called = confusion_scores(confusions)
    return {
        "accuracy": [*accuracies, sum(accuracies) / len(accuracies)],
        "clean_recall": recall,
        "called_clean": called,
        "sure_and_wrong": sure_and_wrong,
    }


def summary(name: str, seed: int, result: dict, cpu: str) -> dict:
    """A run's record (what the page shows of it) from its ``validation.json`` (``result``):
    the scikit-image photos' numbers, and when the colour photos were measured theirs and
    those of all photos; the whole photos' confusion counts; the CPU it was trained on."""
    grey = {label: torch.tensor(result[label]) for label, _ in VIEWS}
    record = {
        "recipe": name,
        "seed": seed,
        "cpu": cpu,
        "steps": recipe_settings(name, seed)[0]["steps"],
        "seconds": result["seconds"],
        "grey": part_summary(grey, result["sure_and_wrong"]["whole"]),
        "matrix": grey["whole"].tolist(),
    }
    if "colour" in result:
        colour = {label: torch.tensor(result["colour"][label]) for label, _ in VIEWS}
        every = {label: grey[label] + colour[label] for label in grey}
        colour_wrong = result["colour"]["sure_and_wrong"]["whole"]
        record["colour"] = part_summary(colour, colour_wrong)
        record["all"] = part_summary(every, result["sure_and_wrong"]["whole"] + colour_wrong)
        record["matrix"] = every["whole"].tolist()
    if "photos" in result:
        record["photos"] = result["photos"]
    return record


def row(record: dict) -> str:
    """A run's line on the scikit-image photos."""
    grey = record["grey"]
    cells = " | ".join(f"{v:.1f}%" for v in (*grey["accuracy"], grey["clean_recall"]))
    return (
        f"| {record['recipe']} | {VARIANTS[record['recipe']][0]} | {record['seed']} "
        f"| {record['cpu']} | {record['steps']} | {record['seconds']:.0f} s | {cells} "
        f"| {grey['called_clean']} | {grey['sure_and_wrong']} |"
    )


def photo_cell(matrix: list[list[int]]) -> str:
    """A photo's whole-photo verdicts in words: what its clean photo was called, and the
    degraded photos called clean, by true class (``"blur 12; called clean: haze 3"``)."""
    counts, clean = torch.tensor(matrix), DEGRADATIONS.index("clean")

    def named(row: torch.Tensor) -> str:
        order = row.argsort(descending=True, stable=True)
        return ", ".join(f"{DEGRADATIONS[i]} {row[i]}" for i in order.tolist() if row[i] > 0)

    misread = counts[clean].clone()
    misread[clean] = 0
    called = counts[:, clean].clone()
    called[clean] = 0
    verdict = named(misread) if misread.any() else "clean"
    return verdict + (f"; called clean: {named(called)}" if called.any() else "")


def photos_table(records: list[dict]) -> str:
    """Per validation photo seen whole, for each run measured photo by photo (a column each):
    ``photo_cell``."""
    runs = [r for r in records if "photos" in r]
    if not runs:
        return "No run measured photo by photo yet."
    head = " | ".join(f"{r['recipe']}, seed {r['seed']}, {r['cpu']}" for r in runs)
    lines = [f"| photo | {head} |", "| --- |" + " --- |" * len(runs)]
    for name in VALIDATION_NAMES:
        lines.append(
            f"| {name} | " + " | ".join(photo_cell(r["photos"][name]) for r in runs) + " |"
        )
    return "\n".join(lines)


def colour_row(record: dict) -> str:
    """A run's line on the enlarged validation: the mean accuracy on the scikit-image photos,
    the accuracy per view and mean on the colour photos, then the same and the whole-photo
    counts over all of them."""
    every = record["all"]
    cells = [record["grey"]["accuracy"][-1], *record["colour"]["accuracy"], *every["accuracy"]]
    return (
        f"| {record['recipe']} | {record['seed']} | {record['cpu']} | "
        + " | ".join(f"{v:.1f}%" for v in (*cells, every["clean_recall"]))
        + f" | {every['called_clean']} | {every['sure_and_wrong']} |"
    )


def cross_entropy(weights: torch.Tensor, truth: torch.Tensor) -> float:
    """The mean negative log of the weight each image gives its true class."""
    return -weights[torch.arange(len(truth)), truth].clamp_min(1e-12).log().mean().item()


def view_scores(logits: dict, truth: dict, views: str, temperature: float) -> dict:
    """A run's validation scores with the test-time views ``views`` and ``temperature``
    (``scores``)."""
    return scores({k: pooled(v, views) for k, v in logits.items()}, truth, temperature)


def scores(logits: dict, truth: dict, temperature: float) -> dict:
    """Validation scores of a sensor's logits (``N×T`` by view of the photos) at
    ``temperature``: accuracy per view of the photos (and their mean), clean recall, degraded
    photos called clean and wrong-and-sure on whole photos, cross-entropy and calibration
    error over all; on whole photos, the recall of each class and the confusion counts."""
    weights = {k: (v / temperature).softmax(dim=-1) for k, v in logits.items()}
    measured = {k: counts(weights[k], truth[k]) for k in logits}
    confusions = {k: torch.tensor(m["confusion"]) for k, m in measured.items()}
    clean = DEGRADATIONS.index("clean")
    every, classes = torch.cat(list(weights.values())), torch.cat(list(truth.values()))
    top, predicted = every.max(dim=-1)
    whole = confusions["whole"]
    return {
        **part_summary(confusions, measured["whole"]["sure_and_wrong"]),
        # what blind mode restores of a clean photo: the weight it gives the other classes
        "clean_given": 1 - weights["whole"][truth["whole"] == clean, clean].mean().item(),
        "nll": cross_entropy(every, classes),
        "nll_whole": cross_entropy(weights["whole"], truth["whole"]),
        "ece": calibration_error(top, predicted == classes),
        "recall": (100 * whole.diag() / whole.sum(dim=1)).tolist(),
        "confusion": whole.tolist(),
    }


def kept_logits(runs: Path, recipe: str) -> dict[int, tuple[dict, dict]]:
    """Seed -> (logits, true classes) by view of the photos, of ``recipe``'s measured runs."""
    kept = {}
    for path in sorted((runs / recipe).glob(f"seed*/{LOGITS}")):
        tensors = load_file(path)
        kept[int(path.parent.name[4:])] = tuple(
            {label: tensors[f"{label}.{part}"] for label, _ in VIEWS}
            for part in ("logits", "truth")
        )
    return kept


def fitted_temperature(
    kept: dict, seeds, views: str, photos=ALL_PHOTOS, rows: slice = slice(None)
) -> float:
    """The temperature of minimum cross-entropy over the validation images of ``seeds``' runs
    (by default every view of the photos, else those named in ``photos``; ``rows``: of the
    images of each view, those), with the test-time views ``views``."""
    logits = [pooled(kept[s][0][label][rows], views) for s in seeds for label in photos]
    truth = [kept[s][1][label][rows] for s in seeds for label in photos]
    return fit_temperature(torch.cat(logits), torch.cat(truth))


def view_rows(runs: Path, recipe: str) -> dict:
    """Test-time views and temperatures on ``recipe``'s runs (every seed with kept logits):
    the scores at temperature 1 and at the temperatures fitted on every seed's validation
    images together (every view of the photos, or whole photos only, as blind mode sees them),
    and, in words, the fits and the ones each seed alone would get."""
    kept = kept_logits(runs, recipe)
    rows, fits = [], []
    for views in SENSOR_VIEWS if kept else ():
        temperatures = [1.0]
        for photos, text in ((ALL_PHOTOS, "every view"), (("whole",), "whole photos")):
            common = fitted_temperature(kept, kept, views, photos)
            alone = ", ".join(f"{fitted_temperature(kept, [s], views, photos):.3f}" for s in kept)
            fits.append(f"{describe_views(views)}, {text}: {common:.3f} (each seed alone: {alone})")
            temperatures.append(common)
        if views == DEFAULT_SENSOR_VIEWS:  # and the one train_sensor gives its sensors
            temperatures.append(DEFAULT_SENSOR_TEMPERATURE)
            grey = slice(None, GREY_IMAGES)
            common = fitted_temperature(kept, kept, views, ("whole",), grey)
            alone = ", ".join(
                f"{fitted_temperature(kept, [s], views, ('whole',), grey):.3f}" for s in kept
            )
            fits.append(
                f"{describe_views(views)}, whole scikit-image photos alone (as "
                f"`DEFAULT_SENSOR_TEMPERATURE` was fitted): {common:.3f} (each seed alone: "
                f"{alone})"
            )
        for seed, (logits, truth) in kept.items():
            for temperature in temperatures:
                r = view_scores(logits, truth, views, temperature)
                del r["recall"], r["confusion"]
                rows.append({"views": views, "seed": seed, "temperature": temperature, **r})
    return {"rows": rows, "fits": fits}


def views_tables(by_cpu: dict) -> str:
    """The views tables of each CPU whose default-recipe runs were measured so."""
    if not by_cpu:
        return "(no run of this recipe has its logits kept yet)"
    return "\n\n".join(f"Trained on {cpu}:\n\n{views_table(m)}" for cpu, m in by_cpu.items())


def views_table(measured: dict) -> str:
    """``view_rows``' output as a table and a list of the fits."""
    if not measured["rows"]:
        return "(no run of this recipe has its logits kept yet)"
    lines = [
        "| views | seed | whole photos | 256² crops | 128² crops | mean | clean recall (whole) "
        "| degraded called clean (whole) | temperature | wrong and sure (whole) "
        "| clean photos: weight off clean (whole) | cross-entropy | cross-entropy (whole) "
        "| calibration error (ECE) |",
        "| --- |" + " ---: |" * 7 + " --- |" + " ---: |" * 5,
    ]
    for r in measured["rows"]:
        cells = " | ".join(f"{v:.1f}%" for v in (*r["accuracy"], r["clean_recall"]))
        lines.append(
            f"| {r['views']} | {r['seed']} | {cells} | {r['called_clean']} "
            f"| {r['temperature']:.2f} | {r['sure_and_wrong']} | {r['clean_given']:.3f} "
            f"| {r['nll']:.3f} | {r['nll_whole']:.3f} | {r['ece']:.3f} |"
        )
    return (
        "\n".join(lines)
        + "\n\nTemperatures fitted on every seed's runs together (on every view of the photos, "
        "or on whole photos only):\n" + "\n".join(f"- {fit}" for fit in measured["fits"])
    )


def kept_zooms(runs: Path, recipe: str) -> dict[int, tuple[dict, dict, dict]]:
    """Seed -> (native logits of the crops as they are, ``ZOOM`` copies' logits, true classes)
    by view of the photos, of ``recipe``'s runs whose zoomed copies' logits are kept."""
    kept = {}
    for path in sorted((runs / recipe).glob(f"seed*/{LOGITS}")):
        tensors = load_file(path)
        if all(zoom_key(label) in tensors for label, _ in VIEWS):
            kept[int(path.parent.name[4:])] = (
                {label: tensors[f"{label}.logits"][:, 0] for label, _ in VIEWS},
                {label: tensors[zoom_key(label)][:, 0] for label, _ in VIEWS},
                {label: tensors[f"{label}.truth"] for label, _ in VIEWS},
            )
    return kept


def zoom_rows(runs: Path, recipe: str) -> list[dict]:
    """The scores of ``recipe``'s runs with each weight of their ``ZOOM`` copies beside the
    native crops (0: the native crops alone; ``None``: the copies alone), as
    ``DegradationSensor(scale_weights={1.0: 1.0, ZOOM: w})`` judges a photo, at
    temperature 1 and at the one fitted on every seed's whole photos together."""
    kept = kept_zooms(runs, recipe)
    rows: list[dict] = []
    for weight in (0.0, *ZOOM_WEIGHTS, None) if kept else ():

        def mixed(native: dict, zoomed: dict, w: float | None = weight) -> dict:
            if w is None:
                return zoomed
            return {k: (native[k] + w * zoomed[k]) / (1 + w) for k in native}

        logits = {seed: mixed(native, zoomed) for seed, (native, zoomed, _) in kept.items()}
        fitted = fit_temperature(
            torch.cat([logits[seed]["whole"] for seed in kept]),
            torch.cat([truth["whole"] for _, _, truth in kept.values()]),
        )
        for seed, (_, _, truth) in kept.items():
            plain = scores(logits[seed], truth, 1.0)
            calibrated = scores(logits[seed], truth, fitted)
            rows.append(
                {
                    "weight": weight,
                    "seed": seed,
                    **{k: plain[k] for k in ("accuracy", "clean_recall", "called_clean")},
                    "recall": plain["recall"],
                    "clean_called_blur": plain["confusion"][-1][DEGRADATIONS.index("blur")],
                    "temperature": fitted,
                    "sure_and_wrong": calibrated["sure_and_wrong"],
                    "nll_whole": calibrated["nll_whole"],
                }
            )
    return rows


def zooms_table(rows: list[dict]) -> str:
    """``zoom_rows``' rows as a table, each weight's mean over the seeds after its rows."""
    if not rows:
        return "(no run of this recipe has the logits of its zoomed copies kept yet)"
    haze = DEGRADATIONS.index("haze")
    lines = [
        f"| weight of the {ZOOM:g}-scale copy | seed | whole photos | 256² crops | 128² crops "
        "| mean | haze recall (whole) | clean recall (whole) | degraded called clean (whole) "
        "| clean called blur (whole) | temperature (fitted, whole) | wrong and sure (whole) "
        "| cross-entropy (whole) |",
        "| --- | --- |" + " ---: |" * 11,
    ]

    def line(weight_text: str, seed: str, r: dict) -> str:
        cells = [*r["accuracy"], r["recall"][haze], r["clean_recall"]]
        return (
            f"| {weight_text} | {seed} | "
            + " | ".join(f"{v:.1f}%" for v in cells)
            + f" | {r['called_clean']:g} | {r['clean_called_blur']:g} | {r['temperature']:.2f} "
            f"| {r['sure_and_wrong']:g} | {r['nll_whole']:.3f} |"
        )

    weights = list(dict.fromkeys(r["weight"] for r in rows))
    for weight in weights:
        text = "alone" if weight is None else f"{weight:g}"
        group = [r for r in rows if r["weight"] == weight]
        lines += [line(text, str(r["seed"]), r) for r in group]
        if len(group) > 1:
            mean = {
                key: (
                    [sum(v) / len(group) for v in zip(*(r[key] for r in group), strict=True)]
                    if isinstance(group[0][key], list)
                    else sum(r[key] for r in group) / len(group)
                )
                for key in group[0]
                if key not in ("weight", "seed")
            }
            lines.append(line(f"**{text}**", "**mean**", mean))
    return "\n".join(lines)


RECORDS = "sensor_tuning.json"  # the page's numbers, beside it: rendered again without runs/
CUE_COLUMN = 1  # the column of edge_sharpness the cue table shows (its 99th percentile)


@torch.no_grad()
def sharpness_cue(photos: list[torch.Tensor]) -> dict[str, dict]:
    """The ``sharpness`` recipe's cue on each validation photo seen whole: ``edge_sharpness``'
    ``CUE_COLUMN`` (its mean over the default sensor's crops of the photo: a logarithm) of the
    clean photo and of each of its blurred draws (those every recipe is judged on)."""
    sensor = pa.DegradationSensor(DEGRADATIONS)  # its crops only
    wanted = {DEGRADATIONS.index("clean"): "clean", DEGRADATIONS.index("blur"): "blurred"}
    cue = {}
    for p, name in enumerate(VALIDATION_NAMES):
        values: dict[str, list[float]] = {"clean": [], "blurred": []}
        for image, t in labelled_images(photos[p : p + 1], None, DRAWS, DRAW_SEED, p):
            if t in wanted:
                crops = crop_grid(image, sensor.crop_size, sensor.crops_per_side)[0]
                values[wanted[t]].append(edge_sharpness(crops)[:, CUE_COLUMN].mean().item())
        cue[name] = {"clean": values["clean"][0], "blurred": values["blurred"]}
    return cue


def cue_section(cue: dict[str, dict]) -> str:
    """The cue table (``sharpness_cue``, shown as slopes: the exponential of the mean
    logarithm) and what it says: which clean photos read sharper than all their blurred draws,
    and how many blurred draws of any photo read sharper than the least sharp clean photo."""
    lines = [
        "| photo | clean | blurred draws: lowest | highest | clean above all its blurred draws |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, values in cue.items():
        low, high = min(values["blurred"]), max(values["blurred"])
        above = "yes" if values["clean"] > high else "no"
        lines.append(
            f"| {name} | {math.exp(values['clean']):.3f} | {math.exp(low):.3f} | "
            f"{math.exp(high):.3f} | {above} |"
        )
    separated = sum(v["clean"] > max(v["blurred"]) for v in cue.values())
    softest = min(cue, key=lambda name: cue[name]["clean"])
    draws = [d for v in cue.values() for d in v["blurred"]]
    sharper = sum(d > cue[softest]["clean"] for d in draws)
    reading = (
        ": the cue tells a photo from its own blurred draws, not every sharp photo from every "
        "blurred one, so it is one more input for the sensor to weigh, not a threshold"
        if sharper
        else ""
    )
    return (
        "\n".join(lines)
        + f"\n\n{separated} of the {len(cue)} clean photos read sharper than all {DRAWS} of "
        f"their blurred draws; the least sharp clean photo ({softest}, "
        f"{math.exp(cue[softest]['clean']):.3f}) reads less sharp than {sharper} of the "
        f"{len(draws)} blurred draws of all the photos{reading}."
    )


UNKNOWN_CPU = "unknown CPU"  # a run in runs/ that does not say which CPU trained it


def merged_records(runs: Path, path: Path) -> dict:
    """The page's numbers: the records kept in ``path`` (runs whose ``runs/`` folders may be
    gone), updated with every run measured in ``runs`` (a run of the same recipe, seed and
    CPU replaces its record), and the default recipe's views and zoom tables measured from
    the logits kept in ``runs`` (the views tables by CPU: one measured here replaces the kept
    one of this CPU only; the zoom table replaces the kept one)."""
    kept = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    records = {(r["recipe"], r["seed"], r["cpu"]): r for r in kept["runs"]}
    for name in VARIANTS:
        for result_path in sorted((runs / name).glob("seed*/validation.json")):
            result, seed = json.loads(result_path.read_text()), int(result_path.parent.name[4:])
            cpu = result.get("cpu", UNKNOWN_CPU)  # written before the CPU was recorded
            records[(name, seed, cpu)] = summary(name, seed, result, cpu)
    order = list(VARIANTS)
    views, zooms = view_rows(runs, DEFAULT_RECIPE), zoom_rows(runs, DEFAULT_RECIPE)
    here = {"cpu": cpu_name()}
    return {
        "runs": sorted(
            records.values(), key=lambda r: (order.index(r["recipe"]), r["cpu"], r["seed"])
        ),
        "views": kept.get("views", {}) | ({cpu_name(): views} if views["rows"] else {}),
        "zooms": {"rows": zooms, **here} if zooms else kept.get("zooms", {"rows": []}),
        "sharpness_cue": kept.get("sharpness_cue", {}),
    }


def main() -> None:
    parser = comparison_parser(__doc__, "variants", VARIANTS)
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args, names = parse_comparison(parser, "variants", VARIANTS)
    photos = validation_photos()
    for name in names:
        sensor, seconds = trained_sensor(name, args)
        folder = args.runs / name / f"seed{args.seed}"
        zoomed = name == DEFAULT_RECIPE
        result = {
            "seconds": seconds,
            **measure(sensor, photos, folder, measured_views(name), zoomed),
        }
        write_json(folder / "validation.json", {**result, "cpu": cpu_name()})
        print(row(summary(name, args.seed, result, cpu_name())), flush=True)

    records = merged_records(args.runs, args.out / RECORDS)
    key = {"photos": wallpapers_digest("validation"), "code": code_digest()}
    cue = records["sharpness_cue"]
    if cue.get("key") != key or list(cue.get("photos", {})) != list(VALIDATION_NAMES):
        records["sharpness_cue"] = {"key": key, "photos": sharpness_cue(photos)}
    write_json(args.out / RECORDS, records)
    lines = [
        "| recipe | what it changes | seed | CPU | steps | training | whole photos | 256² crops "
        "| 128² crops | mean | clean recall (whole) | degraded called clean (whole) "
        "| wrong and sure (whole) |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    colour_lines = [
        "| recipe | seed | CPU | scikit-image photos: mean | colour photos: whole | 256² crops "
        "| 128² crops | mean | all photos: whole | 256² crops | 128² crops | mean "
        "| clean recall (whole) | degraded called clean (whole) | wrong and sure (whole) |",
        "| --- | ---: | --- |" + " ---: |" * 12,
    ]
    matrices = []
    for record in records["runs"]:
        lines.append(row(record))
        if "colour" in record:
            colour_lines.append(colour_row(record))
        label = "all" if "colour" in record else "scikit-image"
        matrices.append(
            f"{record['recipe']}, seed {record['seed']}, {record['cpu']}, whole photos "
            f"({label}):\n\n{confusion_table(torch.tensor(record['matrix']))}"
        )
    legacy_cpus = " / ".join(sorted({r["cpu"] for r in records["runs"] if "source" in r})) or "no"
    zoom_cpu = records["zooms"].get("cpu", "no CPU yet")
    command = shlex.join(["python", "benchmarks/sensor_tuning.py", *sys.argv[1:]])
    matrix_text = "\n\n".join(matrices)
    loaders = ", ".join(f"`{n}`" for n in VALIDATION)
    report = f"""# Degradation sensor: choosing the training recipe

`{command}` — {date.today().isoformat()}, rendered on {describe_machine(args.threads)}; each
run's numbers come from the CPU named with it.

Each recipe trains a `DegradationSensor` (resnet10t unless the recipe names another timm
network, the five degradations and `"clean"`) with
`train_sensor` on {SENSOR_PHOTOS[BUNDLED]} (the `wallpapers` recipe: and the
{len(wallpaper_names("train"))} training photos of `benchmarks/wallpapers/`, see below; with the
seed in the table: it draws the initial weights, crops and degradations), then names the
degradation of **validation photos** that are in no split of the bundled ones and that no
recipe trains on: {len(VALIDATION) + 1} photos from scikit-image {skimage.__version__}
(`skimage.data`: the left view of `stereo_motorcycle`, {loaders}; grey ones as grey RGB; longer
side at most 512) and {len(COLOUR_VALIDATION)} colour photos of other kinds
(the validation split of `benchmarks/wallpapers/`: {", ".join(COLOUR_VALIDATION)}), each clean
and under every degradation, {DRAWS} draws each, seen whole and as random 256² and 128² crops
({len(VALIDATION_NAMES) * len(DEGRADATIONS) * DRAWS} images per view; a clean whole photo is
the same in every draw). The first table scores the scikit-image photos alone, as every recipe
was measured before the colour ones joined (the same images, drawn alike); the second adds the
colour photos for the runs measured on them.

`benchmarks/wallpapers/` holds {len(WALLPAPERS)} photographs (landscapes, close-ups of plants
and objects, indoor scenes, an animal, dusk and night, textures; longer side 512, JPEG) from
Debian's desktop-wallpaper packages (lomiri-wallpapers, mate-backgrounds,
plasma-workspace-wallpapers; CC0, CC BY, CC BY-SA, GPL and LGPL, each file's author and licence
in its ATTRIBUTION.md), none from the packages of the bundled photos (scikit-image,
scikit-learn, matplotlib) or of the out-of-domain set (sporco, scipy, Kivy); every recipe
before `wallpapers` was trained on {SENSOR_PHOTOS[BUNDLED]} alone.
The bundled held-out and out-of-domain photos play no part in this choice:
`benchmarks/sensor_accuracy.py` measures the chosen recipe on them. *Degraded called clean*:
degraded whole photos the sensor names clean (the most common miss on the out-of-domain set).
*Wrong and sure*: whole photos named wrongly with a top weight of at least {SURE_AT} (blind
restoration then steers by a wrong label rather than by a mixture).

{describe_sensor_recipe()}.

The recipes below are measured as trained: each crop seen once (no test-time views), weights
at temperature 1. Training is bit-reproducible on one CPU and thread count, not across CPUs:
*CPU* names the one that trained each sensor (the same recipe and seed on another CPU is
another sample). The page's numbers are kept in [{RECORDS}]({RECORDS}) beside it, so runs
whose `runs/` folder is gone (every {legacy_cpus} run: lost in a machine reset) stay on it.

{chr(10).join(lines)}

On the enlarged validation (scikit-image and colour photos):

{chr(10).join(colour_lines)}

Photo by photo (whole photos), for the runs measured so: what the clean photo was called
(*clean*, or the classes it was taken for, out of its {DRAWS} draws: a clean whole photo is the
same in each) and, after *called clean*, its degraded draws named clean, by true class.

{photos_table(records["runs"])}

## Edge sharpness of the validation photos (the `sharpness` recipe's cue)

`DegradationSensor(sharpness=True)` also reads each crop's `edge_sharpness`: how steep its
steepest edges are for their height (the gradient magnitude over the range of the
{SHARPNESS_WINDOW}×{SHARPNESS_WINDOW} window around each pixel; a motion blur of 7 pixels
or more spreads every edge over that many pixels). Its column
"{SENSOR_SHARPNESS[CUE_COLUMN]}", as the default sensor's crops of each whole validation
photo read it (geometric mean over the crops), for the clean photo and the lowest and highest
of its {DRAWS} blurred draws (the draws above):

{cue_section(records["sharpness_cue"]["photos"])}

## Test-time views and temperature (the default recipe)

The sensors of the default recipe ({DEFAULT_RECIPE}) on the same validation images, with each
set of test-time views of `DegradationSensor` (`views`: the logits of each crop averaged over
its mirrored views) and at several temperatures of the weights (`softmax(logits / temperature)`):
1, the temperatures of minimum cross-entropy over every seed's validation images together,
fitted on every view of the photos (whole, 256², 128²) or on whole photos only, as blind mode
sees images, and with the default views the one `train_sensor` gives its sensors
(`DEFAULT_SENSOR_TEMPERATURE`, {DEFAULT_SENSOR_TEMPERATURE:g}: fitted the same way on whole
photos, on the scikit-image photos alone). `fit_temperature` gives one number for
every image, so it changes no prediction, only how sure the weights are: the wrong-and-sure
count, the cross-entropies and the calibration error (*weight off clean*: the mean weight a
clean whole photo gives the other classes, the share of a restoration that blind mode applies
to it).

{views_tables(records["views"])}

## The photo zoomed out (the default recipe)

A crop of a hazy photo sees part of a depth map, and a whole-photo verdict is the mean of its
crops' logits. `DegradationSensor(scale_weights={{1.0: 1.0, {ZOOM:g}: w}})` also judges a copy of
the photo downscaled by {ZOOM:g} (each crop then sees four times the area; the sensor is
trained on crops zoomed out down to 0.5) and takes the weighted mean of the two scales' mean
logits, `(native + w · zoomed) / (1 + w)`. On the same validation images (the crops as they
are; a 256² or 128² crop's copy is one crop, mirrored out when shorter than one), the
sensors of the default recipe ({DEFAULT_RECIPE}, trained on {zoom_cpu}) with each weight `w` of
the zoomed copy (0: today's default, *alone*: the zoomed copy only); accuracies at
temperature 1 (a weight changes predictions, not through the temperature), wrong-and-sure and
cross-entropy at the temperature fitted on both seeds' whole photos for that weight.

{zooms_table(records["zooms"]["rows"])}

Confusion matrices (rows: true class, columns: prediction):

{matrix_text}
"""
    write_text(args.out / "sensor_tuning.md", report)
    print(report)


if __name__ == "__main__":
    main()
