"""Shared by the export tests (the Python API and the command line): a tiny adapted backbone
whose PIP units really act, onnxruntime runs, and the tolerance against the eager model."""

from pathlib import Path

import numpy as np
import pytest
import torch
from backbones import build, injection_kwargs
from torch import nn

import pip_adapter as pa

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

SIZES = [(1, 23, 37), (2, 32, 40), (1, 41, 19)]  # odd sides, a batch of two
TOLERANCE = 1e-4


def adapted(name: str, seed: int = 0, backbone: nn.Module | None = None) -> pa.PIPModel:
    """A tiny adapted backbone (``name``'s, or ``backbone`` of that network) whose PIP units
    really act (their output layers start at zero)."""
    if backbone is None:
        backbone = build(name, seed)
    model = pa.inject_pip(backbone, **injection_kwargs(name)).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.pip_units.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return model


def run_onnx(path: Path, *inputs: torch.Tensor) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})


def weights_for(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 5, generator=torch.Generator().manual_seed(seed)) + 0.05


def assert_close(got, expected) -> None:
    got = torch.as_tensor(got)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOLERANCE
