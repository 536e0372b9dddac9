"""Weights read from files, which may be damaged or hostile: every problem is a one-line
ValueError naming the file (and the tensor), never a model that silently outputs NaN."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

__all__ = ["check_finite", "check_same_tensors", "load_weights", "read_safetensors"]


def check_finite(tensors: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Refuse NaN or infinite values in any floating-point tensor of ``tensors`` (read from
    ``source``): loaded, they would make every output NaN (a black image)."""
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            continue  # checkpoints may carry other entries (e.g. an epoch number)
        if (tensor.is_floating_point() or tensor.is_complex()) and not tensor.isfinite().all():
            bad = "NaN" if tensor.isnan().any() else "infinite values"
            raise ValueError(
                f"{source}: tensor {name!r} holds {bad} (a damaged file, or saved from a run "
                "that diverged)"
            )


def read_safetensors(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked finite; ``what`` names them in errors
    (``"adapter"``: "could not read adapter weights PATH: ...")."""
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise ValueError(f"could not read {what} weights {path}: {reason}") from None
    check_finite(tensors, path)
    return tensors


def load_weights(module: nn.Module, tensors: Mapping[str, torch.Tensor], mismatch: str) -> None:
    """``module.load_state_dict(tensors, strict=True)``; a mismatch (missing, unexpected or
    differently shaped tensors) is a one-line ValueError: ``mismatch``, then torch's detail
    (e.g. ``"adapter weights in DIR do not match its config"``)."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"{mismatch}: {detail}") from None


def check_same_tensors(
    module: nn.Module, tensors: Mapping[str, torch.Tensor], mismatch: str
) -> None:
    """Refuse, before anything is loaded, ``tensors`` whose names or shapes differ from
    ``module.state_dict()``'s: a ValueError ``mismatch: ...`` (``load_state_dict`` would have
    changed the module's tensors that do match before it raised)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    resized = [
        f"{name} {tuple(tensors[name].shape)} in the file, {tuple(value.shape)} in the model"
        for name, value in expected.items()
        if name in tensors and tensors[name].shape != value.shape
    ]
    problems = [
        f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
        for label, items in (
            ("Missing key(s)", missing),
            ("Unexpected key(s)", unexpected),
            ("size mismatch", resized),
        )
        if items
    ]
    if problems:
        raise ValueError(f"{mismatch}: {'; '.join(problems)}")
