"""The release path: the built sdist and wheel, installed into new virtual environments (not
the source tree), with the core dependencies alone and with the ``train`` extra."""

import json
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from venvs import (
    CORE_SCRIPT,
    requirements_of,
    run,
    sdist_files,
    wheel_files,
    wheel_metadata,
)

pytestmark = pytest.mark.slow

# what the train extra brings and a core install must not (Pillow and numpy arrive anyway,
# through torchvision, which timm and spandrel need)
TRAIN_ONLY = {"kornia", "tifffile", "matplotlib"}


def test_wheel_and_sdist_hold_the_package(dist):
    sdist, wheel = dist
    files = set(wheel_files(wheel))
    for name in ("__init__.py", "py.typed", "cli/__init__.py", "data/degradations/rain.py"):
        assert f"pip_adapter/{name}" in files
    photos = {f for f in files if f.startswith("pip_adapter/data/photos/")}
    assert sum(f.endswith(".png") and "/ood/" not in f for f in photos) == 9
    assert sum(f.endswith(".png") and "/ood/" in f for f in photos) >= 4
    assert not any(f.startswith(("tests/", "benchmarks/", "tools/")) for f in files)
    (entry_points,) = [f for f in files if f.endswith(".dist-info/entry_points.txt")]
    assert {"pyproject.toml", "README.md", "pip_adapter/py.typed"} <= set(sdist_files(sdist))
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        assert "pip-adapter = pip_adapter.cli:main" in archive.read(entry_points).decode()


def test_core_requirements_leave_training_to_the_extra(dist):
    wheel = dist[1]
    core = {Requirement(r).name.lower() for r in map(str, requirements_of(wheel))}
    train = {r.name.lower() for r in requirements_of(wheel, ["train"])} - core
    assert core == {"torch", "einops", "timm", "safetensors", "spandrel"}
    assert train >= TRAIN_ONLY | {"pillow", "tqdm", "numpy"}
    assert "train" in wheel_metadata(wheel)["Provides-Extra"]


def test_core_install_runs_the_adapter_without_the_train_extra(core_env, tmp_path):
    script = CORE_SCRIPT % sorted(TRAIN_ONLY)
    out = json.loads(run([core_env, "-c", textwrap.dedent(script)], cwd=tmp_path).stdout)
    assert Path(out["package"]).is_relative_to(core_env.parents[1])  # the wheel, not the source
    assert out["train_only_present"] == []
    assert out["reloaded_equal"]
    assert out["sensor_logits"] == [2, 2]
    assert out["unit"] == [1, 8, 8, 8]
    assert out["psnr"] > 0
    assert "pip install 'pip-adapter[train]'" in out["data_error"]
    assert "DegradationSensor(statistics=True) needs kornia" in out["statistics_error"]
    assert "pip install 'pip-adapter[train]'" in out["statistics_error"]


def test_core_install_command_line_names_the_extra(core_env, tmp_path):
    script = core_env.with_name("pip-adapter")
    result = run([script, "demo", "--steps", "1"], check=False, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pip-adapter: error: ")
    assert "pip install 'pip-adapter[train]'" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_train_install_runs_the_command_line_and_the_demo(train_env, tmp_path):
    script = train_env.with_name("pip-adapter")
    result = run([script, "--help"], cwd=tmp_path)
    for command in ("demo", "train", "eval", "restore"):
        assert command in result.stdout
    out = tmp_path / "demo"
    demo = [script, "demo", "--steps", "2", "--batch-size", "2", "--eval-crop", "32"]
    run([*demo, "--out", out], cwd=tmp_path, timeout=600)
    for name in ("results.md", "comparison.png", "interactive_control.png", "training_curves.png"):
        assert (out / name).stat().st_size > 0
    assert "NAFNet + PIP" in (out / "results.md").read_text()
