"""benchmarks/sensor_tuning.py: the test-time views measured per recipe, kept logits reused
when they hold the views asked for, the zoomed copies' logits and their table, the page's
records kept beside it, and the default recipe keyed on train_sensor's defaults."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sensor_tuning  # benchmarks/ is not a package: found through the path above

from pip_adapter.data import sample_images
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

    def fake_logits(sensor, photos, size, first=0, views=sensor_tuning.ALL_VIEWS, scale=1.0):
        calls.append(views if scale == 1 else f"{views} at {scale:g}")
        n = len(photos) * classes * sensor_tuning.DRAWS
        truth = torch.arange(classes).repeat_interleave(sensor_tuning.DRAWS).repeat(len(photos))
        return torch.randn(n, len(SENSOR_VIEWS[views]), classes), truth

    monkeypatch.setattr(sensor_tuning, "view_logits", fake_logits)
    photos = [None] * len(sensor_tuning.VALIDATION_NAMES)  # only counted by the fake
    assert sensor_tuning.kept_views(tmp_path) is None

    def measure(views, zoomed=False):
        calls.clear()
        result = sensor_tuning.measure(None, photos, tmp_path, views, zoomed)
        whole = torch.tensor(result["whole"]) + torch.tensor(result["colour"]["whole"])
        assert whole.sum() == len(photos) * classes * sensor_tuning.DRAWS
        assert list(result["photos"]) == list(sensor_tuning.VALIDATION_NAMES)
        assert sum(torch.tensor(m).sum() for m in result["photos"].values()) == whole.sum()
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
    # the zoomed copies' logits: measured once (the crops as they are), then kept
    assert measure("none", zoomed=True) == ["none at 0.5"] * labels
    assert measure("none", zoomed=True) == [] and measure("none") == []
    assert measure("hflip", zoomed=True) == ["hflip"] * labels + ["none at 0.5"] * labels


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


def kept_run(runs, seed, native, zoomed, truth):
    """A default-recipe run's kept logits (every view of the photos and test-time view alike)
    and results."""
    views = len(SENSOR_VIEWS[sensor_tuning.ALL_VIEWS])
    folder = runs / sensor_tuning.DEFAULT_RECIPE / f"seed{seed}"
    folder.mkdir(parents=True)
    tensors = {}
    for label, _ in sensor_tuning.VIEWS:
        tensors[f"{label}.logits"], tensors[f"{label}.truth"] = (
            native[:, None].repeat(1, views, 1),
            truth.clone(),
        )
        tensors[sensor_tuning.zoom_key(label)] = zoomed[:, None].clone()
    sensor_tuning.write_safetensors(folder / sensor_tuning.LOGITS, tensors)
    confusion = sensor_tuning.confusion(native.softmax(-1), truth).tolist()
    result = {label: confusion for label, _ in sensor_tuning.VIEWS}
    result |= {"sure_and_wrong": {"whole": 1}, "seconds": 9.0, "cpu": "CPU A"}
    (folder / "validation.json").write_text(json.dumps(result))


def test_zoom_rows_weigh_the_zoomed_copies_as_the_sensor_does_and_records_survive(tmp_path):
    """Weight 0 scores the native logits, "alone" the zoomed ones, 1 their mean; the page's
    records, written beside it, render the same page once runs/ is gone."""
    classes = len(sensor_tuning.DEGRADATIONS)
    truth = torch.arange(classes).repeat(4)
    native = torch.nn.functional.one_hot(truth, classes).float() * 3
    native[: 2 * classes] = native[: 2 * classes].roll(1, dims=-1)  # half of them wrong
    zoomed = torch.nn.functional.one_hot(truth, classes).float() * 2  # all right
    kept_run(tmp_path / "runs", 0, native, zoomed, truth)
    kept_run(tmp_path / "runs", 1, native, zoomed, truth)
    rows = sensor_tuning.zoom_rows(tmp_path / "runs", sensor_tuning.DEFAULT_RECIPE)
    by_weight = {(r["weight"], r["seed"]): r for r in rows}
    assert by_weight[0.0, 0]["accuracy"] == [50.0, 50.0, 50.0, 50.0]
    assert by_weight[None, 1]["accuracy"] == [100.0] * 4
    # (3·wrong + 1·2·right) / 2: the wrong class still wins at weight 1, not at 2
    assert by_weight[1.0, 0]["accuracy"][0] == 50.0
    assert [w for w, seed in by_weight if seed == 0] == [0.0, *sensor_tuning.ZOOM_WEIGHTS, None]
    table = sensor_tuning.zooms_table(rows)
    assert "| **0.5** | **mean** | 50.0%" in table and "| alone | 1 | 100.0%" in table

    out = tmp_path / "docs" / sensor_tuning.RECORDS
    out.parent.mkdir()
    records = sensor_tuning.merged_records(tmp_path / "runs", out)
    assert [(r["seed"], r["cpu"]) for r in records["runs"]] == [(0, "CPU A"), (1, "CPU A")]
    assert records["runs"][0]["grey"]["accuracy"] == [50.0] * 4
    out.write_text(json.dumps(records))
    # runs/ gone: the kept records give the same numbers; a new run of another CPU joins them
    kept_run(tmp_path / "other", 0, zoomed, zoomed, truth)
    result = json.loads(
        (
            tmp_path / "other" / sensor_tuning.DEFAULT_RECIPE / "seed0" / "validation.json"
        ).read_text()
    )
    (tmp_path / "other" / sensor_tuning.DEFAULT_RECIPE / "seed0" / "validation.json").write_text(
        json.dumps(result | {"cpu": "CPU B"})
    )
    again = sensor_tuning.merged_records(tmp_path / "missing", out)
    assert again == records
    merged = sensor_tuning.merged_records(tmp_path / "other", out)
    assert [(r["seed"], r["cpu"]) for r in merged["runs"]] == [
        (0, "CPU A"),
        (1, "CPU A"),
        (0, "CPU B"),
    ]
    assert merged["runs"][-1]["grey"]["accuracy"] == [100.0] * 4
    assert merged["zooms"]["cpu"] != "CPU A" and len(merged["zooms"]["rows"]) == len(rows) // 2
    # the views tables are kept by CPU: a run measured here adds this CPU's, the others stay
    assert list(records["views"]) == [sensor_tuning.cpu_name()]
    older = records | {"views": {"CPU Z": {"rows": [], "fits": ["z"]}}}
    out.write_text(json.dumps(older))
    both = sensor_tuning.merged_records(tmp_path / "runs", out)["views"]
    assert list(both) == ["CPU Z", sensor_tuning.cpu_name()] and both["CPU Z"]["fits"] == ["z"]
    assert sensor_tuning.views_tables({}).startswith("(no run")
    # a run that does not say its CPU is kept apart, not taken for this machine's
    del result["cpu"]
    (tmp_path / "other" / sensor_tuning.DEFAULT_RECIPE / "seed0" / "validation.json").write_text(
        json.dumps(result)
    )
    unknown = sensor_tuning.merged_records(tmp_path / "other", out)["runs"][-1]
    assert unknown["cpu"] == sensor_tuning.UNKNOWN_CPU
    assert sensor_tuning.views_table({"rows": [], "fits": []}).startswith("(no run")
    assert pytest.approx(records["zooms"]["rows"][0]["temperature"]) == rows[0]["temperature"]


def test_each_photo_keeps_its_whole_photo_counts_and_the_page_says_how_it_was_misread():
    """A clean photo taken for blur in every draw and two of its hazy draws called clean: its
    cell says both; a photo read right says clean; runs measured before this have no column."""
    names, draws = sensor_tuning.VALIDATION_NAMES, sensor_tuning.DRAWS
    classes = len(sensor_tuning.DEGRADATIONS)
    truth = torch.arange(classes).repeat_interleave(draws).repeat(len(names))
    logits = torch.nn.functional.one_hot(truth, classes).float()
    clean, blur, haze = (sensor_tuning.DEGRADATIONS.index(n) for n in ("clean", "blur", "haze"))
    photo = classes * draws  # the second photo's first row
    logits[photo + clean * draws : photo + (clean + 1) * draws] = logits[blur * draws]
    logits[photo + haze * draws : photo + haze * draws + 2] = logits[clean * draws]
    photos = sensor_tuning.photo_confusions(logits, truth)
    assert list(photos) == list(names)
    assert sensor_tuning.photo_cell(photos[names[0]]) == "clean"
    assert sensor_tuning.photo_cell(photos[names[1]]) == f"blur {draws}; called clean: haze 2"
    runs = [
        {"recipe": "before", "seed": 0, "cpu": "A"},
        {"recipe": "content", "seed": 1, "cpu": "A", "photos": photos},
    ]
    table = sensor_tuning.photos_table(runs)
    assert table.splitlines()[0] == "| photo | content, seed 1, A |"
    assert f"| {names[1]} | blur {draws}; called clean: haze 2 |" in table
    assert len(table.splitlines()) == 2 + len(names)
    assert sensor_tuning.photos_table(runs[:1]) == "No run measured photo by photo yet."


def test_the_cue_table_says_which_clean_photos_read_sharper_than_their_blurred_draws():
    """Logarithms in, slopes out; a photo counts only if its clean reading is above every one
    of its blurred draws, and the summary counts the draws above the least sharp clean photo."""
    cue = {
        "soft": {"clean": math.log(0.15), "blurred": [math.log(0.10), math.log(0.12)]},
        "sharp": {"clean": math.log(0.40), "blurred": [math.log(0.20), math.log(0.45)]},
    }
    section = sensor_tuning.cue_section(cue)
    assert "| soft | 0.150 | 0.100 | 0.120 | yes |" in section
    assert "| sharp | 0.400 | 0.200 | 0.450 | no |" in section
    assert "1 of the 2 clean photos read sharper than all" in section
    assert "(soft, 0.150) reads less sharp than 2 of the 4 blurred draws" in section
    assert "not a threshold" in section
    apart = {"soft": cue["soft"], "sharp": {"clean": 0.0, "blurred": [math.log(0.14)]}}
    assert "than 0 of the 3 blurred draws of all the photos." in sensor_tuning.cue_section(apart)


def test_the_cue_is_measured_on_each_photo_clean_and_blurred_as_every_recipe_sees_them(
    monkeypatch,
):
    """Two photos, two draws: a logarithm of the clean photo and one per blurred draw, each
    photo's clean reading above its blurred ones (a 7-21 px blur on a sharp photo)."""
    monkeypatch.setattr(sensor_tuning, "VALIDATION_NAMES", ("first", "second"))
    monkeypatch.setattr(sensor_tuning, "DRAWS", 2)
    photos = [photo[:, :160, :200] for photo in sample_images("train")[:2]]
    cue = sensor_tuning.sharpness_cue(photos)
    assert list(cue) == ["first", "second"]
    for values in cue.values():
        assert len(values["blurred"]) == 2
        assert values["clean"] < 0  # a logarithm of a slope below 1
        assert values["clean"] > max(values["blurred"])
