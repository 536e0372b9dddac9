"""Training checkpoints: written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch

from pip_adapter.files import write_torch

__all__ = ["load_checkpoint", "restore_rng_state", "rng_state", "save_checkpoint"]


def rng_state() -> dict[str, Any]:
    """Every random state the training loop draws from (data items carry their own seeds)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` atomically: a crash never leaves half a checkpoint."""
    return write_torch(path, state)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by ``save_checkpoint`` (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = " ".join(str(err).split())[:300]  # torch's own messages span lines
        raise ValueError(f"could not read checkpoint {path}: {reason}") from None
