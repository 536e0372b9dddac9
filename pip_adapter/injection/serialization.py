"""Adapter files: ``adapter_config.json`` (what and where) + ``adapter.safetensors`` (weights),
and, when the model has a degradation sensor, ``sensor_config.json`` + ``sensor.safetensors``.

``adapter_config.json`` (format version 2) is the model's resolved ``PIPConfig.to_dict()`` plus
metadata: ``format``, ``format_version``, ``library_version`` and ``backbone`` (the class and
module of the network, and the ``layout`` / ``channels`` of the feature found at each stage,
which ``load_adapter`` checks). Version 1 files, which listed the planned stages with their
unit sizes instead of a config, are read and converted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pip_adapter.config import PIPConfig
from pip_adapter.files import write_json, write_safetensors
from pip_adapter.weights import read_safetensors

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "SENSOR_CONFIG_NAME",
    "SENSOR_FORMAT",
    "SENSOR_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "SavedAdapter",
    "read_adapter",
    "read_sensor",
    "write_adapter",
    "write_sensor",
]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"
FORMAT = "pip-adapter"
FORMAT_VERSION = 2
METADATA_KEYS = ("format", "format_version", "library_version", "backbone")
SENSOR_CONFIG_NAME = "sensor_config.json"
SENSOR_WEIGHTS_NAME = "sensor.safetensors"
SENSOR_FORMAT = "pip-adapter-sensor"
# the sensor file version that first saved each feature, the oldest whose readers rebuild a
# sensor that uses it (write_sensor writes the oldest such version): "views" (and the
# temperature; a reader of 1 would ignore them and weigh differently; files of version 1 load
# with no views and temperature 1, as they were used), "statistics" (a reader of 2 would build
# the sensor without them; older files load without them), "scale_weights" beyond the native
# scale (a reader of 3 would judge the native crops alone), "sharpness" (a reader of 4 would
# build the sensor without it)
SENSOR_FEATURE_VERSIONS = {"views": 2, "statistics": 3, "scale_weights": 4, "sharpness": 5}
SENSOR_FORMAT_VERSION = max(SENSOR_FEATURE_VERSIONS.values())
SENSOR_KEYS = ("degradations", "backbone", "crop_size", "crops_per_side")


@dataclass(frozen=True)
class SavedAdapter:
    """An adapter directory's content: the resolved config, what the backbone it was trained
    on looked like (``backbone_class``; ``features``: per stage, the ``layout`` and
    ``channels`` of the feature there), and the unit weights."""

    config: PIPConfig
    backbone_class: str
    features: dict[str, dict[str, Any]]
    tensors: dict[str, torch.Tensor]


def write_adapter(
    directory: str | os.PathLike, data: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> Path:
    """Write ``adapter_config.json`` (``data`` with the format header) and the weights."""
    directory = Path(directory)
    write_safetensors(directory / WEIGHTS_NAME, tensors, {"format": FORMAT})
    header = {"format": FORMAT, "format_version": FORMAT_VERSION}
    write_json(directory / CONFIG_NAME, {**header, **data})
    return directory


def _read_json(path: Path, expected_format: str, versions: Sequence[int]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        raise ValueError(
            f'{path} is not a {expected_format} config (no "format": "{expected_format}")'
        )
    if data.get("format_version") not in versions:
        raise ValueError(
            f"{path} has format_version {data.get('format_version')!r}; this version of "
            f"pip-adapter reads {' and '.join(map(str, versions))}"
        )
    return data


def _require(path: Path, data: Mapping[str, Any], keys: Sequence[str]) -> None:
    absent = [key for key in keys if key not in data]
    if absent:
        raise ValueError(f"{path} lacks the keys {absent}")


# the unit sizes a version-1 file repeated in every stage, and the config fields they give
_V1_SHARED = ("ffn_expansion", "topm_ratios")
_V1_STAGE_KEYS = {
    "name",
    "hook",
    "layout",
    "feature_shape",
    "stage_channels",
    "channels",
    "prompt_dim",
    "prompt_size",
    "heads",
    *_V1_SHARED,
}


def _config_from_v1(path: Path, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """``(PIPConfig dict, features)`` of a version-1 file, whose ``stages`` were the planned
    stages (name, hook point, layout, channels, unit sizes) rather than stage specs."""
    _require(path, data, ("size_multiple",))
    planned = data["stages"]
    if not (isinstance(planned, list) and planned and all(isinstance(s, dict) for s in planned)):
        raise ValueError(f"the stages in {path} are malformed: expected a list of objects")
    for stage in planned:
        unknown = sorted(set(stage) - _V1_STAGE_KEYS)
        missing = sorted(_V1_STAGE_KEYS - {"feature_shape"} - set(stage))
        if unknown or missing:
            raise ValueError(
                f"the stages in {path} are malformed: unknown keys {unknown}, missing {missing}"
            )
    shared = {key: planned[0][key] for key in _V1_SHARED}
    if any({key: stage[key] for key in _V1_SHARED} != shared for stage in planned):
        raise ValueError(f"the stages in {path} are malformed: their {_V1_SHARED} differ")
    stages = [
        {
            "pattern": stage["name"],
            "at": stage["hook"],
            "channels": stage["channels"],
            "prompt_dim": stage["prompt_dim"],
            "prompt_size": stage["prompt_size"],
            "heads": stage["heads"],
        }
        for stage in planned
    ]
    config = {
        "stages": stages,
        "degradations": data["degradations"],
        "size_multiple": data["size_multiple"],
        **shared,
    }
    features = [
        {"stage": s["name"], "layout": s["layout"], "channels": s["stage_channels"]}
        for s in planned
    ]
    return config, features


def read_adapter(directory: str | os.PathLike) -> SavedAdapter:
    """Read and check an adapter directory (format version 1 or 2); every problem is a
    ValueError (FileNotFoundError for missing files) naming the file."""
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
    data = _read_json(config_path, FORMAT, (1, FORMAT_VERSION))
    _require(config_path, data, ("backbone", "degradations", "stages"))
    backbone = data["backbone"]
    if not isinstance(backbone, dict) or not isinstance(backbone.get("class"), str):
        raise ValueError(f'{config_path}: "backbone" must hold the class name of the network')
    if data["format_version"] == 1:
        fields, features = _config_from_v1(config_path, data)
    else:
        _require(config_path, backbone, ("features",))
        fields = {key: value for key, value in data.items() if key not in METADATA_KEYS}
        features = backbone["features"]
    # files written before the unit had designs hold the authors' (paper) units
    fields.setdefault("design", "paper")
    # and before the feed-forward could run on a pooled feature, at every pixel
    fields.setdefault("feature_ffn_stride", 1)
    try:
        config = PIPConfig.from_dict(fields)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{config_path} is malformed: {err}") from None
    by_stage = _features(config_path, features)
    return SavedAdapter(
        config, backbone["class"], by_stage, read_safetensors(weights_path, "adapter")
    )


def _features(path: Path, features: Any) -> dict[str, dict[str, Any]]:
    """``backbone.features`` (a list of ``{stage, layout, channels}``) by stage name."""
    valid = isinstance(features, list) and all(
        isinstance(f, dict)
        and isinstance(f.get("stage"), str)
        and isinstance(f.get("layout"), str)
        and isinstance(f.get("channels"), int)
        and not isinstance(f.get("channels"), bool)
        for f in features
    )
    if not valid:
        raise ValueError(
            f'{path}: "backbone"."features" must be a list of {{"stage": name, "layout": '
            f'"image" or "tokens", "channels": integer}}'
        )
    return {f["stage"]: {"layout": f["layout"], "channels": f["channels"]} for f in features}


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
    write_safetensors(directory / SENSOR_WEIGHTS_NAME, tensors, {"format": SENSOR_FORMAT})
    # the oldest version whose readers rebuild this sensor as it is
    zoomed = [scale for scale, _ in config.get("scale_weights", [[1.0, 1.0]]) if scale != 1]
    used = {
        "views": True,
        "statistics": bool(config.get("statistics")),
        "scale_weights": zoomed,
        "sharpness": bool(config.get("sharpness")),
    }
    version = max(SENSOR_FEATURE_VERSIONS[feature] for feature, use in used.items() if use)
    header = {"format": SENSOR_FORMAT, "format_version": version}
    write_json(directory / SENSOR_CONFIG_NAME, {**header, **config})


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
    config = _read_json(config_path, SENSOR_FORMAT, tuple(range(1, SENSOR_FORMAT_VERSION + 1)))
    _require(config_path, config, SENSOR_KEYS)
    return config, read_safetensors(weights_path, "sensor")
