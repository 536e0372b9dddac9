"""Output strength per degradation (``PIPConfig.output_strength``), fitted after training on
labelled photos the model was not trained on; and blur's strength per image from how blurred
the input looks (``PIPConfig.blur_strength``).

A model that cannot improve a degradation on unseen photos should hand back something close to
its input rather than something worse. With strength ``a`` the model returns
``x + a · (f(x) − x)``, one ``a`` in [0, 1] per degradation, chosen by one of two objectives:

* ``"mse"``: the least squared error over every pixel of every photo (a closed form, clipped);
* ``"psnr"``: the highest mean PSNR per photo (as benchmarks report it: each photo counts
  alike, however large its error), searched on [0, 1].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import torch

from pip_adapter.config import BLUR
from pip_adapter.injection import PIPModel
from pip_adapter.injection.model import blend_output, check_blendable
from pip_adapter.metrics import blur_effect, psnr
from pip_adapter.vocabulary import degradation_index, degradation_name

__all__ = [
    "STRENGTH_OBJECTIVES",
    "calibrate_blur_strength",
    "calibrate_output_strength",
    "fit_blur_strength",
    "fit_output_strength",
    "fit_output_strengths",
]

# what each objective of ``fit_output_strength`` fits, in words
STRENGTH_OBJECTIVES = {"mse": "least squares", "psnr": "per-image PSNR"}
GRID = 100  # the "psnr" search: the best of a grid of this step over [0, 1], then refined
REFINED = 1e-4  # ... by golden-section search around it to this width
PSNR_CAP = 100.0  # dB: a blend equal to its clean photo counts as this, not as infinity

Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # degraded, restored, clean


def check_objective(objective: object) -> str:
    """``objective`` if it is one of ``STRENGTH_OBJECTIVES``, else a ValueError naming them."""
    if objective not in STRENGTH_OBJECTIVES:
        choices = ", ".join(STRENGTH_OBJECTIVES)
        raise ValueError(f"unknown objective {objective!r}; choose from {choices}")
    return str(objective)


def fit_output_strength(
    degraded: Sequence[torch.Tensor],
    restored: Sequence[torch.Tensor],
    clean: Sequence[torch.Tensor],
    objective: str = "mse",
) -> float:
    """The strength ``a`` in [0, 1] whose ``x + a · (f − x)`` is closest to the clean images.

    ``"mse"``: least squared error over every pixel of every image, ``Σ⟨f − x, y − x⟩ /
    Σ‖f − x‖²`` clipped; ``"psnr"``: the highest mean PSNR per image of the blend clipped to
    [0, 1] (as an image is saved and measured), by a grid search refined with golden-section
    steps. ``degraded`` (``x``), ``restored`` (``f``) and ``clean`` (``y``) are matching images
    of any sizes; 1 when the restorations equal their inputs (any strength then gives the same).
    """
    check_objective(objective)
    if not len(degraded) == len(restored) == len(clean) or not len(degraded):
        raise ValueError(
            "fit_output_strength takes as many degraded, restored and clean images (at least "
            f"one), got {len(degraded)}, {len(restored)} and {len(clean)}"
        )
    for x, f, y in zip(degraded, restored, clean, strict=True):
        if not x.shape == f.shape == y.shape or (objective == "psnr" and x.dim() < 3):
            raise ValueError(
                "each degraded, restored and clean image must have the same shape (C×H×W or "
                f"B×C×H×W for objective='psnr'), got {tuple(x.shape)}, {tuple(f.shape)} and "
                f"{tuple(y.shape)}"
            )
    if all(torch.equal(x, f) for x, f in zip(degraded, restored, strict=True)):
        return 1.0
    if objective == "psnr":
        return _highest_mean_psnr(degraded, restored, clean)
    numerator = denominator = 0.0
    for x, f, y in zip(degraded, restored, clean, strict=True):
        change, wanted = (f - x).double(), (y - x).double()
        numerator += float((change * wanted).sum())
        denominator += float((change * change).sum())
    return min(1.0, max(0.0, numerator / denominator))


def _highest_mean_psnr(
    degraded: Sequence[torch.Tensor],
    restored: Sequence[torch.Tensor],
    clean: Sequence[torch.Tensor],
) -> float:
    """The ``a`` in [0, 1] of the highest mean PSNR of ``clip(x + a · (f − x))`` per image
    (each capped at ``PSNR_CAP``; a B×C×H×W tensor counts as B images): the best point of a
    grid, then golden-section search between its neighbours (the mean of several images' PSNR
    curves need not have one peak; the grid finds the highest)."""
    batches = [
        tuple(t.double().reshape(-1, *t.shape[-3:]) for t in images)
        for images in zip(degraded, restored, clean, strict=True)
    ]
    count = sum(x.shape[0] for x, _, _ in batches)

    known: dict[float, float] = {}  # each point's mean PSNR, evaluated once

    def mean_psnr(a: float) -> float:
        if a not in known:
            scores = [psnr(blend_output(x, f, a).clamp(0, 1), y) for x, f, y in batches]
            known[a] = sum(float(s.clamp(max=PSNR_CAP).sum()) for s in scores) / count
        return known[a]

    best = max((step / GRID for step in range(GRID + 1)), key=mean_psnr)
    low, high = max(0.0, best - 1 / GRID), min(1.0, best + 1 / GRID)
    ratio = (5**0.5 - 1) / 2
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    while high - low > REFINED:  # one new point a step: the kept one is the other's next
        if mean_psnr(left) >= mean_psnr(right):
            high, right = right, left
            left = high - ratio * (high - low)
        else:
            low, left = left, right
            right = low + ratio * (high - low)
    return max((best, (low + high) / 2), key=mean_psnr)


def fit_output_strengths(
    groups: Mapping[str, Sequence[Triple]], objective: str = "mse"
) -> dict[str, float]:
    """``fit_output_strength`` of each group of ``(degraded, restored, clean)`` images, by
    group name (a degradation, or any name for a group of several)."""
    fitted = {}
    for name, triples in groups.items():
        inputs, outputs, targets = zip(*triples, strict=True)
        fitted[name] = fit_output_strength(inputs, outputs, targets, objective=objective)
    return fitted


def _label(label: str | int, model: PIPModel) -> str:
    """A restorable degradation of ``model`` given by name or id, else a ValueError."""
    name = degradation_name(label, model.degradations)
    degradation_index(name, model.restorable_degradations)  # a clear error if it is "clean"
    return name


@torch.no_grad()
def calibrate_output_strength(
    model: PIPModel,
    degraded: Sequence[torch.Tensor],
    clean: Sequence[torch.Tensor],
    degradations: Sequence[str | int],
    objective: str = "mse",
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
    check_objective(objective)
    labels = [_label(name, model) for name in degradations]
    config, training = model.config, model.training
    device = next(model.parameters()).device
    pairs: dict[str, list[Triple]] = defaultdict(list)
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
    fitted = fit_output_strengths(pairs, objective)
    model.config = config.replace(output_strength={**dict(config.output_strength), **fitted})
    return model


def fit_blur_strength(
    degraded: Sequence[torch.Tensor],
    restored: Sequence[torch.Tensor],
    clean: Sequence[torch.Tensor],
    shares: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[float, float]:
    """``(a0, a1)`` of the strength ``a0 + a1 · blur_effect(x)`` that brings the blends
    ``x + a · (f − x)`` closest to the clean images ``y`` over every pixel: least squares in
    closed form (each image's best strength ``⟨f − x, y − x⟩ / ‖f − x‖²`` regressed on its blur
    effect, weighted by ``‖f − x‖²``), not clipped. The images: matching B×3×H×W batches.

    ``shares``: for images restored blind, each batch's ``(w, r)`` (B values each): the blend
    is then ``x + (r + w · a) · (f − x)``, as a PIPModel mixes a sensor's weights (``w`` the
    blur weight, ``r`` the other degradations' weights times their strengths); ``None``: every
    image restored with the label blur (``w = 1``, ``r = 0``)."""
    if not len(degraded) == len(restored) == len(clean) or not len(degraded):
        raise ValueError(
            "fit_blur_strength takes as many degraded, restored and clean batches (at least "
            f"one), got {len(degraded)}, {len(restored)} and {len(clean)}"
        )
    if shares is not None and len(shares) != len(degraded):
        raise ValueError(
            f"fit_blur_strength takes one (w, r) pair of shares per batch, got {len(shares)} "
            f"for {len(degraded)} batches"
        )
    moments = torch.zeros(2, 2, dtype=torch.float64)
    right = torch.zeros(2, dtype=torch.float64)
    for i, (x, f, y) in enumerate(zip(degraded, restored, clean, strict=True)):
        if not x.dim() == 4 or not x.shape == f.shape == y.shape:
            raise ValueError(
                "fit_blur_strength takes matching B×3×H×W degraded, restored and clean batches, "
                f"got {tuple(x.shape)}, {tuple(f.shape)} and {tuple(y.shape)}"
            )
        change, wanted = (f - x).double().cpu(), (y - x).double().cpu()
        if shares is not None:
            w, r = (torch.as_tensor(v).double().cpu().reshape(-1) for v in shares[i])
            if not w.shape == r.shape == (x.shape[0],):
                raise ValueError(
                    f"fit_blur_strength takes shares of one value per image, got "
                    f"{tuple(w.shape)} and {tuple(r.shape)} for a batch of {x.shape[0]}"
                )
            wanted = wanted - r.view(-1, 1, 1, 1) * change  # what the blur share must add
            change = w.view(-1, 1, 1, 1) * change
        basis = torch.stack([torch.ones(x.shape[0]), blur_effect(x).cpu()]).double()  # 2×B
        moments += (basis * change.square().flatten(1).sum(dim=1)) @ basis.T
        right += basis @ (change * wanted).flatten(1).sum(dim=1)
    if torch.linalg.matrix_rank(moments) < 2:
        raise ValueError(
            "fit_blur_strength needs images of at least two blur effects that the model changes"
        )
    a0, a1 = torch.linalg.solve(moments, right).tolist()
    return a0, a1


@torch.no_grad()
def calibrate_blur_strength(
    model: PIPModel,
    degraded: Sequence[torch.Tensor],
    clean: Sequence[torch.Tensor],
    blind: bool = False,
) -> PIPModel:
    """Fit ``model.config.blur_strength`` on blurred photos it was not trained on.

    ``degraded`` and ``clean`` are matching 3×H×W or 1×3×H×W images (whole photos, or crops as
    in use), every one blurred: each is restored with the label ``"blur"`` at full strength
    and ``fit_blur_strength`` chooses the line; ``output_strength``'s blur entry, if any, is
    dropped (the line replaces it). With ``blind=True`` the images are those blind mode meets
    (any degradation, clean ones too): each is restored by the model's sensor at full
    strength, and the line is fitted to the blend the sensor's weights make of it
    (``fit_blur_strength``'s ``shares``), so that a clean photo the sensor takes for a blurred
    one pulls the strength down where it reads as blurred. Saved with the adapter. Returns
    the model; on an error it is left as it was.
    """
    if len(degraded) != len(clean) or not len(degraded):
        raise ValueError(
            "calibrate_blur_strength takes as many degraded and clean images (at least one), "
            f"got {len(degraded)} and {len(clean)}"
        )
    _label(BLUR, model)
    if blind and model.sensor is None:
        raise ValueError(
            "calibrate_blur_strength(blind=True) restores through model.sensor, and no sensor "
            "is attached; set model.sensor or fit with the label (blind=False)"
        )
    config, training = model.config, model.training
    device = next(model.parameters()).device
    others = {d: a for d, a in config.output_strength if d != BLUR}
    triples: list[Triple] = []
    shares: list[tuple[torch.Tensor, torch.Tensor]] = []
    # the network's own output: blind, its full output (the shares then blend it as the model
    # would, with these strengths); with the label, at blur's strength 1 (the others do not
    # matter there)
    fitting = config.replace(output_strength=others, blur_strength=None)
    strengths = fitting.strengths()
    model.config = fitting
    model.eval()
    try:
        for x, y in zip(degraded, clean, strict=True):
            x = x.reshape(-1, *x.shape[-3:]).to(device)
            if blind:  # the sensor's weights, and the blend they make of the full output
                weights = model.degradation_weights(x, None)
                shares.append(_blur_shares(weights, model.degradations, strengths))
                restored = model.full_output(x, weights)
            else:
                restored = model(x, degradation=BLUR)
            check_blendable(x, restored)
            triples.append((x, restored, y.reshape(-1, *y.shape[-3:]).to(device)))
    finally:
        model.config = config
        model.train(training)
    inputs, outputs, targets = zip(*triples, strict=True)
    line = fit_blur_strength(inputs, outputs, targets, shares=shares if blind else None)
    model.config = config.replace(output_strength=others, blur_strength=line)
    return model


def _blur_shares(
    weights: torch.Tensor, degradations: Sequence[str], strengths: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's ``(w, r)`` under a sensor's ``weights`` (``B×T`` over ``degradations``):
    its blur weight, and the share of the network's output the other degradations give it
    (their weights times ``strengths``, those of ``PIPConfig.strengths``: ``"clean"`` 0).
    ``PIPModel.output_amount``'s sum split in two, since the fit chooses blur's strength."""
    blur = degradations.index(BLUR)
    table = torch.tensor(strengths, dtype=weights.dtype, device=weights.device)
    table[blur] = 0.0
    return weights[:, blur], (weights * table).sum(dim=1)
