"""The wallpaper photos (benchmark data for the sensor, benchmarks/wallpapers/): the loader's
splits, the files' sizes and attribution, and the sensor recipe's photo set reaching
``train_sensor`` and the caches' keys."""

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import quality  # benchmarks/ is not a package: found through the path above
import sensor_recipe
import sensor_tuning
import wallpaper_photos as wp

import pip_adapter as pa


def test_the_splits_hold_every_photo_once():
    train, validation = wp.wallpaper_names("train"), wp.wallpaper_names("validation")
    assert (len(train), len(validation)) == (26, 8)
    assert not set(train) & set(validation)
    assert sorted(train + validation) == sorted(wp.WALLPAPERS)
    with pytest.raises(ValueError, match="split must be one of 'train', 'validation'"):
        wp.wallpaper_names("test")  # type: ignore[arg-type]


def test_the_gnu_licences_ship_beside_the_files_under_them():
    licences = {photo.licence for photo in wp.WALLPAPERS.values()}
    assert {"GPL-2+", "LGPL-3"} <= licences
    for text in ("GPL-2", "GPL-3", "LGPL-3"):
        assert "GNU" in (wp.WALLPAPER_DIR / "LICENSES" / text).read_text()
    assert (
        "not under pip-adapter's MIT licence" in (wp.WALLPAPER_DIR / "ATTRIBUTION.md").read_text()
    )


def test_the_files_are_small_downscaled_jpegs_that_load_as_photos():
    files = sorted(wp.WALLPAPER_DIR.glob("*.jpg"))
    assert [f.stem for f in files] == sorted(wp.WALLPAPERS)
    assert sum(f.stat().st_size for f in files) < 2_000_000
    for path in files:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert max(image.size) == 512 and min(image.size) >= 256, path.name
    photos = wp.wallpaper_photos("validation")
    assert len(photos) == 8
    for photo in photos:
        assert photo.dtype == torch.float32 and photo.shape[0] == 3
        assert photo.min() >= 0 and photo.max() <= 1


def test_the_attribution_names_every_file_with_its_author_and_licence():
    text = (wp.WALLPAPER_DIR / "ATTRIBUTION.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(wp.WALLPAPERS)
    for row, (name, photo) in zip(rows, wp.WALLPAPERS.items(), strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[0] == f"`{name}.jpg`"
        assert cells[2] == photo.author and photo.package in cells[3] and photo.path in cells[3]
        assert cells[4].startswith(f"[{photo.licence}](https://") and cells[6] == photo.split


def test_the_photo_set_keys_the_caches_only_when_it_is_not_the_bundled_photos():
    assert sensor_recipe.sensor_photos("bundled") is None  # train_sensor's default
    photos = sensor_recipe.sensor_photos("bundled+wallpapers")
    assert photos is not None and len(photos) == 6 + 26
    assert torch.equal(photos[0], pa.data.sample_images("train")[0])
    with pytest.raises(ValueError, match="unknown sensor photo set 'mine'; valid names"):
        sensor_recipe.sensor_photos("mine")
    # every cache written before the photo set was a field (bundled photos) stays valid
    recipe = {**sensor_recipe.SENSOR_RECIPE, "photos": "bundled"}
    assert "photos" not in sensor_recipe.recipe_key(recipe)
    # another set keys them with its name and its files' contents
    wider = sensor_recipe.recipe_key({**recipe, "photos": "bundled+wallpapers"})
    digest = wp.wallpapers_digest("train")
    assert wider == {
        **sensor_recipe.recipe_key(recipe),
        "photos": "bundled+wallpapers",
        "photos_digest": digest,
    }
    assert digest != wp.wallpapers_digest("validation") and len(digest) == 64
    args = argparse.Namespace(
        steps=10, batch_size=2, patch_size=32, lr=1e-3, seed=0, threads=1, loss="psnr",
        context=0, sensor_steps=1,
    )  # fmt: skip
    stored = quality.settings(args, "pip")["sensor_recipe"]
    assert stored == sensor_recipe.recipe_key(sensor_recipe.SENSOR_RECIPE)


def test_the_wallpapers_recipe_trains_the_sensor_on_its_photos(tmp_path, monkeypatch):
    seen = []

    def short_training(sensor, data, **settings):  # the real training, one step of two crops
        seen.append((data, settings))
        return pa.training.train_sensor(sensor, data, **{**settings, "steps": 1, "batch_size": 2})

    monkeypatch.setattr(sensor_tuning, "train_sensor", short_training)
    args = argparse.Namespace(seed=0, runs=tmp_path)
    sensor_tuning.trained_sensor("wallpapers", args)
    ((data, settings),) = seen
    assert len(data) == 32 and "photos" not in settings and settings["context"] == 32
    stored = json.loads((tmp_path / "wallpapers" / "seed0" / "settings.json").read_text())
    assert stored["settings"]["photos"] == "bundled+wallpapers"
    assert stored["settings"]["photos_digest"] == wp.wallpapers_digest("train")
    assert sensor_tuning.kept_sensor("wallpapers", 0, tmp_path) is not None
    # the same sensor is not taken for a recipe on other photos
    (tmp_path / "wallpapers").rename(tmp_path / "mild_end_no_haze")
    assert sensor_tuning.kept_sensor("mild_end_no_haze", 0, tmp_path) is None
