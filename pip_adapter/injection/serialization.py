"""Adapter files: ``adapter_config.json`` (what and where) + ``adapter.safetensors`` (weights),
and, when the model has a degradation sensor, ``sensor_config.json`` + ``sensor.safetensors``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "SENSOR_CONFIG_NAME",
    "SENSOR_FORMAT",
    "SENSOR_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "read_adapter",
    "read_sensor",
    "write_adapter",
    "write_sensor",
]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"
FORMAT = "pip-adapter"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "backbone", "degradations", "size_multiple", "stages")
SENSOR_CONFIG_NAME = "sensor_config.json"
SENSOR_WEIGHTS_NAME = "sensor.safetensors"
SENSOR_FORMAT = "pip-adapter-sensor"
SENSOR_KEYS = ("degradations", "backbone", "crop_size", "crops_per_side")


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


def _read_config(path: Path, expected_format: str, required: Sequence[str]) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(config, dict) or config.get("format") != expected_format:
        raise ValueError(
            f'{path} is not a {expected_format} config (no "format": "{expected_format}")'
        )
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {config.get('format_version')!r}; this version of "
            f"pip-adapter reads {FORMAT_VERSION}"
        )
    absent = [key for key in required if key not in config]
    if absent:
        raise ValueError(f"{path} lacks the keys {absent}")
    return config


def _read_weights(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"could not read {what} weights {path}: {err}") from None


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
    config = _read_config(config_path, FORMAT, REQUIRED_KEYS)
    return config, _read_weights(weights_path, "adapter")


def write_sensor(
    directory: str | os.PathLike,
    sensor: tuple[dict[str, Any], dict[str, torch.Tensor]] | None,
) -> None:
    """Write a sensor's ``(config, tensors)`` next to the adapter files; with ``None``, remove
    the sensor files a previous save left there, so they cannot be loaded with this adapter."""
    directory = Path(directory)
    if sensor is None:
        for name in (SENSOR_CONFIG_NAME, SENSOR_WEIGHTS_NAME):
            (directory / name).unlink(missing_ok=True)
        return
    config, tensors = sensor
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic_write(
        directory / SENSOR_WEIGHTS_NAME, lambda p: save_file(tensors, p, {"format": SENSOR_FORMAT})
    )
    text = json.dumps(
        {"format": SENSOR_FORMAT, "format_version": FORMAT_VERSION, **config}, indent=2
    )
    _atomic_write(directory / SENSOR_CONFIG_NAME, lambda p: p.write_text(text + "\n"))


def read_sensor(
    directory: str | os.PathLike,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The sensor's ``(config, tensors)`` stored in an adapter directory, ``None`` if it has no
    sensor; a half-present, corrupt or incomplete sensor is a ValueError naming the file."""
    directory = Path(directory)
    config_path, weights_path = directory / SENSOR_CONFIG_NAME, directory / SENSOR_WEIGHTS_NAME
    present = [p.is_file() for p in (config_path, weights_path)]
    if not any(present):
        return None
    if not all(present):
        have, lack = (config_path, weights_path) if present[0] else (weights_path, config_path)
        raise ValueError(f"{directory} has {have.name} but not {lack.name}; save the adapter again")
    config = _read_config(config_path, SENSOR_FORMAT, SENSOR_KEYS)
    return config, _read_weights(weights_path, "sensor")
