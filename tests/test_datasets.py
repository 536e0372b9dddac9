"""Synthetic all-in-one training set and the fixed evaluation pairs."""

import pytest
import torch
from torch.utils.data import DataLoader

from pip_adapter.data import (
    PairedImages,
    SyntheticAllInOne,
    build_eval_set,
    sample_image_names,
    sample_images,
    write_image,
)

DEGRADATIONS = ("noise", "rain", "haze", "blur", "lowlight")


def items(dataset, indices):
    return [dataset[i] for i in indices]


def same(a, b) -> bool:
    return all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and x[2] == y[2]
        for x, y in zip(a, b, strict=True)
    )


def test_defaults_bundled_train_photos_balanced_degradations():
    dataset = SyntheticAllInOne(patch_size=48, samples_per_degradation=4)
    assert len(dataset) == 20 and dataset.degradations == DEGRADATIONS
    for index in range(10):
        degraded, clean, degradation_id = dataset[index]
        assert degraded.shape == clean.shape == (3, 48, 48)
        assert degraded.dtype == clean.dtype == torch.float32
        assert degradation_id == index % 5
        assert degraded.min() >= 0 and degraded.max() <= 1
        assert not torch.equal(degraded, clean)
    with pytest.raises(IndexError):
        dataset[20]


def test_deterministic_per_item_and_epoch():
    a = SyntheticAllInOne(patch_size=32, samples_per_degradation=2, seed=1)
    b = SyntheticAllInOne(patch_size=32, samples_per_degradation=2, seed=1)
    assert same(items(a, [7, 3, 0]), items(b, [7, 3, 0]))
    assert same(items(a, [3]), items(a, [3]))  # independent of access order
    c = SyntheticAllInOne(patch_size=32, samples_per_degradation=2, seed=2)
    assert not same(items(a, range(10)), items(c, range(10)))
    before = items(a, range(10))
    a.set_epoch(1)
    assert not same(before, items(a, range(10)))
    a.set_epoch(0)
    assert same(before, items(a, range(10)))


def test_dataloader_workers_give_the_same_batches():
    dataset = SyntheticAllInOne(patch_size=32, samples_per_degradation=2, seed=3)
    serial = list(DataLoader(dataset, batch_size=5, num_workers=0))
    parallel = list(DataLoader(dataset, batch_size=5, num_workers=2))
    for (d0, c0, t0), (d1, c1, t1) in zip(serial, parallel, strict=True):
        assert torch.equal(d0, d1) and torch.equal(c0, c1) and torch.equal(t0, t1)
    assert serial[0][2].tolist() == [0, 1, 2, 3, 4]


def test_degradation_subset_order_composites_and_fixed_params():
    degradations = ("haze", "rain+noise", "noise")
    dataset = SyntheticAllInOne(
        degradations=degradations,
        patch_size=64,
        samples_per_degradation=2,
        params={"noise": {"sigma": 50}},
    )
    (hazy, clean_h, id_h), (rainy_noisy, _, id_rn), (noisy, clean_n, id_n) = items(
        dataset, [0, 1, 2]
    )
    assert (id_h, id_rn, id_n) == (0, 1, 2)
    assert hazy.mean() > clean_h.mean()  # haze lifts the dark tones of the photos
    residual = noisy - torch.round(clean_n * 255) / 255
    unclipped = (noisy > 0) & (noisy < 1)
    assert residual[unclipped].std().item() == pytest.approx(50 / 255, rel=0.15)
    assert not torch.equal(rainy_noisy, dataset[1][1])


def test_images_from_a_folder_or_tensors_and_small_images_are_padded(tmp_path):
    for i, photo in enumerate(sample_images("train")[:2]):
        write_image(photo[:, :40, :30], tmp_path / f"photo{i}.png")
    dataset = SyntheticAllInOne(
        tmp_path, degradations=("blur",), patch_size=48, samples_per_degradation=2
    )
    degraded, clean, degradation_id = dataset[0]
    assert clean.shape == (3, 48, 48) and degradation_id == 0
    tensors = SyntheticAllInOne([torch.rand(3, 60, 70)], degradations=("noise",), patch_size=32)
    assert tensors[5][1].shape == (3, 32, 32)
    custom = SyntheticAllInOne(
        [torch.rand(3, 40, 40)],
        degradations=("invert", "noise"),
        patch_size=16,
        custom={"invert": lambda clean, generator=None: 1 - clean},
    )
    degraded, clean, degradation_id = custom[0]
    assert degradation_id == 0 and torch.allclose(degraded, 1 - clean)


def test_context_degrades_a_larger_crop_and_cuts_the_patch_out():
    seen = []

    def shift(clean, generator=None):  # depends on the neighbours: a one-pixel shift
        seen.append(tuple(clean.shape[-2:]))
        return torch.roll(clean, 1, dims=-1)

    image = torch.rand(3, 80, 90)
    custom = {"shift": shift}
    wide = SyntheticAllInOne(
        [image], ("shift",), patch_size=32, augment=False, context=8, custom=custom
    )
    degraded, clean, _ = wide[0]
    assert seen == [(48, 48)] and degraded.shape == clean.shape == (3, 32, 32)
    windows = image.unfold(1, 32, 1).unfold(2, 32, 1)  # every 32×32 crop of the image
    assert (windows == clean[:, None, None]).all(dim=0).all(dim=-1).all(dim=-1).any()
    # the patch's left column comes from the real pixel beside it, not from a wrap-around
    assert torch.equal(degraded[:, :, 1:], clean[:, :, :-1])
    assert not torch.equal(degraded[:, :, 0], clean[:, :, -1])
    with pytest.raises(ValueError, match="context must be >= 0"):
        SyntheticAllInOne([image], ("noise",), patch_size=32, context=-1)


def test_scales_cut_a_larger_region_and_downscale_it():
    # a horizontal ramp: at zoom 0.5 each patch spans twice the image width per pixel
    ramp = torch.linspace(0, 1, 200).expand(3, 120, 200).contiguous()
    native = SyntheticAllInOne([ramp], ("clean",), patch_size=32, augment=False)
    zoomed = SyntheticAllInOne([ramp], ("clean",), patch_size=32, augment=False, scales=(0.5,))
    step = 1 / 199
    for dataset, factor in ((native, 1), (zoomed, 2)):
        _, clean, _ = dataset[0]
        assert clean.shape == (3, 32, 32)
        slope = (clean[0, 16, 24] - clean[0, 16, 8]).item() / 16
        assert slope == pytest.approx(factor * step, rel=0.02)
    # several scales: each item draws one, reproducibly; an image too small for the zoom is
    # zoomed only as far as its shorter side allows (no padding)
    mixed = SyntheticAllInOne([ramp], ("clean",), patch_size=32, scales=(1.0, 0.5), seed=3)
    assert same(items(mixed, range(8)), items(mixed, range(8)))
    small = SyntheticAllInOne([ramp[:, :40, :50]], ("clean",), patch_size=32, scales=(0.25,))
    assert small[0][1].shape == (3, 32, 32) and small[0][1].std() > 0
    for bad in ((), (0.0,), (1.5,), ("1",)):
        with pytest.raises(ValueError, match="scales must be numbers in"):
            SyntheticAllInOne([ramp], ("clean",), patch_size=32, scales=bad)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="valid degradations"):
        SyntheticAllInOne(degradations=("noise", "hail"))
    with pytest.raises(ValueError, match="not among the degradations"):
        SyntheticAllInOne(degradations=("noise",), params={"rain": {"angle": 0}})
    with pytest.raises(ValueError, match="sigma"):
        SyntheticAllInOne(degradations=("noise",), params={"noise": {"sigma": -5}})
    with pytest.raises(TypeError, match="unknown parameter"):
        SyntheticAllInOne(degradations=("noise",), params={"noise": {"level": 5}})
    with pytest.raises(TypeError, match="not a string"):
        SyntheticAllInOne(degradations="noise")
    with pytest.raises(FileNotFoundError, match="no image files"):
        SyntheticAllInOne(tmp_path)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SyntheticAllInOne([torch.rand(3, 40, 40) * 3])


def test_eval_set_is_fixed_and_uses_held_out_photos():
    evaluation = build_eval_set(crop=64)
    held_out = sample_image_names("test")
    assert isinstance(evaluation, PairedImages)
    assert len(evaluation) == len(held_out) * 5
    assert evaluation.names[:5] == [f"{held_out[0]}/{degradation}" for degradation in DEGRADATIONS]
    assert evaluation.degradations == DEGRADATIONS
    again = build_eval_set(crop=64)
    for i in range(len(evaluation)):
        degraded, clean, degradation_id = evaluation[i]
        assert degraded.shape == clean.shape == (3, 64, 64) and degradation_id == i % 5
        assert torch.equal(degraded, again[i][0])
    other_seed = build_eval_set(crop=64, seed=1)
    assert not torch.equal(evaluation[0][0], other_seed[0][0])
    train_photos = sample_images("train")
    for clean in evaluation.clean:
        assert all(
            clean.shape != photo.shape or not torch.equal(clean, photo) for photo in train_photos
        )


def test_eval_set_from_given_images_with_fixed_params():
    images = [torch.full((3, 20, 24), 0.5), torch.full((3, 16, 16), 0.25)]
    evaluation = build_eval_set(
        images, degradations=("noise",), names=["grey", "dark"], params={"noise": {"sigma": 15}}
    )
    assert evaluation.names == ["grey/noise", "dark/noise"]
    degraded, clean, _ = evaluation[0]
    assert (degraded - torch.round(clean * 255) / 255).std().item() == pytest.approx(
        15 / 255, rel=0.2
    )
    with pytest.raises(ValueError, match="names"):
        build_eval_set(images, names=["only one"])


def test_select_keeps_the_named_degradations_pairs_and_their_ids():
    evaluation = build_eval_set(sample_images("test")[:2], crop=32)
    chosen = evaluation.select(["haze", "noise"])
    assert chosen.degradations == evaluation.degradations  # the same vocabulary and ids
    assert chosen.labels == ["noise", "haze", "noise", "haze"]  # in their order in the set
    for i, name in enumerate(chosen.names):
        j = evaluation.names.index(name)
        assert torch.equal(chosen[i][0], evaluation[j][0]) and chosen[i][2] == evaluation[j][2]
    for bad in (["snow"], "blur"):
        with pytest.raises(
            ValueError, match="PairedImages.select takes a list of its degradations"
        ):
            evaluation.select(bad)
