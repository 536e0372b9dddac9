"""Output strengths per degradation (``PIPConfig.output_strength``) fitted for the benchmark
pages after training, on validation photos: the photos ``sensor_tuning.py`` tunes the sensor on
(scikit-image's sample photos). They are in no split of the bundled photos: the training photos
would fit strengths too close to 1 (a model restores them better than unseen ones), and the
held-out and out-of-domain sets are what the pages report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sensor_tuning import VALIDATION, validation_photos

from pip_adapter.data import PairedImages, build_eval_set
from pip_adapter.files import write_json
from pip_adapter.injection import PIPModel
from pip_adapter.training import calibrate_output_strength

VALIDATION_SEED = 0  # the degradation draws on the validation photos
PHOTOS = ("stereo_motorcycle", *VALIDATION)  # validation_photos(), in order
DESCRIPTION = (
    "fitted after training on validation photos (scikit-image's sample photos "
    f"{', '.join(PHOTOS)}: the photos the sensor's settings were chosen on, in no split of the "
    "bundled photos; the held-out and out-of-domain photos play no part)"
)


def validation_pairs(degradations: Sequence[str], crop: int | None = None) -> PairedImages:
    """Every validation photo under every degradation (``crop``: centre crops, cut as the
    page's held-out photos are)."""
    return build_eval_set(validation_photos(), degradations, seed=VALIDATION_SEED, crop=crop)


def fit_strengths(model: PIPModel, pairs: PairedImages) -> dict[str, float]:
    """Set ``model``'s output strengths to those fitted on ``pairs``; returns every restorable
    degradation's strength (1 where the fit reached it)."""
    names = [pairs.degradations[i] for i in pairs.degradation_ids]
    calibrate_output_strength(model, pairs.degraded, pairs.clean, names)
    strengths = dict(zip(model.degradations, model.config.strengths(), strict=True))
    return {name: strengths[name] for name in model.restorable_degradations}


def files_digest(folder: Path) -> str:
    """A digest of every file in ``folder`` (names and bytes): a trained adapter's identity."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached(path: Path, key: dict[str, Any], measure: Callable[[], dict]) -> dict:
    """``measure()``'s results, stored in ``path`` under ``key`` and reused while it holds."""
    key = {**json.loads(json.dumps(key)), "validation": list(PHOTOS), "seed": VALIDATION_SEED}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("settings") == key:
            return saved["results"]
    results = measure()
    write_json(path, {"settings": key, "results": results})
    return results
