"""Data sources by name, as the command line and the recipes take them: ``"samples"`` (the
bundled photos), a folder of clean images, or the root of the AirNet / PromptIR layout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from pip_adapter.data.io import check_images, list_images, read_image
from pip_adapter.data.photos import split_train_test
from pip_adapter.data.standard import STANDARD_TEST_SETS, StandardTestSet, StandardTrainSet
from pip_adapter.data.synthetic import (
    PairedImages,
    SyntheticAllInOne,
    build_eval_set,
    min_training_side,
)

__all__ = ["eval_data", "photo_pairs", "training_data"]

# the paper's test set for each degradation; BSD68 is evaluated at the middle noise level
TEST_SET_FOR_DEGRADATION = {d: name for name, (d, _, _) in STANDARD_TEST_SETS.items()}
BSD68_SIGMA = 25


class _TestSets(ConcatDataset):
    """The paper's test sets of several degradations, one after another, with their names
    (``evaluate`` reads ``.degradations``)."""

    def __init__(self, sets: list[StandardTestSet], degradations: tuple[str, ...]) -> None:
        super().__init__(sets)
        self.degradations = degradations


def _is_standard_layout(root: Path) -> bool:
    return (root / "data" / "Train").is_dir() or (root / "Train").is_dir()


def _folder_split(root: Path) -> tuple[list[Path], list[Path]]:
    paths = list_images(root, recursive=True)
    if len(paths) < 2:
        raise ValueError(
            f"--data {root}: need at least 2 images to hold one out, found {len(paths)}"
        )
    return split_train_test(paths)


def eval_data(spec: str, degradations: tuple[str, ...], seed: int = 0) -> Dataset:
    """Evaluation pairs for ``--data``: held-out bundled photos, held-out images of a folder,
    or the paper's test sets of the standard layout."""
    if spec == "samples":
        return build_eval_set(degradations=degradations, seed=seed, crop=256)
    root = Path(spec)
    if _is_standard_layout(root):
        missing = [t for t in degradations if t not in TEST_SET_FOR_DEGRADATION]
        if missing:
            raise ValueError(f"the standard layout has no test set for {missing}")
        sets = [
            StandardTestSet(
                root,
                TEST_SET_FOR_DEGRADATION[t],
                sigma=BSD68_SIGMA if t == "noise" else None,
                seed=seed,
                degradations=degradations,
            )
            for t in degradations
        ]
        return _TestSets(sets, degradations)
    _, test = _folder_split(root)
    return photo_pairs(test, degradations, seed)


def photo_pairs(paths: Sequence[Path], degradations: tuple[str, ...], seed: int) -> PairedImages:
    """The photos at ``paths`` (one error listing every unreadable file) as evaluation pairs:
    256² centre crops under every degradation, named by their file stems."""
    check_images(paths)
    images = [read_image(p) for p in paths]
    return build_eval_set(images, degradations, seed=seed, crop=256, names=[p.stem for p in paths])


def training_data(
    spec: str, degradations: tuple[str, ...], patch_size: int, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """(training set, evaluation set) for ``--data``."""
    train: Dataset
    if spec == "samples":
        train = SyntheticAllInOne(degradations=degradations, patch_size=patch_size, seed=seed)
    else:
        root = Path(spec)
        if not root.is_dir():
            raise FileNotFoundError(f"--data {spec}: no such folder (or use 'samples')")
        if _is_standard_layout(root):
            train = StandardTrainSet(root, degradations, patch_size=patch_size, seed=seed)
        else:
            train_paths, test_paths = _folder_split(root)
            # every image of the folder at once, so that one error lists all the bad files
            check_images([*train_paths, *test_paths], min_training_side(patch_size))
            train = SyntheticAllInOne(train_paths, degradations, patch_size=patch_size, seed=seed)
    return train, eval_data(spec, degradations, seed)
