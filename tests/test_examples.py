"""The example scripts run from a clean checkout, also from an official-format checkpoint."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.cli import main
from pip_adapter.data import read_image, write_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, *args):
    command = [sys.executable, str(EXAMPLES / f"finetune_{name}.py"), "--smoke", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nafnet", "restormer", "swinir"])
def test_smoke_mode(name, tmp_path):
    out = run_example(name, "--out", str(tmp_path))
    assert f"{name} + PIP PSNR / SSIM" in out and "**average**" in out
    assert (tmp_path / "adapter" / "adapter.safetensors").is_file()
    assert (tmp_path / "adapter" / "sensor.safetensors").is_file()


def test_nafnet_from_an_official_basicsr_checkpoint(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("nafnet", "tiny")
    state = {f"module.{k}": v for k, v in backbone.state_dict().items()}
    torch.save({"params": state}, tmp_path / "NAFNet-tiny.pth")
    run_example(
        "nafnet", "--checkpoint", str(tmp_path / "NAFNet-tiny.pth"), "--out", str(tmp_path / "run")
    )
    adapter = tmp_path / "run" / "adapter"
    assert not (adapter / "backbone.safetensors").exists()  # frozen: the checkpoint is enough
    model = pa.load_adapter(build_backbone("nafnet", "tiny"), adapter)
    assert model.sensor is not None
    write_image(torch.rand(3, 21, 34), tmp_path / "in.png")
    code = main(
        [
            "restore",
            str(tmp_path / "in.png"),
            "--adapter",
            str(adapter),
            "--degradation",
            "auto",
            "-o",
            str(tmp_path / "restored"),
        ]
    )
    assert code == 0
    assert read_image(tmp_path / "restored" / "in.png").shape == (3, 21, 34)


def test_bad_arguments_are_one_line_errors(tmp_path):
    command = [
        sys.executable,
        str(EXAMPLES / "finetune_nafnet.py"),
        "--smoke",
        "--checkpoint",
        str(tmp_path / "missing.pth"),
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no checkpoint at" in done.stderr and "Traceback" not in done.stderr
