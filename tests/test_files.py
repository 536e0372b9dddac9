"""Atomic files: the writer itself, bundles that can move, and one write of each file per run."""

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import pip_adapter.files as files
from pip_adapter import inject_pip
from pip_adapter.backbones import build_backbone
from pip_adapter.bundle import load_bundle, save_bundle
from pip_adapter.files import atomic_write, write_json, write_safetensors
from pip_adapter.recipes import FinetuneRecipe, finetune


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_files_get_the_mode_of_the_umask_and_no_temporary_is_left(tmp_path, umask_027):
    write_json(tmp_path / "a" / "config.json", {"x": 1})
    write_safetensors(tmp_path / "a" / "weights.safetensors", {"w": torch.ones(2)})
    for name in ("config.json", "weights.safetensors"):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "config.json",
        "weights.safetensors",
    ]
    assert json.loads((tmp_path / "a" / "config.json").read_text()) == {"x": 1}
    assert torch.equal(load_file(tmp_path / "a" / "weights.safetensors")["w"], torch.ones(2))


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = write_json(tmp_path / "config.json", {"version": 1})

    def half_then_fail(path):
        path.write_text('{"version": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_bundle_moved_with_its_checkpoint_still_loads(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("nafnet", "tiny")
    torch.save(backbone.state_dict(), tmp_path / "nafnet.pth")
    model = inject_pip(backbone)
    save_bundle(
        model, tmp_path / "runs" / "adapter", backbone="nafnet", checkpoint=tmp_path / "nafnet.pth"
    )
    recipe = json.loads((tmp_path / "runs" / "adapter" / "backbone.json").read_text())
    assert recipe["checkpoint"] == "../../nafnet.pth" and recipe["checkpoint_relative"] is True
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(tmp_path / "runs", moved / "runs")
    shutil.move(tmp_path / "nafnet.pth", moved / "nafnet.pth")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(load_bundle(moved / "runs" / "adapter")(x, "rain"), model(x, "rain"))


def test_a_bundle_with_an_absolute_checkpoint_path_loads(tmp_path):
    """Bundles written before relative paths named the checkpoint by its absolute path."""
    torch.manual_seed(0)
    backbone = build_backbone("nafnet", "tiny")
    torch.save(backbone.state_dict(), tmp_path / "nafnet.pth")
    save_bundle(
        inject_pip(backbone),
        tmp_path / "adapter",
        backbone="nafnet",
        checkpoint=tmp_path / "nafnet.pth",
    )
    recipe_path = tmp_path / "adapter" / "backbone.json"
    recipe = json.loads(recipe_path.read_text())
    recipe_path.write_text(json.dumps({**recipe, "checkpoint": str(tmp_path / "nafnet.pth")}))
    assert load_bundle(tmp_path / "adapter").stages == ["decoders.0", "decoders.1"]


def test_a_fine_tuning_run_writes_each_file_once(tmp_path, monkeypatch):
    written = Counter()
    replace = os.replace

    def counting(source, target):
        written[os.path.relpath(target, tmp_path)] += 1
        replace(source, target)

    monkeypatch.setattr(files.os, "replace", counting)
    recipe = FinetuneRecipe("nafnet", out=tmp_path).smoke()
    finetune(recipe)
    assert set(written.values()) == {1}, written
    assert set(written) == {
        "checkpoint.pt",
        "curves.png",
        "adapter/adapter_config.json",
        "adapter/adapter.safetensors",
        "adapter/sensor_config.json",
        "adapter/sensor.safetensors",
        "adapter/backbone.json",
        "adapter/backbone.safetensors",
    }


def test_kill_during_a_write_of_the_command_line_leaves_no_temporary(tmp_path, capsys):
    """The command line turns SIGTERM (``kill``) into a clean stop: the atomic write that was
    under way removes its temporary file and the previous file stays."""
    import signal

    from pip_adapter.cli.errors import run_reporting_errors

    target = write_json(tmp_path / "config.json", {"version": 1})

    def killed_while_writing(path):
        path.write_text('{"version": ')
        os.kill(os.getpid(), signal.SIGTERM)

    handler = signal.getsignal(signal.SIGTERM)
    status = run_reporting_errors("cmd", lambda: atomic_write(target, killed_while_writing))
    assert status == 130 and "cmd: interrupted" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    assert json.loads(target.read_text()) == {"version": 1}
    assert signal.getsignal(signal.SIGTERM) == handler  # restored afterwards


def test_content_is_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    """A checkpoint (as every file) is on disk before it takes the target's name, so a power
    cut cannot leave a renamed but empty file."""
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append("fsync") or fsync(fd))
    monkeypatch.setattr(files.os, "replace", lambda a, b: events.append("replace") or replace(a, b))
    files.write_torch(tmp_path / "checkpoint.pt", {"step": 4, "w": torch.ones(3)})
    assert events[:2] == ["fsync", "replace"]  # then the folder's entry, where possible
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 4


def test_a_bundle_save_that_fails_midway_leaves_a_bundle_that_loads(
    tmp_path, monkeypatch, umask_027
):
    torch.manual_seed(0)
    model = inject_pip(build_backbone("nafnet", "tiny"))
    directory = save_bundle(
        model, tmp_path / "bundle", backbone="nafnet", size="tiny", save_backbone_weights=True
    )
    # every file of the bundle gets the umask's mode (safetensors alone would give 0600)
    assert {p.stat().st_mode & 0o777 for p in directory.iterdir()} == {0o640}
    backbone = (directory / "backbone.safetensors").read_bytes()
    save = files.save_file

    def crash_on_the_backbone(tensors, path, metadata=None):
        if "backbone" in str(path):
            Path(path).write_bytes(b"\0" * 100)
            raise OSError(28, "No space left on device")
        return save(tensors, path, metadata)

    monkeypatch.setattr(files, "save_file", crash_on_the_backbone)
    with pytest.raises(OSError, match="No space left"):
        save_bundle(model, directory, backbone="nafnet", size="tiny", save_backbone_weights=True)
    assert (directory / "backbone.safetensors").read_bytes() == backbone
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(load_bundle(directory)(x, "rain"), model(x, "rain"))
