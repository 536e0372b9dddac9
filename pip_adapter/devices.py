"""Which device to run on: a user's ``--device`` / ``device=`` checked, with one clear error."""

from __future__ import annotations

import torch

__all__ = ["check_device_name", "resolve_device"]

EXAMPLES = "cpu, cuda, cuda:1, mps"


def check_device_name(device: object, what: str = "device") -> torch.device:
    """``device`` parsed as a torch device (``"cpu"``, ``"cuda:1"``, ...); a ValueError naming
    ``what`` and giving examples otherwise. Says nothing about availability on this machine."""
    if not isinstance(device, str | torch.device):
        raise ValueError(f"{what} must be a device name such as {EXAMPLES}, got {device!r}")
    try:
        return torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{what} {device!r} is not a device; use one of {EXAMPLES}") from None


def resolve_device(device: str | torch.device | None, what: str = "device") -> torch.device:
    """The device to use: ``device`` if this machine has it (a ValueError saying so otherwise),
    or, for ``None``, CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    parsed = check_device_name(device, what)
    missing = _missing(parsed)
    if missing:
        raise ValueError(f"{what} {str(device)!r} is not available on this machine: {missing}")
    return parsed


def _missing(device: torch.device) -> str | None:
    """Why this machine cannot run on ``device``, or None if it can."""
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return "no CUDA GPU is available (use cpu)"
        if device.index is not None and device.index >= count:
            return f"it has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
        return None
    if device.type == "mps":
        return None if torch.backends.mps.is_available() else "MPS is not available (use cpu)"
    try:
        torch.empty(0, device=device)
    except Exception as err:  # torch raises AssertionError or RuntimeError, by backend
        first = " ".join(str(err).split()).split(". ")[0][:160]
        return first or type(err).__name__
    return None
