"""The example scripts run from a clean checkout, also from an official-format checkpoint."""

import runpy
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
NAMES = ("nafnet", "restormer", "swinir")

# runs each example script given as SCRIPT OUT pairs as ``__main__``, with ``--smoke --out
# OUT``, in one new interpreter (one start-up and import for all), and prints its exit status
SMOKE_DRIVER = """
import runpy, sys
for script, out in zip(sys.argv[1::2], sys.argv[2::2]):
    sys.argv = [script, "--smoke", "--out", out]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as done:
        print(f"[{script} exited {done.code}]", flush=True)
"""


def example(name: str) -> Path:
    return EXAMPLES / f"finetune_{name}.py"


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """Per example: what its ``--smoke`` run printed and its output folder (all three run by
    the same new ``python`` process, as scripts)."""
    outs = {name: tmp_path_factory.mktemp(name) for name in NAMES}
    pairs = [str(arg) for name in NAMES for arg in (example(name), outs[name])]
    command = [sys.executable, "-c", SMOKE_DRIVER, *pairs]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    printed, runs = done.stdout, {}
    for name in NAMES:
        mark = f"[{example(name)} exited 0]"
        assert mark in printed, f"{name}: {done.stdout[-1000:]}{done.stderr[-2000:]}"
        runs[name], printed = printed.split(mark, 1)
    return {name: (runs[name], outs[name]) for name in NAMES}


def run_example(name: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run examples/finetune_NAME.py with ``--smoke *args`` as ``__main__`` in this process
    (no new interpreter to start); returns its exit status."""
    monkeypatch.setattr(sys, "argv", [str(example(name)), "--smoke", *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(example(name)), run_name="__main__")
    return done.value.code


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_smoke_mode(name, smoke_runs):
    out, folder = smoke_runs[name]
    assert f"{name} + PIP PSNR / SSIM" in out and "**average**" in out
    assert (folder / "adapter" / "adapter.safetensors").is_file()
    assert (folder / "adapter" / "sensor.safetensors").is_file()


def test_nafnet_from_an_official_basicsr_checkpoint(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    backbone = build_backbone("nafnet", "tiny")
    state = {f"module.{k}": v for k, v in backbone.state_dict().items()}
    torch.save({"params": state}, tmp_path / "NAFNet-tiny.pth")
    checkpoint, out = str(tmp_path / "NAFNet-tiny.pth"), str(tmp_path / "run")
    code = run_example("nafnet", "--checkpoint", checkpoint, "--out", out, monkeypatch=monkeypatch)
    assert code == 0, capsys.readouterr().err[-2000:]
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


def test_bad_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys):
    missing = str(tmp_path / "missing.pth")
    code = run_example(
        "nafnet", "--checkpoint", missing, "--out", str(tmp_path), monkeypatch=monkeypatch
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "no checkpoint at" in err and "Traceback" not in err
