"""Adapter files: ``adapter_config.json`` (what and where) + ``adapter.safetensors`` (weights)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "read_adapter",
    "write_adapter",
]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"
FORMAT = "pip-adapter"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "backbone", "degradations", "size_multiple", "stages")


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file then rename, so a crash never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def write_adapter(
    directory: str | os.PathLike, config: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(tensors, p, {"format": FORMAT}))
    text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **config}, indent=2)
    _atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(text + "\n"))
    return directory


def read_adapter(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read and validate an adapter directory; every problem is a ValueError naming the file."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not directory.is_dir():
        raise FileNotFoundError(
            f"adapter directory {directory} does not exist (expected {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} inside)"
        )
    missing = [p.name for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        found = sorted(p.name for p in directory.iterdir())
        raise FileNotFoundError(f"adapter directory {directory} lacks {missing}; found {found}")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_path} is not valid JSON: {err}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f'{config_path} is not a pip-adapter config (no "format": "{FORMAT}")')
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{config_path} has format_version {config.get('format_version')!r}; this version of "
            f"pip-adapter reads {FORMAT_VERSION}"
        )
    absent = [key for key in REQUIRED_KEYS if key not in config]
    if absent:
        raise ValueError(f"{config_path} lacks the keys {absent}")
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"could not read adapter weights {weights_path}: {err}") from None
    return config, tensors
