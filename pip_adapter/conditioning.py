"""Degradation vocabulary, and turning every accepted ``degradation=`` form into weights.

PIP is steered by per-sample weights over the degradation types (``B×T``, rows summing to 1).
Users express them as a name, one name per sample, integer ids, a ``{name: weight}`` mixture,
a ``B×T`` tensor, or, on the command line, ``"rain:0.7,noise:0.3"`` / ``"auto"``.

``"clean"`` (``CLEAN``) is the reserved name of an image that needs nothing. A model or a
sensor opts in by having it among its degradations: the model then leaves a clean image exactly
as it is, and softens its restoration by the clean weight of a mixture (``split_clean``).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from pip_adapter.vocabulary import (
    DEFAULT_DEGRADATIONS,
    SURE_AT,
    check_degradation_names,
    degradation_index,
    describe_mixture,
    mixture_weights,
    parse_degradation,
)

__all__ = [
    "CLEAN",
    "DEFAULT_DEGRADATIONS",
    "DegradationSpec",
    "capturing",
    "check_degradation_names",
    "check_weights",
    "degradation_weights",
    "describe_weights",
    "parse_degradation",
    "restorable_degradations",
    "split_clean",
]

# the degradation of an image that needs nothing: a model maps it to the identity
CLEAN = "clean"

DegradationSpec = str | Sequence[str] | Mapping[str, float] | torch.Tensor | int


def capturing(t: torch.Tensor) -> bool:
    """Whether ``t``'s device is recording a CUDA graph (where no value may be read back)."""
    return t.is_cuda and torch.cuda.is_current_stream_capturing()


def restorable_degradations(degradations: Sequence[str]) -> tuple[str, ...]:
    """The degradations a model restores: all but ``"clean"``, in order. A vocabulary of
    ``"clean"`` alone is a ValueError (there would be nothing to restore)."""
    names = tuple(d for d in degradations if d != CLEAN)
    if not names:
        raise ValueError(
            f"degradations {list(degradations)} name nothing to restore: {CLEAN!r} is the "
            "identity and needs at least one other degradation beside it"
        )
    return names


def split_clean(weights: torch.Tensor, clean: int) -> torch.Tensor:
    """The weights ``B×T`` (rows summing to 1) of every degradation but ``"clean"`` (column
    ``clean``), renormalised to sum to 1 (``B×(T-1)``): what steers the network, while the
    clean weight only blends its output with the input. A sample that is clean alone gets
    uniform weights over the others: whatever they restore is then discarded."""
    others = torch.cat([weights[:, :clean], weights[:, clean + 1 :]], dim=1)
    total = others.sum(dim=1, keepdim=True)
    uniform = torch.full_like(others, 1.0 / others.shape[1])
    return torch.where(total > 0, others / total.clamp_min(1e-12), uniform)


def check_weights(weights: torch.Tensor, batch: int, num_degradations: int) -> torch.Tensor:
    """Validate ``B×T`` degradation weights and normalise each row to sum to 1.

    Raises ValueError for a wrong shape or a non-floating dtype, and (outside ``torch.compile``
    tracing and CUDA graph capture, where data-dependent checks would break the graph) for
    negative or non-finite entries and all-zero rows.
    """
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor, got {type(weights).__name__}")
    if weights.shape != (batch, num_degradations):
        raise ValueError(
            f"weights must have shape (batch, num_degradations) = ({batch}, {num_degradations}), "
            f"got {tuple(weights.shape)}"
        )
    if not weights.is_floating_point():
        raise ValueError(f"weights must be a floating-point tensor, got dtype {weights.dtype}")
    total = weights.sum(dim=1, keepdim=True)
    if not torch.compiler.is_compiling() and not capturing(weights):
        if not torch.isfinite(weights).all():
            raise ValueError("weights contain NaN or infinite values")
        if (weights < 0).any():
            raise ValueError("weights must be non-negative")
        zero_rows = (total.squeeze(1) == 0).nonzero().flatten().tolist()
        if zero_rows:
            raise ValueError(
                f"weights rows {zero_rows} are all zero; each sample needs a positive total weight"
            )
    # a row of huge finite weights (3e38 + 3e38) overflows its total to infinity, which would
    # normalise it to zeros: such rows are first scaled by their largest entry
    scaled = weights / weights.amax(dim=1, keepdim=True)
    return torch.where(
        torch.isinf(total), scaled / scaled.sum(dim=1, keepdim=True), weights / total
    )


def _mixture(mixture: Mapping[str, float], names: Sequence[str]) -> torch.Tensor:
    return torch.tensor(mixture_weights(mixture, names), dtype=torch.float64)


def degradation_weights(
    degradation: DegradationSpec,
    names: Sequence[str],
    batch: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Turn any accepted ``degradation=`` form into ``B×T`` float32 weights (rows sum to 1).

    Accepted: a name (``"rain"``, whole batch); a list of ``batch`` names; an integer id or a 1-D
    integer tensor of ``batch`` ids; a ``{name: weight}`` mixture (normalised, whole batch); a
    ``B×T`` float tensor (validated, rows normalised). Every malformed form raises ValueError
    naming the valid degradation names.
    """
    names = list(names)
    valid = f"valid names: {names}"
    if isinstance(degradation, str):
        rows = torch.eye(len(names))[[degradation_index(degradation, names)] * batch]
    elif isinstance(degradation, Mapping):
        rows = _mixture(degradation, names).expand(batch, -1)
    elif isinstance(degradation, bool):
        raise ValueError(
            f"degradation must be a name, ids, a mixture or weights, not a bool; {valid}"
        )
    elif isinstance(degradation, numbers.Integral):
        degradation = torch.tensor([int(degradation)] * batch)
        return degradation_weights(degradation, names, batch, device)
    elif isinstance(degradation, torch.Tensor):
        if degradation.is_floating_point():
            if degradation.shape != (batch, len(names)):
                raise ValueError(
                    f"float degradation weights must have shape (batch, {len(names)}) = "
                    f"({batch}, {len(names)}), one column per degradation ({valid}), "
                    f"got {tuple(degradation.shape)}"
                )
            return check_weights(degradation.float().to(device), batch, len(names))
        if degradation.dtype == torch.bool or degradation.is_complex():
            raise ValueError(f"degradation ids must be integers, got dtype {degradation.dtype}")
        ids = degradation.flatten() if degradation.dim() == 0 else degradation
        if ids.dim() != 1 or ids.numel() not in (1, batch):
            raise ValueError(
                f"degradation ids must be one id or a 1-D tensor of {batch} ids (one per sample), "
                f"got shape {tuple(degradation.shape)}"
            )
        if not torch.compiler.is_compiling() and not capturing(ids):
            bad = ids[(ids < 0) | (ids >= len(names))]
            if bad.numel():
                raise ValueError(
                    f"degradation ids {bad.tolist()} out of range 0..{len(names) - 1}; "
                    + ", ".join(f"{i}={n}" for i, n in enumerate(names))
                )
        rows = F.one_hot(ids.long().expand(batch), len(names))
    elif isinstance(degradation, Sequence):
        if len(degradation) != batch:
            raise ValueError(
                f"got {len(degradation)} degradation names for a batch of {batch}; give one name "
                f"per sample or a single name; {valid}"
            )
        rows = torch.eye(len(names))[[degradation_index(name, names) for name in degradation]]
    else:
        raise ValueError(
            f"degradation must be a name, a list of names, ids, a {{name: weight}} mixture or "
            f"B×T weights, got {type(degradation).__name__}; {valid}"
        )
    return rows.to(device=device, dtype=torch.float32)


def describe_weights(weights: torch.Tensor, names: Sequence[str], sure_at: float = SURE_AT) -> str:
    """One sample's ``T`` weights in words, as ``pip-adapter restore`` prints a sensor's
    prediction (``pip_adapter.vocabulary.describe_mixture``): ``"rain (0.97)"`` when one
    degradation has at least ``sure_at`` of the weight, else ``"unsure: rain 0.55 + noise 0.40
    (restored as this mixture)"``."""
    if weights.dim() != 1 or weights.numel() != len(names):
        raise ValueError(
            f"weights must be one sample's {len(names)} weights, got shape {tuple(weights.shape)}"
        )
    return describe_mixture(weights.float().tolist(), names, sure_at)
