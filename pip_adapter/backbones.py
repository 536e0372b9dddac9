"""Restoration backbones by name, from spandrel's classes, or from a checkpoint file.

spandrel's classes load the official checkpoints unchanged. Restormer lives in
``spandrel_extra_arches`` (non-commercial licence), installed with ``pip install
pip-adapter[examples]``; pip-adapter itself contains none of its code.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file
from torch import nn

from pip_adapter.weights import check_finite

__all__ = ["BACKBONES", "BackboneSpec", "build_backbone", "load_backbone"]

Size = Literal["official", "small", "tiny"]


@dataclass(frozen=True)
class BackboneSpec:
    """A spandrel class and its configurations: the official release's, a small one that
    trains on a CPU in minutes, and a tiny one for smoke tests."""

    module: str
    cls: str
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    install_hint: str = "pip install spandrel"


BACKBONES: dict[str, BackboneSpec] = {
    "nafnet": BackboneSpec(
        "spandrel.architectures.NAFNet",
        "NAFNet",
        {
            # NAFNet-width32 as released for SIDD denoising (megvii-research/NAFNet)
            "official": dict(
                width=32, enc_blk_nums=[2, 2, 4, 8], middle_blk_num=12, dec_blk_nums=[2, 2, 2, 2]
            ),
            "small": dict(
                width=16, enc_blk_nums=[1, 1, 1], middle_blk_num=1, dec_blk_nums=[1, 1, 1]
            ),
            "tiny": dict(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1]),
        },
    ),
    "restormer": BackboneSpec(
        "spandrel_extra_arches.architectures.Restormer",
        "Restormer",
        {
            "official": {},
            "small": dict(
                dim=16, num_blocks=[1, 2, 2, 2], num_refinement_blocks=1, heads=[1, 2, 2, 4]
            ),
            "tiny": dict(
                dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1]
            ),
        },
        install_hint="pip install 'pip-adapter[examples]' (Restormer: non-commercial licence)",
    ),
    "swinir": BackboneSpec(
        "spandrel.architectures.SwinIR",
        "SwinIR",
        {
            # SwinIR colour denoising (JingyunLiang/SwinIR, 005_colorDN_DFWB_s128w8_SwinIR-M)
            "official": dict(
                img_size=128,
                window_size=8,
                depths=[6] * 6,
                embed_dim=180,
                num_heads=[6] * 6,
                mlp_ratio=2.0,
                upscale=1,
                upsampler="",
                resi_connection="1conv",
                img_range=1.0,
            ),
            "small": dict(
                img_size=64,
                window_size=8,
                depths=[2, 2, 2, 2],
                embed_dim=32,
                num_heads=[2, 2, 2, 2],
                mlp_ratio=2.0,
                drop_path_rate=0.0,
            ),
            "tiny": dict(
                img_size=64,
                window_size=8,
                depths=[2, 2],
                embed_dim=12,
                num_heads=[2, 2],
                mlp_ratio=2.0,
                drop_path_rate=0.0,
            ),
        },
    ),
}


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name]


def build_backbone(name: str, size: Size = "official", **overrides: Any) -> nn.Module:
    """A freshly initialised backbone: ``name`` in ``BACKBONES``, ``size`` one of
    ``"official"``, ``"small"``, ``"tiny"``; ``overrides`` change constructor arguments."""
    spec = _spec(name)
    if size not in spec.configs:
        raise ValueError(f"unknown size {size!r} for {name}; choose one of {sorted(spec.configs)}")
    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        raise ImportError(
            f"the {name} backbone needs an extra package: {spec.install_hint}"
        ) from None
    return getattr(module, spec.cls)(**{**spec.configs[size], **overrides})


def _read_state_dict(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # an untrusted file: any failure to parse it is the file's
        reason = " ".join(str(err).split())[:300]  # torch's own messages span lines
        raise ValueError(f"could not read checkpoint {path}: {reason}") from None


def load_backbone(path: str | os.PathLike, expected: str | None = None) -> nn.Module:
    """Load an official (or compatible) checkpoint through spandrel's architecture detection.

    Reads ``.pth`` / ``.pt`` / ``.ckpt`` with ``torch.load(weights_only=True)`` (a file from the
    internet is untrusted input) or ``.safetensors``; BasicSR's ``params`` / ``params_ema``
    wrappers and ``module.`` prefixes are handled by spandrel. ``expected`` (a key of
    ``BACKBONES``) makes a checkpoint of another architecture an error.
    """
    import spandrel

    try:
        import spandrel_extra_arches

        spandrel_extra_arches.install(ignore_duplicates=True)
    except ImportError:
        pass
    path = Path(path)
    state = _read_state_dict(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (found a {type(state).__name__})")
    state = spandrel.canonicalize_state_dict(state)
    check_finite(state, path)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise ValueError(
            f"{path} is not a checkpoint of an architecture spandrel knows "
            f"(for Restormer: {BACKBONES['restormer'].install_hint})"
        ) from None
    except Exception as err:  # a recognised architecture whose tensors do not fit it
        reason = " ".join(str(err).split())[:300]
        raise ValueError(f"{path}: spandrel could not build a model from it ({reason})") from None
    model = descriptor.model
    if expected is not None and type(model).__name__ != _spec(expected).cls:
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a {_spec(expected).cls} ({expected})"
        )
    return model
