"""The AirNet / PromptIR / PIP folder layout, on a miniature copy written into tmp_path (the
``layout`` fixture; see standard_layout.py)."""

import shutil
from pathlib import Path

import pytest
import torch
from standard_layout import write_clean, write_pair

from pip_adapter.data import STANDARD_TEST_SETS, StandardTestSet, StandardTrainSet

DEGRADATIONS = ("noise", "rain", "haze", "blur", "lowlight")


def test_training_set_reads_all_five_degradations_with_lists(layout):
    dataset = StandardTrainSet(layout, patch_size=24, seed=0)
    assert dataset.degradations == DEGRADATIONS
    counts = [len(pairs) for pairs in dataset.pairs]
    assert counts == [2, 2, 2, 1, 1]  # the lists select 2 of 3 noise and rain images
    assert len(dataset) == 5 * max(counts)
    names = {Path(clean).name for _, clean in dataset.pairs[0]}
    assert names == {"00001.bmp", "a1.png"}
    rain = {(Path(d).name, Path(c).name) for d, c in dataset.pairs[1]}
    assert rain == {("rain-1.png", "norain-1.png"), ("rain-3.png", "norain-3.png")}
    haze = {(Path(d).name, Path(c).name) for d, c in dataset.pairs[2]}
    assert haze == {("0005_0.8_0.04.png", "0005.png"), ("0007_1_0.2.png", "0007.png")}
    for index in range(len(dataset)):
        degraded, clean, degradation_id = dataset[index]
        assert degradation_id == index % 5 and degraded.shape == clean.shape == (3, 24, 24)
        if degradation_id == 0:
            noise = degraded - clean
            assert 0.03 < noise.std() < 0.25  # sigma in {15, 25, 50} / 255, clipped
        else:
            assert torch.allclose(degraded + clean, torch.ones_like(clean), atol=1e-6)


def test_training_set_is_deterministic_and_degradation_order_follows_the_argument(layout):
    first = StandardTrainSet(layout, degradations=("lowlight", "rain"), patch_size=16, seed=4)
    second = StandardTrainSet(layout, degradations=("lowlight", "rain"), patch_size=16, seed=4)
    for index in range(len(first)):
        assert all(
            torch.equal(a, b) for a, b in zip(first[index][:2], second[index][:2], strict=True)
        )
    assert [first[i][2] for i in range(4)] == [0, 1, 0, 1]
    assert first.pairs[0][0][1].parent.name == "high"


def test_without_list_files_every_image_is_used(layout):
    shutil.rmtree(layout / "data_dir")
    dataset = StandardTrainSet(layout, degradations=("noise", "rain"))
    assert [len(pairs) for pairs in dataset.pairs] == [3, 3]


def test_missing_listed_files_warn_and_are_skipped(layout):
    (layout / "data_dir/rainy/rainTrain.txt").write_text("rainy/rain-1.png\nrainy/rain-9.png\n")
    with pytest.warns(UserWarning, match="1 of 2 listed files are missing"):
        dataset = StandardTrainSet(layout, degradations=("rain",))
    assert len(dataset.pairs[0]) == 1


def test_misnamed_folder_says_what_was_expected_and_found(layout):
    train = layout / "data" / "Train"
    (train / "Derain").rename(train / "derain")
    with pytest.raises(FileNotFoundError) as error:
        StandardTrainSet(layout, degradations=("rain",))
    message = str(error.value)
    assert str(train / "Derain") in message and "derain/" in message
    StandardTrainSet(
        layout, degradations=("noise", "haze")
    )  # other degradations do not need that folder
    (train / "Enhance/high").rename(train / "Enhance/normal")
    with pytest.raises(FileNotFoundError, match=r"low/ \+ high/ or low/ \+ gt/.*normal/"):
        StandardTrainSet(layout, degradations=("lowlight",))
    with pytest.raises(FileNotFoundError, match="Train"):
        StandardTrainSet(layout / "elsewhere")


def test_missing_clean_image_names_the_expected_file(layout):
    (layout / "data/Train/Derain/gt/norain-3.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"rain-3\.png.*'rain-3\.\*' or 'norain-3\.\*'"):
        StandardTrainSet(layout, degradations=("rain",))


def test_mismatched_pair_sizes_are_reported(layout):
    write_pair(layout / "data/Train/Enhance/low/2.png", layout / "scratch.png", 1, size=(30, 30))
    with pytest.raises(ValueError, match=r"2\.png.*\(3, 30, 30\).*\(3, 36, 44\)"):
        StandardTrainSet(layout, degradations=("lowlight",))[0]


@pytest.mark.parametrize("name", [n for n in STANDARD_TEST_SETS if n != "bsd68"])
def test_paired_test_sets(layout, name):
    dataset = StandardTestSet(layout, name)
    assert len(dataset) >= 1 and dataset.degradation_id == DEGRADATIONS.index(dataset.degradation)
    for degraded, clean, degradation_id in dataset:
        assert degraded.shape == clean.shape == (3, 36, 44)  # full images, not cropped
        assert torch.allclose(degraded + clean, torch.ones_like(clean), atol=1e-6)
        assert degradation_id == dataset.degradation_id


def test_rain100l_accepts_both_target_namings(layout):
    dataset = StandardTestSet(layout, "Rain100L")
    pairs = sorted((Path(d).name, Path(c).name) for d, c in dataset.pairs)
    assert pairs == [("rain-1.png", "norain-1.png"), ("rain-2.png", "rain-2.png")]


def test_bsd68_noise_is_seeded_per_sigma(layout):
    sigma25 = StandardTestSet(layout, "bsd68", sigma=25)
    again = StandardTestSet(layout, "bsd68", sigma=25)
    sigma50 = StandardTestSet(layout, "bsd68", sigma=50)
    degraded, clean, degradation_id = sigma25[0]
    assert degradation_id == 0 and degraded.shape == clean.shape == (3, 40, 48)
    assert torch.equal(degraded, again[0][0])
    assert not torch.equal(degraded, StandardTestSet(layout, "bsd68", sigma=25, seed=1)[0][0])
    assert (sigma50[0][0] - clean).std() > 1.5 * (degraded - clean).std()
    with pytest.raises(ValueError, match="sigma is required"):
        StandardTestSet(layout, "bsd68")
    with pytest.raises(ValueError, match="only applies to bsd68"):
        StandardTestSet(layout, "lol", sigma=15)
    with pytest.raises(ValueError, match=r"sigma must be in \(0, 255\]"):
        StandardTestSet(layout, "bsd68", sigma=-3)
    with pytest.raises(ValueError, match="sigma must be in"):
        StandardTrainSet(layout, degradations=("noise",), noise_sigmas=(15, 300))


def test_promptir_style_test_folder_and_degradation_ids(tmp_path):
    test = tmp_path / "test"  # PromptIR keeps test/ next to data/, not inside it
    write_pair(test / "dehaze/input/0003_0.85_0.1.png", test / "dehaze/target/0003.png", 1)
    write_clean(test / "denoise/bsd68/img.png", 2)
    haze = StandardTestSet(tmp_path, "sots_outdoor", degradations=("rain", "haze"))
    assert haze.degradation_id == 1 and len(haze) == 1
    assert len(StandardTestSet(tmp_path, "bsd68", sigma=15)) == 1
    with pytest.raises(ValueError, match="not among the degradations"):
        StandardTestSet(tmp_path, "sots_outdoor", degradations=("rain",))


def test_test_set_errors(tmp_path, layout):
    with pytest.raises(ValueError, match="bsd68, rain100l, sots_outdoor, gopro, lol"):
        StandardTestSet(layout, "rain800")
    with pytest.raises(FileNotFoundError, match=r"data/test' or '.*test'"):
        StandardTestSet(tmp_path / "nowhere", "lol")
    shutil.rmtree(layout / "data/test/enhance")
    with pytest.raises(FileNotFoundError, match="enhance") as error:
        StandardTestSet(layout, "lol")
    assert "deblur/" in str(error.value)  # lists what the test folder does contain
