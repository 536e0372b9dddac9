"""The degradation sensor's default recipe, as the benchmarks that train or use one key their
caches on it and describe it (quality.py, sensor_accuracy.py, sensor_tuning.py)."""

from __future__ import annotations

import json

import torch
from machine import at_least, verdict
from wallpaper_photos import wallpaper_names, wallpaper_photos, wallpapers_digest

from pip_adapter.data import sample_image_names, sample_images
from pip_adapter.sensor import DEFAULT_SENSOR_VIEWS, SENSOR_VIEWS
from pip_adapter.training.sensor import (
    DEFAULT_SENSOR_CONTEXT,
    DEFAULT_SENSOR_FAINT,
    DEFAULT_SENSOR_GROUP,
    DEFAULT_SENSOR_HAZE_FIELD,
    DEFAULT_SENSOR_SCALES,
    DEFAULT_SENSOR_STEPS,
    DEFAULT_SENSOR_TEMPERATURE,
    FAINT_RANGES,
)

# issue #19's goals for blind mode: the sensor names the degradation (or "clean") of this share
# of the out-of-domain whole photos, and blind restoration is this close to the true labels
ACCURACY_GOAL = 0.95
BLIND_GOAL_DB = 0.1
# where what was tried for the blind goal is reported
TRIED_BLIND = (
    "the sensor's recipes of [sensor_tuning.md](sensor_tuning.md); one output strength per "
    "degradation (`PIPConfig.output_strength`, [quality.md](quality.md#output-strength-per-"
    "degradation))"
)


def blind_goal(gap: float) -> str:
    """A blind − labels average ``gap`` (dB) against the goal; a miss says by how much and where
    what was tried for it is reported."""
    if at_least(-abs(gap), -BLIND_GOAL_DB):
        return f"goal within {BLIND_GOAL_DB:.2f} dB: {verdict(True)}"
    return (
        f"goal within {BLIND_GOAL_DB:.2f} dB: {verdict(False)}, by "
        f"{abs(gap) - BLIND_GOAL_DB:.3f} dB (tried: {TRIED_BLIND})"
    )


# the photos a sensor can be trained on: name -> what they are (train_sensor's default is the
# first; the others add benchmarks/wallpapers' training photos, see wallpaper_photos.py)
BUNDLED_TEXT = f"the {len(sample_image_names('train'))} bundled training photos"
SENSOR_PHOTOS: dict[str, str] = {
    "bundled": BUNDLED_TEXT,
    "bundled+wallpapers": (
        f"{BUNDLED_TEXT} and the {len(wallpaper_names('train'))} wallpaper training photos"
    ),
}
BUNDLED = "bundled"

# train_sensor's crop recipe: its defaults, as keywords
DEFAULT_TRAINING: dict = {
    "context": DEFAULT_SENSOR_CONTEXT,
    "scales": DEFAULT_SENSOR_SCALES,
    "faint": DEFAULT_SENSOR_FAINT,
    "faint_ranges": FAINT_RANGES,
    "haze_field": DEFAULT_SENSOR_HAZE_FIELD,
    "group": DEFAULT_SENSOR_GROUP,
}
# what a trained sensor depends on besides its steps: the photos it is trained on and
# train_sensor's crop recipe (tuples as lists, as a cache stores them in JSON)
SENSOR_RECIPE: dict = json.loads(json.dumps({"photos": BUNDLED, **DEFAULT_TRAINING}))
# recipe fields that came after sensors were kept, and the value every sensor had before: a key
# leaves them out at that value, so those sensors' caches stay valid (and name them otherwise)
BEFORE_FIELDS = {"haze_field": 1.0, "group": 1}
# how a trained sensor is used, which needs no retraining to change: its test-time views and
# the temperature of its weights
SENSOR_USE: dict = {"views": DEFAULT_SENSOR_VIEWS, "temperature": DEFAULT_SENSOR_TEMPERATURE}


def sensor_photos(name: str) -> list[torch.Tensor] | None:
    """The training photos of photo set ``name`` as ``train_sensor``'s ``data`` (``None``: its
    default, the bundled training photos)."""
    if name not in SENSOR_PHOTOS:
        raise ValueError(f"unknown sensor photo set {name!r}; valid names: {list(SENSOR_PHOTOS)}")
    if name == BUNDLED:
        return None
    return sample_images("train") + wallpaper_photos("train")


def recipe_key(recipe: dict) -> dict:
    """``recipe`` as caches store it: without the photo set when it is the bundled photos, as
    every sensor trained before the set was a field of the recipe was (their caches stay
    valid), else with a digest of the wallpaper training files (rebuilt or re-split photos
    train a new sensor); without a field of ``BEFORE_FIELDS`` at its value there."""
    photos = recipe.get("photos", BUNDLED)
    key = {
        k: v
        for k, v in recipe.items()
        if k != "photos" and not (k in BEFORE_FIELDS and v == BEFORE_FIELDS[k])
    }
    if photos == BUNDLED:
        return key
    return {"photos": photos, "photos_digest": wallpapers_digest("train"), **key}


def describe_views(views: str) -> str:
    """``views`` in words, e.g. "flips (4 views)"."""
    count = len(SENSOR_VIEWS[views])
    return f"`{views}` ({count} view{'s' if count > 1 else ''})"


def describe_sensor_recipe(steps: int = DEFAULT_SENSOR_STEPS) -> str:
    """The benchmarks' recipe in words, for a page: training photos and crops, then use."""
    zoom = " / ".join(f"{s:g}" for s in DEFAULT_SENSOR_SCALES)
    return (
        f"trained on {SENSOR_PHOTOS[SENSOR_RECIPE['photos']]}, otherwise with "
        f"`train_sensor`'s defaults: {steps} steps; each crop degraded with "
        f"{DEFAULT_SENSOR_CONTEXT} px of the photo around it, at zoom {zoom}, a share of "
        f"{DEFAULT_SENSOR_FAINT:g} of the {' / '.join(FAINT_RANGES)} crops faint (the mild end "
        f"of their default ranges); test-time views {describe_views(DEFAULT_SENSOR_VIEWS)}, "
        f"temperature {DEFAULT_SENSOR_TEMPERATURE:g}; chosen on validation photos that are in "
        "no split of the bundled ones ([sensor_tuning.md](sensor_tuning.md))"
    )
