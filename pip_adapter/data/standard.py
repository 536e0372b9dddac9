"""The standard all-in-one benchmark data, in the folder layout of AirNet, PromptIR and PIP.

Training data (``root`` is the folder holding ``data/`` and, optionally, ``data_dir/``)::

    data/Train/Denoise/*.png|jpg|bmp            clean BSD400 + WED; noise is synthesised
    data/Train/Derain/rainy/rain-N.png          Rain100L train ("Train100L")
    data/Train/Derain/gt/norain-N.png
    data/Train/Dehaze/synthetic/**/ID_A_B.jpg   RESIDE OTS (A: airlight, B: beta)
    data/Train/Dehaze/original/ID.jpg
    data/Train/Deblur/{blur,sharp}/NAME         GoPro (same file name in both)
    data/Train/Enhance/{low,high}/NAME          LOL (``gt`` is accepted for ``high``)
    data_dir/noisy/denoise.txt, data_dir/rainy/rainTrain.txt, data_dir/hazy/hazy_outside.txt
                                                optional lists restricting the files used

Test data (``data/test/`` or ``test/``)::

    denoise/bsd68[/original]/*                  BSD68 clean; noise of a chosen sigma, seeded
    derain/Rain100L/{input,target}/             target: same name, or rain-N -> norain-N
    dehaze[/outdoor]/{input,target}/ID_*.png    SOTS outdoor; target ID.png
    deblur/{blur,sharp}/ or GOPRO_deblur/test/{blur,sharp}/
    enhance/{low,high}/                         LOL eval15

Images are not cropped to a multiple of 16 as the original code does; pad at inference instead
(``pip_adapter.restore_tiled`` does). A missing or misnamed folder raises
FileNotFoundError naming the expected path and what was found instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from pip_adapter.conditioning import DEFAULT_DEGRADATIONS
from pip_adapter.data._patches import (
    DegradationBalancedPatches,
    item_generator,
    paired_crop,
    paired_dihedral,
    randint,
)
from pip_adapter.data.degradations.noise import NOISE_SIGMAS, GaussianNoise
from pip_adapter.data.io import list_images, read_image

__all__ = [
    "STANDARD_TEST_SETS",
    "STANDARD_TRAIN_FOLDERS",
    "StandardTestSet",
    "StandardTrainSet",
]

STANDARD_TRAIN_FOLDERS: dict[str, str] = {
    "noise": "Denoise",
    "rain": "Derain",
    "haze": "Dehaze",
    "blur": "Deblur",
    "lowlight": "Enhance",
}

# test set -> (degradation, candidate folders under the test root, (input, target) names)
STANDARD_TEST_SETS: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "bsd68": ("noise", ("denoise/bsd68/original", "denoise/bsd68", "denoise/BSD68"), ()),
    "rain100l": ("rain", ("derain/Rain100L",), (("input", "target"),)),
    "sots_outdoor": (
        "haze",
        ("dehaze/outdoor", "dehaze"),
        (("input", "target"), ("hazy", "gt")),
    ),
    "gopro": (
        "blur",
        ("deblur", "GOPRO_deblur/test", "GoPro/test"),
        (("blur", "sharp"), ("input", "target")),
    ),
    "lol": ("lowlight", ("enhance", "LOL/eval15"), (("low", "high"), ("low", "gt"))),
}

_TRAIN_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "rain": (("rainy", "gt"),),
    "haze": (("synthetic", "original"),),
    "blur": (("blur", "sharp"), ("input", "target")),
    "lowlight": (("low", "high"), ("low", "gt")),
}
_TRAIN_LISTS = {
    "noise": "noisy/denoise.txt",
    "rain": "rainy/rainTrain.txt",
    "haze": "hazy/hazy_outside.txt",
}

Pair = tuple[Path | None, Path]  # (degraded, clean); degraded None: synthesise the noise
NameRule = Callable[[str], Iterable[str]]


def _describe(path: Path) -> str:
    """What exists at ``path`` or, if nothing, in its nearest existing parent."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{str(probe)!r} is not a folder"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in probe.iterdir())
    shown = ", ".join(entries[:20]) + (
        f", ... ({len(entries)} entries)" if len(entries) > 20 else ""
    )
    return f"{str(probe)!r} contains: {shown or 'nothing'}"


def _find_dir(base: Path, candidates: Sequence[str], what: str) -> Path:
    """The first existing ``base / candidate`` folder, else FileNotFoundError saying what exists."""
    for candidate in candidates:
        if (base / candidate).is_dir():
            return base / candidate
    expected = " or ".join(repr(str(base / c)) for c in candidates)
    raise FileNotFoundError(
        f"{what}: expected the folder {expected}; {_describe(base / candidates[0])}"
    )


def _find_pair_dirs(
    folder: Path, options: Sequence[tuple[str, str]], what: str
) -> tuple[Path, Path]:
    for degraded, clean in options:
        if (folder / degraded).is_dir() and (folder / clean).is_dir():
            return folder / degraded, folder / clean
    expected = " or ".join(f"{degraded}/ + {clean}/" for degraded, clean in options)
    raise FileNotFoundError(
        f"{what}: expected sub-folders {expected} in {str(folder)!r}; {_describe(folder)}"
    )


def _match(degraded: Sequence[Path], clean_dir: Path, rule: NameRule, what: str) -> list[Pair]:
    """Pair each degraded file with the clean file whose stem ``rule`` proposes (any extension)."""
    by_stem: dict[str, Path] = {}
    for path in list_images(clean_dir):
        by_stem.setdefault(path.stem, path)
    pairs: list[Pair] = []
    for path in degraded:
        stems = list(rule(path.stem))
        clean = next((by_stem[s] for s in stems if s in by_stem), None)
        if clean is None:
            raise FileNotFoundError(
                f"{what}: no clean image for {str(path)!r}; expected one named "
                f"{' or '.join(repr(s + '.*') for s in stems)} in {str(clean_dir)!r}"
            )
        pairs.append((path, clean))
    return pairs


def _same_name(stem: str) -> Iterable[str]:
    return (stem,)


def _rain_name(stem: str) -> Iterable[str]:
    # Rain100L: rain-12 -> norain-12 (some copies keep the same name in both folders)
    return (stem, stem.replace("rain", "norain", 1))


def _haze_name(stem: str) -> Iterable[str]:
    # RESIDE: 0025_0.8_0.04 (id, airlight, beta) -> 0025
    return (stem.split("_")[0],)


_NAME_RULES: dict[str, NameRule] = {
    "rain": _rain_name,
    "haze": _haze_name,
    "blur": _same_name,
    "lowlight": _same_name,
}


def _read_list(list_dir: Path | None, degradation: str) -> list[str] | None:
    if list_dir is None or degradation not in _TRAIN_LISTS:
        return None
    path = list_dir / _TRAIN_LISTS[degradation]
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _listed(folder: Path, entries: list[str] | None, recursive: bool, what: str) -> list[Path]:
    """Image files in ``folder``, or the entries of a list file (paths relative to ``folder``).

    Listed files that are missing are skipped with a warning (partial downloads); an empty
    result raises FileNotFoundError.
    """
    if entries is None:
        files = list_images(folder, recursive=recursive)
        if not files:
            raise FileNotFoundError(
                f"{what}: no image files in {str(folder)!r}; {_describe(folder)}"
            )
        return files
    files = [folder / entry for entry in entries if (folder / entry).is_file()]
    if not files:
        raise FileNotFoundError(
            f"{what}: none of the {len(entries)} files in the list (e.g. {entries[0]!r}) is in "
            f"{str(folder)!r}; {_describe(folder)}"
        )
    if len(files) < len(entries):
        warnings.warn(
            f"{what}: {len(entries) - len(files)} of {len(entries)} listed files are missing "
            f"from {str(folder)!r}; using the {len(files)} present",
            stacklevel=3,
        )
    return files


def _train_pairs(train_dir: Path, degradation: str, list_dir: Path | None) -> list[Pair]:
    folder = _find_dir(
        train_dir, [STANDARD_TRAIN_FOLDERS[degradation]], f"{degradation} training data"
    )
    entries = _read_list(list_dir, degradation)
    what = f"{degradation} training data"
    if degradation == "noise":
        return [(None, path) for path in _listed(folder, entries, False, what)]
    degraded_dir, clean_dir = _find_pair_dirs(folder, _TRAIN_PAIRS[degradation], what)
    if entries is not None:
        degraded = _listed(folder, entries, False, what)
    else:
        degraded = _listed(degraded_dir, None, degradation == "haze", what)
    return _match(degraded, clean_dir, _NAME_RULES[degradation], what)


def _data_dir(root: Path, name: str) -> Path:
    return _find_dir(root, [f"data/{name}", name], f"{name} data")


class StandardTrainSet(DegradationBalancedPatches):
    """Training patches from the standard all-in-one sets (layout in the module docstring).

    Item ``i`` has degradation ``i % len(degradations)`` (balanced over degradations, whatever
    the sets' sizes); the pair, crop, flip / rotation and noise come from a generator seeded by
    ``(seed, epoch, i)``.
    Noise is synthesised on the clean denoising images with a sigma drawn from
    ``noise_sigmas`` (the paper's setting: one noise degradation covering 15, 25 and 50).

    Args:
        root: the folder that holds ``data/Train`` (or ``Train``) and optionally ``data_dir``.
        degradations: built-in degradations to load, in id order (any subset / order of the five).
        patch_size: side of the square patches.
        samples_per_degradation: items per degradation and epoch; default: the size of the
            largest set.
        seed: base seed.
        augment: random flip / 90° rotation.
        noise_sigmas: noise levels (0–255 scale) for the noise degradation.
        list_dir: folder of the list files; default ``root/data_dir`` if it exists.

    Items are ``(degraded, clean, degradation_id)``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
        patch_size: int = 128,
        samples_per_degradation: int | None = None,
        seed: int = 0,
        augment: bool = True,
        noise_sigmas: Sequence[float] = NOISE_SIGMAS,
        list_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        root = Path(root)
        self.degradations = tuple(degradations)
        unknown = [d for d in self.degradations if d not in STANDARD_TRAIN_FOLDERS]
        if (
            unknown
            or not self.degradations
            or len(set(self.degradations)) != len(self.degradations)
        ):
            raise ValueError(
                f"degradations must be distinct names among {', '.join(STANDARD_TRAIN_FOLDERS)}, "
                f"got {self.degradations}"
            )
        if not noise_sigmas:
            raise ValueError("noise_sigmas is empty")
        train_dir = _data_dir(root, "Train")
        lists = Path(list_dir) if list_dir is not None else root / "data_dir"
        if list_dir is not None and not lists.is_dir():
            raise FileNotFoundError(f"list_dir {str(lists)!r} is not a folder")
        self.pairs = [
            _train_pairs(train_dir, degradation, lists if lists.is_dir() else None)
            for degradation in self.degradations
        ]
        super().__init__(samples_per_degradation or max(len(p) for p in self.pairs), seed, augment)
        self.patch_size = patch_size
        self._noises = [GaussianNoise(sigma=sigma) for sigma in noise_sigmas]

    def make_item(
        self, degradation_id: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = self.pairs[degradation_id]
        degraded_path, clean_path = pairs[randint(len(pairs), generator)]
        clean = read_image(clean_path)
        if degraded_path is None:
            (clean,) = paired_crop((clean,), self.patch_size, generator)
            if self.augment:
                (clean,) = paired_dihedral((clean,), generator)
            noise = self._noises[randint(len(self._noises), generator)]
            return noise(clean, generator=generator), clean
        degraded = read_image(degraded_path)
        if degraded.shape != clean.shape:
            raise ValueError(
                f"{str(degraded_path)!r} is {tuple(degraded.shape)} but its clean image "
                f"{str(clean_path)!r} is {tuple(clean.shape)}"
            )
        degraded, clean = paired_crop((degraded, clean), self.patch_size, generator)
        if self.augment:
            degraded, clean = paired_dihedral((degraded, clean), generator)
        return degraded, clean


class StandardTestSet(Dataset):
    """One standard test set: ``bsd68``, ``rain100l``, ``sots_outdoor``, ``gopro`` or ``lol``.

    Full images (use ``batch_size=1``); items are ``(degraded, clean, degradation_id)`` with
    ``degradation_id = degradations.index(degradation)``. For ``bsd68`` the noise of level
    ``sigma`` (required; 15, 25 and 50 are the reported ones) is drawn with a generator seeded
    by ``(seed, index, sigma)``, so every run evaluates on the same noisy images. ``files``
    lists the degraded (for bsd68: clean) file of each item.

    Args:
        root: the folder that holds ``data/test`` (or ``test``).
        name: the test set.
        sigma: noise level for ``bsd68`` (0–255 scale).
        seed: noise seed for ``bsd68``.
        degradations: the degradation tuple defining the ids.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        name: str,
        sigma: float | None = None,
        seed: int = 0,
        degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
    ) -> None:
        key = name.lower()
        if key not in STANDARD_TEST_SETS:
            raise ValueError(f"unknown test set {name!r}; valid: {', '.join(STANDARD_TEST_SETS)}")
        self.degradation, candidates, sub_folders = STANDARD_TEST_SETS[key]
        if self.degradation not in degradations:
            raise ValueError(
                f"test set {name!r} is {self.degradation!r}, which is not among the degradations "
                f"{tuple(degradations)}"
            )
        if (sigma is None) == (key == "bsd68"):
            raise ValueError("sigma is required for bsd68 and only applies to bsd68")
        self.name, self.sigma, self.seed = key, sigma, seed
        self._noise = GaussianNoise(sigma=sigma) if sigma is not None else None
        self.degradation_id = tuple(degradations).index(self.degradation)
        folder = _find_dir(_data_dir(Path(root), "test"), candidates, f"test set {key}")
        if key == "bsd68":
            self.pairs: list[Pair] = [(None, p) for p in _listed(folder, None, False, key)]
        else:
            degraded_dir, clean_dir = _find_pair_dirs(folder, sub_folders, f"test set {key}")
            degraded = _listed(degraded_dir, None, False, key)
            self.pairs = _match(
                degraded, clean_dir, _NAME_RULES[self.degradation], f"test set {key}"
            )
        self.files = [str(d if d is not None else c) for d, c in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        degraded_path, clean_path = self.pairs[index]
        clean = read_image(clean_path)
        if degraded_path is None:
            # only bsd68 lists no degraded files, and it requires sigma
            assert self._noise is not None and self.sigma is not None
            generator = item_generator(self.seed, index, round(float(self.sigma) * 1000))
            degraded = self._noise(clean, generator=generator)
        else:
            degraded = read_image(degraded_path)
        return degraded, clean, self.degradation_id
