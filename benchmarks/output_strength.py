"""Output strengths per degradation (``PIPConfig.output_strength``) fitted for the benchmark
pages after training, on validation photos: the photos ``sensor_tuning.py`` tunes the sensor on
(scikit-image's sample photos). They are in no split of the bundled photos: the training photos
would fit strengths too close to 1 (a model restores them better than unseen ones), and the
held-out and out-of-domain sets are what the pages report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from sensor_tuning import VALIDATION, validation_photos

from pip_adapter.data import PairedImages, build_eval_set
from pip_adapter.files import write_json
from pip_adapter.injection import PIPModel
from pip_adapter.training import calibrate_output_strength

VALIDATION_SEED = 0  # the degradation draws on the validation photos
DESCRIPTION = (
    "fitted after training on validation photos (`sensor_tuning.validation_photos()`: "
    f"scikit-image's sample photos, a stereo pair's left view and {', '.join(VALIDATION)}; "
    "the photos the sensor's settings were chosen on, in no split of the bundled photos; the "
    "held-out and out-of-domain photos play no part)"
)


def validation_pairs(degradations: Sequence[str], crop: int | None = None) -> PairedImages:
    """Every validation photo under every degradation (``crop``: centre crops, cut as the
    page's held-out photos are)."""
    return build_eval_set(validation_photos(), degradations, seed=VALIDATION_SEED, crop=crop)


def fit_strengths(model: PIPModel, pairs: PairedImages) -> dict[str, float]:
    """Set ``model``'s output strengths to those fitted on ``pairs``; returns every restorable
    degradation's strength (1 where the fit reached it)."""
    calibrate_output_strength(model, pairs.degraded, pairs.clean, pairs.labels)
    strengths = dict(zip(model.degradations, model.config.strengths(), strict=True))
    return {name: strengths[name] for name in model.restorable_degradations}


def tensors_digest(tensors: Iterable[torch.Tensor]) -> str:
    """A digest of tensors' shapes and values, in order."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def sets_digest(sets: Mapping[str, PairedImages]) -> str:
    """The identity of a page's evaluation sets: their names and every image pair."""
    pairs = [
        t
        for dataset in sets.values()
        for pair in zip(dataset.degraded, dataset.clean, strict=True)
        for t in pair
    ]
    return f"{sorted(sets)}:{tensors_digest(pairs)}"


def files_digest(folder: Path) -> str:
    """A digest of every file in ``folder`` (names and bytes): a trained adapter's identity."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached(path: Path, key: dict[str, Any], measure: Callable[[], dict]) -> dict:
    """``measure()``'s results, stored in ``path`` under ``key`` and reused while it holds."""
    validation = tensors_digest(validation_photos())
    key = {**json.loads(json.dumps(key)), "validation": validation, "seed": VALIDATION_SEED}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("settings") == key:
            return saved["results"]
    results = measure()
    write_json(path, {"settings": key, "results": results})
    return results
