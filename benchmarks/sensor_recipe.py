"""The degradation sensor's default recipe, as the benchmarks that train or use one key their
caches on it and describe it (quality.py, sensor_accuracy.py, sensor_tuning.py)."""

from __future__ import annotations

import json

from pip_adapter.sensor import DEFAULT_SENSOR_VIEWS, SENSOR_VIEWS
from pip_adapter.training.sensor import (
    DEFAULT_SENSOR_CONTEXT,
    DEFAULT_SENSOR_FAINT,
    DEFAULT_SENSOR_SCALES,
    DEFAULT_SENSOR_STEPS,
    DEFAULT_SENSOR_TEMPERATURE,
    FAINT_RANGES,
)

# what a trained sensor depends on besides its steps: train_sensor's crop recipe (its
# defaults, tuples as lists, as a cache stores them in JSON)
SENSOR_RECIPE: dict = json.loads(
    json.dumps(
        {
            "context": DEFAULT_SENSOR_CONTEXT,
            "scales": DEFAULT_SENSOR_SCALES,
            "faint": DEFAULT_SENSOR_FAINT,
            "faint_ranges": FAINT_RANGES,
        }
    )
)
# how a trained sensor is used, which needs no retraining to change: its test-time views and
# the temperature of its weights
SENSOR_USE: dict = {"views": DEFAULT_SENSOR_VIEWS, "temperature": DEFAULT_SENSOR_TEMPERATURE}


def describe_views(views: str) -> str:
    """``views`` in words, e.g. "flips (4 views)"."""
    count = len(SENSOR_VIEWS[views])
    return f"`{views}` ({count} view{'s' if count > 1 else ''})"


def describe_sensor_recipe(steps: int = DEFAULT_SENSOR_STEPS) -> str:
    """The default recipe in words, for a page: training crops, then use."""
    zoom = " / ".join(f"{s:g}" for s in DEFAULT_SENSOR_SCALES)
    return (
        f"`train_sensor`'s defaults: {steps} steps; each crop degraded with "
        f"{DEFAULT_SENSOR_CONTEXT} px of the photo around it, at zoom {zoom}, a share of "
        f"{DEFAULT_SENSOR_FAINT:g} of the {' / '.join(FAINT_RANGES)} crops faint (the mild end "
        f"of their default ranges); test-time views {describe_views(DEFAULT_SENSOR_VIEWS)}, "
        f"temperature {DEFAULT_SENSOR_TEMPERATURE:g}; chosen on validation photos that are in "
        "no split of the bundled ones ([sensor_tuning.md](sensor_tuning.md))"
    )
