"""Evaluate restoration per degradation, as the field reports it: PSNR / SSIM per image, then
averaged per degradation, then over degradations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import cast

import torch
from torch import nn
from torch.utils.data import Dataset

from pip_adapter.architectures import size_requirements
from pip_adapter.conditioning import CLEAN
from pip_adapter.metrics import psnr, ssim
from pip_adapter.padding import crop_to, pad_to_requirements

__all__ = ["average_report", "evaluate", "restore"]

METRICS = ("psnr", "ssim", "input_psnr", "input_ssim")


def restore(
    model: nn.Module, degraded: torch.Tensor, degradation: object | None = None
) -> torch.Tensor:
    """Run any model on ``degraded`` (B×3×H×W): a PIPModel with ``degradation`` (``None`` asks
    its sensor), or a plain backbone, padded to the size it needs and cropped back."""
    if degradation is not None:
        return model(degraded, degradation=degradation)
    height, width = degraded.shape[-2:]
    padded = pad_to_requirements(degraded, size_requirements(model))
    return crop_to(model(padded), padded, height, width)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    degradations: Sequence[str] | None = None,
    conditioned: bool = True,
    device: torch.device | str | None = None,
) -> dict[str, dict[str, float]]:
    """Mean PSNR / SSIM of ``model`` on ``(degraded, clean, degradation_id)`` items, per
    degradation.

    ``conditioned`` passes each item's degradation name as ``degradation=`` (a PIPModel steered
    by labels; names, not ids, so that the model may know more, e.g. ``"clean"``); otherwise the
    model is called on the image alone (a plain backbone, or a PIPModel in blind mode). Returns
    ``{degradation: {"psnr", "ssim", "input_psnr", "input_ssim"}}`` plus an ``"average"`` entry
    over degradations. A ``"clean"`` entry (images that need nothing, whose input PSNR is
    infinite) says how much the model changes them and is left out of the average. The model
    is put in eval mode and restored afterwards.
    """
    degradations = tuple(
        degradations if degradations is not None else getattr(dataset, "degradations", ())
    )
    if not degradations:
        raise ValueError(
            "evaluate needs the degradation names: pass degradations= or a dataset with "
            ".degradations"
        )
    if device is None:
        device = next(model.parameters()).device
    training = model.training
    model.eval()
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    try:
        for index in range(len(cast(Sized, dataset))):
            degraded, clean, degradation_id = dataset[index]
            degraded, clean = degraded[None].to(device), clean[None].to(device)
            label = degradations[degradation_id] if conditioned else None
            output = restore(model, degraded, label).float().clamp(0, 1)
            entry = scores[degradations[degradation_id]]
            entry["psnr"].append(psnr(output, clean).item())
            entry["ssim"].append(ssim(output, clean).item())
            entry["input_psnr"].append(psnr(degraded.float(), clean).item())
            entry["input_ssim"].append(ssim(degraded.float(), clean).item())
    finally:
        model.train(training)
    report = {
        degradation: {m: sum(v) / len(v) for m, v in scores[degradation].items()}
        for degradation in degradations
        if degradation in scores
    }
    report["average"] = average_report(report, METRICS)
    return report


def average_report(
    report: Mapping[str, Mapping[str, float]], metrics: Iterable[str]
) -> dict[str, float]:
    """A report's ``"average"`` entry: each of ``metrics`` averaged over its degradations (any
    ``"average"`` entry it has is not one). ``"clean"``, which measures what a model does to
    images that need nothing, is left out unless it is all there is."""
    entries = {d: r for d, r in report.items() if d != "average"}
    averaged = [r for d, r in entries.items() if d != CLEAN] or list(entries.values())
    return {m: sum(r[m] for r in averaged) / len(averaged) for m in metrics}
