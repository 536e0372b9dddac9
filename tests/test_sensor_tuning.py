"""benchmarks/sensor_tuning.py: the test-time views measured per recipe, kept logits reused
when they hold the views asked for, and the default recipe keyed on train_sensor's defaults."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sensor_tuning  # benchmarks/ is not a package: found through the path above

from pip_adapter.sensor import SENSOR_VIEWS
from pip_adapter.training.sensor import (
    DEFAULT_SENSOR_CONTEXT,
    DEFAULT_SENSOR_FAINT,
    DEFAULT_SENSOR_GROUP,
    DEFAULT_SENSOR_HAZE_FIELD,
    DEFAULT_SENSOR_SCALES,
    DEFAULT_SENSOR_STEPS,
    FAINT_RANGES,
)


def test_the_default_recipe_keeps_every_view_and_the_others_the_crop_as_it_is():
    assert sensor_tuning.measured_views(sensor_tuning.DEFAULT_RECIPE) == sensor_tuning.ALL_VIEWS
    assert sensor_tuning.measured_views("haze_field") == "none"
    # the logits of the crop as it is are the first of every view's
    logits = torch.randn(5, len(SENSOR_VIEWS[sensor_tuning.ALL_VIEWS]), 6)
    assert torch.equal(sensor_tuning.pooled(logits, "none"), logits[:, 0])
    assert torch.equal(sensor_tuning.pooled(logits[:, :1], "none"), logits[:, 0])


def test_kept_logits_are_reused_when_they_hold_the_views_asked_for(tmp_path, monkeypatch):
    calls = []
    classes = len(sensor_tuning.DEGRADATIONS)

    def fake_logits(sensor, photos, size, first=0, views=sensor_tuning.ALL_VIEWS):
        calls.append(views)
        n = len(photos) * classes * sensor_tuning.DRAWS
        truth = torch.arange(classes).repeat_interleave(sensor_tuning.DRAWS).repeat(len(photos))
        return torch.randn(n, len(SENSOR_VIEWS[views]), classes), truth

    monkeypatch.setattr(sensor_tuning, "view_logits", fake_logits)
    photos = [None] * len(sensor_tuning.VALIDATION_NAMES)  # only counted by the fake
    assert sensor_tuning.kept_views(tmp_path) is None

    def measure(views):
        calls.clear()
        result = sensor_tuning.measure(None, photos, tmp_path, views)
        whole = torch.tensor(result["whole"]) + torch.tensor(result["colour"]["whole"])
        assert whole.sum() == len(photos) * classes * sensor_tuning.DRAWS
        return list(calls)

    labels = len(sensor_tuning.VIEWS)  # whole photos, 256² and 128² crops
    assert measure("none") == ["none"] * labels
    assert sensor_tuning.kept_views(tmp_path) == "none"
    assert measure("none") == []  # kept
    assert measure("flips") == ["flips"] * labels  # the kept ones lack views: measured again
    assert measure("none") == [] and measure("hflip") == []  # every view is kept
    assert sensor_tuning.kept_views(tmp_path) == "flips"
    # other colour photos: nothing kept is reused, and only the views asked for are measured
    monkeypatch.setattr(sensor_tuning, "wallpapers_digest", lambda split: "other files")
    assert measure("none") == ["none"] * labels
    assert sensor_tuning.kept_views(tmp_path) == "none"


def test_the_default_recipe_is_train_sensors_defaults_and_keys_its_sensors_on_them():
    settings, options = sensor_tuning.recipe_settings(sensor_tuning.DEFAULT_RECIPE, 0)
    assert options == {} and settings.pop("seed") == 0
    assert settings.pop("steps") == DEFAULT_SENSOR_STEPS
    assert settings == {
        "context": DEFAULT_SENSOR_CONTEXT,
        "scales": DEFAULT_SENSOR_SCALES,
        "faint": DEFAULT_SENSOR_FAINT,
        "faint_ranges": FAINT_RANGES,
        "haze_field": DEFAULT_SENSOR_HAZE_FIELD,
        "group": DEFAULT_SENSOR_GROUP,
    }
    # a field that came later is left out of a key at the value every older sensor had, and
    # named otherwise: another default would not reuse the sensors kept under the old one
    key = sensor_tuning.settings_key(settings, options)
    assert "haze_field" not in key and "group" not in key and key["faint"] == DEFAULT_SENSOR_FAINT
    wider = sensor_tuning.settings_key({**settings, "haze_field": 3.0}, options)
    assert wider == {**key, "haze_field": 3.0}
    haze, _ = sensor_tuning.recipe_settings("haze_field", 0)
    assert sensor_tuning.settings_key(haze, {}) == {
        **wider,
        "seed": 0,
        "steps": DEFAULT_SENSOR_STEPS,
    }
    groups, _ = sensor_tuning.recipe_settings("groups", 0)
    assert sensor_tuning.settings_key(groups, {}) == {
        **key,
        "group": 2,
        "batch_size": 4,
        "seed": 0,
        "steps": DEFAULT_SENSOR_STEPS,
    }
