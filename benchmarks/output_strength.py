"""Output strengths (``PIPConfig.output_strength``) fitted for the benchmark pages after
training, on validation photos: scikit-image's sample photos, the first of those
``sensor_tuning.py`` tunes the sensor on. They are in no split of the bundled photos: the
training photos would fit strengths too close to 1 (a model restores them better than unseen
ones), and the held-out and out-of-domain sets are what the pages report.

``restorations`` and ``Blended`` give every model the same treatment as PIP's option, so that
baselines are compared at fitted strength too: ``x + a · (model(x) − x)``, one strength per
degradation for a model steered by labels, one for all (``ALL``) for a blind one, fitted by the
library's ``fit_output_strengths``."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from sensor_tuning import VALIDATION, validation_photos
from torch import nn

from pip_adapter.data import PairedImages, build_eval_set
from pip_adapter.evaluation import restore
from pip_adapter.files import write_json
from pip_adapter.injection import PIPModel
from pip_adapter.injection.model import blend_output
from pip_adapter.training import calibrate_output_strength
from pip_adapter.training.strength import Triple

VALIDATION_SEED = 0  # the degradation draws on the validation photos
DESCRIPTION = (
    "fitted after training on validation photos (`output_strength.strength_photos()`: "
    f"scikit-image's sample photos, a stereo pair's left view and {', '.join(VALIDATION)}; "
    "the first of the photos the sensor's settings are chosen on, in no split of the bundled "
    "photos; the held-out and out-of-domain photos play no part)"
)


def strength_photos() -> list[torch.Tensor]:
    """The photos strengths are fitted on: scikit-image's, with which the sensor's validation
    photos begin (a stereo pair's left view, then ``VALIDATION``)."""
    return validation_photos()[: 1 + len(VALIDATION)]


def validation_pairs(
    degradations: Sequence[str], crop: int | None = None, photos: int | None = None
) -> PairedImages:
    """Every validation photo (the first ``photos`` only, if given) under every degradation
    (``crop``: centre crops, cut as the page's held-out photos are)."""
    chosen = strength_photos()[:photos]
    return build_eval_set(chosen, degradations, seed=VALIDATION_SEED, crop=crop)


ALL = "all"  # the strength of a blind model: one for every image


def fit_strengths(model: PIPModel, pairs: PairedImages, objective: str = "mse") -> dict[str, float]:
    """Set ``model``'s output strengths to those fitted on ``pairs``; returns every restorable
    degradation's strength (1 where the fit reached it)."""
    calibrate_output_strength(model, pairs.degraded, pairs.clean, pairs.labels, objective)
    strengths = dict(zip(model.degradations, model.config.strengths(), strict=True))
    return {name: strengths[name] for name in model.restorable_degradations}


@torch.no_grad()
def restorations(model: nn.Module, pairs: PairedImages, labelled: bool) -> dict[str, list[Triple]]:
    """``(degraded, restored at full strength, clean)`` of every pair, grouped as strengths are
    fitted: by degradation for a model steered by labels (each image restored with its own),
    all in ``ALL`` for a blind one."""
    groups: dict[str, list[Triple]] = defaultdict(list)
    training = model.training
    model.eval()
    try:
        for x, y, name in zip(pairs.degraded, pairs.clean, pairs.labels, strict=True):
            x = x[None]
            restored = restore(model, x, name if labelled else None)
            groups[name if labelled else ALL].append((x, restored, y[None]))
    finally:
        model.train(training)
    return dict(groups)


class Blended(nn.Module):
    """``model``'s output as ``x + a · (model(x) − x)`` (the library's ``blend_output``, as a
    PIPModel blends its ``output_strength``): ``strengths`` by degradation name, called with
    ``degradation=``, or ``{ALL: a}`` for a blind model, called on the image alone."""

    def __init__(self, model: nn.Module, strengths: Mapping[str, float]) -> None:
        super().__init__()
        self.model, self.strengths = model, dict(strengths)

    def forward(self, x: torch.Tensor, degradation: str | None = None) -> torch.Tensor:
        strength = self.strengths[ALL if degradation is None else degradation]
        return blend_output(x, restore(self.model, x, degradation), strength)


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


def cached(path: Path, key: dict[str, Any], measure: Callable[[], dict]) -> dict:
    """``measure()``'s results, stored in ``path`` under ``key`` and reused while it holds."""
    validation = tensors_digest(strength_photos())
    key = {**json.loads(json.dumps(key)), "validation": validation, "seed": VALIDATION_SEED}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("settings") == key:
            return saved["results"]
    results = measure()
    write_json(path, {"settings": key, "results": results})
    return results
