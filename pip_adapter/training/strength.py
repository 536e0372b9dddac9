"""Output strength per degradation (``PIPConfig.output_strength``), fitted after training on
labelled photos the model was not trained on.

A model that cannot improve a degradation on unseen photos should hand back something close to
its input rather than something worse. With strength ``a`` the model returns
``x + a · (f(x) − x)``; the ``a`` of least squared error against the clean photos has a closed
form, computed per degradation and clipped to [0, 1].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch

from pip_adapter.injection import PIPModel
from pip_adapter.injection.model import check_blendable
from pip_adapter.vocabulary import degradation_index

__all__ = ["calibrate_output_strength", "fit_output_strength"]


def fit_output_strength(
    degraded: Sequence[torch.Tensor],
    restored: Sequence[torch.Tensor],
    clean: Sequence[torch.Tensor],
) -> float:
    """The strength ``a`` in [0, 1] whose ``x + a · (f − x)`` is closest (squared error over
    every pixel of every image) to the clean images: ``Σ⟨f − x, y − x⟩ / Σ‖f − x‖²``, clipped.
    ``degraded`` (``x``), ``restored`` (``f``) and ``clean`` (``y``) are matching images of any
    sizes; 1 when the restorations equal their inputs (any strength then gives the same)."""
    if not len(degraded) == len(restored) == len(clean) or not len(degraded):
        raise ValueError(
            "fit_output_strength takes as many degraded, restored and clean images (at least "
            f"one), got {len(degraded)}, {len(restored)} and {len(clean)}"
        )
    numerator = denominator = 0.0
    for x, f, y in zip(degraded, restored, clean, strict=True):
        if not x.shape == f.shape == y.shape:
            raise ValueError(
                "each degraded, restored and clean image must have the same shape, got "
                f"{tuple(x.shape)}, {tuple(f.shape)} and {tuple(y.shape)}"
            )
        change, wanted = (f - x).double(), (y - x).double()
        numerator += float((change * wanted).sum())
        denominator += float((change * change).sum())
    if denominator == 0:
        return 1.0
    return min(1.0, max(0.0, numerator / denominator))


def _label(name: str | int, model: PIPModel) -> str:
    """A restorable degradation of ``model`` given by name or id, else a ValueError."""
    names = model.degradations
    if isinstance(name, int) and not isinstance(name, bool) and 0 <= name < len(names):
        name = names[name]
    degradation_index(name, model.restorable_degradations)  # a clear error if it is none
    return str(name)


@torch.no_grad()
def calibrate_output_strength(
    model: PIPModel,
    degraded: Sequence[torch.Tensor],
    clean: Sequence[torch.Tensor],
    degradations: Sequence[str | int],
) -> PIPModel:
    """Fit ``model.config.output_strength`` on labelled photos it was not trained on.

    ``degraded`` and ``clean`` are matching 3×H×W or 1×3×H×W images of any sizes (whole
    photos, or crops as in use), ``degradations`` the true name (or id) of each. Every
    degradation among them gets the strength of least squared error of the model's output at
    full strength steered by that label (``fit_output_strength``); the others keep theirs.
    Saved with the adapter (``adapter_config.json``) and honoured by everything that calls the
    model (exports included). Returns the model; on an error it is left as it was.
    """
    if not len(degraded) == len(clean) == len(degradations) or not len(degraded):
        raise ValueError(
            "calibrate_output_strength takes as many degraded images, clean images and "
            f"degradations (at least one), got {len(degraded)}, {len(clean)} and "
            f"{len(degradations)}"
        )
    labels = [_label(name, model) for name in degradations]
    config, training = model.config, model.training
    device = next(model.parameters()).device
    pairs: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = defaultdict(list)
    model.config = config.replace(output_strength={})  # the network's own output
    model.eval()
    try:
        for x, y, label in zip(degraded, clean, labels, strict=True):
            x = x.reshape(-1, *x.shape[-3:]).to(device)
            restored = model(x, degradation=label)
            check_blendable(x, restored)
            pairs[label].append((x, restored, y.reshape(-1, *y.shape[-3:]).to(device)))
    finally:
        model.config = config
        model.train(training)
    fitted = {name: fit_output_strength(*zip(*items, strict=True)) for name, items in pairs.items()}
    model.config = config.replace(output_strength={**dict(config.output_strength), **fitted})
    return model
