"""The GPU latency benchmark (benchmarks/gpu_latency.py) builds SwinIR for the measured size:
at another size spandrel's SwinIR makes its attention masks on the host at every pass, a copy
that a CUDA graph cannot record."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_latency  # benchmarks/ is not a package: found through the path above

import pip_adapter as pa
from pip_adapter.backbones import build_backbone


@pytest.mark.parametrize("fit", [False, True])
def test_swinir_fitted_to_the_size_makes_no_mask_during_a_pass(fit, monkeypatch):
    from spandrel.architectures.SwinIR.__arch.SwinIR import SwinTransformerBlock

    size = 128  # the tiny SwinIR is built for 64²
    made: list[tuple[int, int]] = []
    calculate = SwinTransformerBlock.calculate_mask
    monkeypatch.setattr(
        SwinTransformerBlock,
        "calculate_mask",
        lambda block, x_size: made.append(x_size) or calculate(block, x_size),
    )
    overrides = gpu_latency.fitted("swinir", size) if fit else {}
    torch.manual_seed(0)
    backbone = build_backbone("swinir", "tiny", **overrides).eval()
    model = pa.inject_pip(backbone).eval()
    made.clear()  # the masks built with the network, for its img_size
    x = torch.rand(1, 3, size, size)
    with torch.inference_mode():
        backbone(x)
        model(x, degradation="rain")
    assert (made == []) is fit
