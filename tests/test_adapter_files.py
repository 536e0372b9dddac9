"""save_adapter / load_adapter: round trips, file contents, and refusal of bad files."""

import json

import pytest
import torch
from backbones import build, injection_kwargs
from safetensors.torch import load_file, save_file
from test_injection import assert_untouched, snapshot, train_conditioning

import pip_adapter as pa


def trained(name="nafnet"):
    backbone = build(name)
    model = pa.inject_pip(backbone, **injection_kwargs(name)).freeze_backbone()
    train_conditioning(model, steps=2)
    return model


@pytest.mark.parametrize("name", ["nafnet", "restormer", "swinir", "unet"])
def test_round_trip_reproduces_outputs(tmp_path, name):
    model = trained(name)
    model.save_adapter(tmp_path / "adapter")
    loaded = pa.load_adapter(build(name), tmp_path / "adapter")
    assert loaded.stages == model.stages and loaded.plan == model.plan
    x = torch.rand(2, 3, 20, 20)
    for degradation in ("rain", {"noise": 0.3, "blur": 0.7}):
        with torch.no_grad():
            assert torch.equal(
                loaded(x, degradation=degradation), model(x, degradation=degradation)
            )


def test_files_hold_config_and_adapter_weights_only(tmp_path):
    model = trained()
    out = model.save_adapter(tmp_path / "adapter")
    assert sorted(p.name for p in out.iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["format"] == "pip-adapter" and config["format_version"] == 1
    assert config["backbone"]["class"] == "NAFNet"
    assert config["degradations"] == list(pa.DEFAULT_DEGRADATIONS)
    assert [s["name"] for s in config["stages"]] == ["decoders.0", "decoders.1"]
    assert config["stages"][0]["feature_shape"] == [1, 16, 32, 32]
    assert {"prompt_dim", "prompt_size", "heads", "channels", "layout"} <= set(config["stages"][0])
    tensors = load_file(out / "adapter.safetensors")
    assert set(tensors) == set(model.pip_units.state_dict())
    assert sum(t.numel() for t in tensors.values()) == sum(
        p.numel() for p in model.pip_units.parameters()
    )


def corrupt(directory, how):
    config_path = directory / "adapter_config.json"
    weights_path = directory / "adapter.safetensors"
    config = json.loads(config_path.read_text())
    if how == "truncated weights":
        weights_path.write_bytes(weights_path.read_bytes()[:100])
    elif how == "not json":
        config_path.write_text("{not json")
    elif how == "foreign json":
        config_path.write_text(json.dumps({"hello": 1}))
    elif how == "future version":
        config_path.write_text(json.dumps(config | {"format_version": 99}))
    elif how == "missing key":
        del config["stages"]
        config_path.write_text(json.dumps(config))
    elif how == "missing weights":
        weights_path.unlink()
    elif how == "wrong tensor shape":
        tensors = load_file(weights_path)
        key = next(k for k in tensors if k.endswith("degradation_prompt.prompts"))
        tensors[key] = torch.zeros(3, 3)
        save_file(tensors, weights_path)
    elif how == "missing tensor":
        tensors = load_file(weights_path)
        tensors.pop(next(iter(tensors)))
        save_file(tensors, weights_path)
    elif how == "malformed stage":
        config["stages"][0]["colour"] = "red"
        config_path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("how", "error", "message"),
    [
        ("truncated weights", ValueError, "could not read adapter weights"),
        ("not json", ValueError, "is not valid JSON"),
        ("foreign json", ValueError, "is not a pip-adapter config"),
        ("future version", ValueError, "format_version 99"),
        ("missing key", ValueError, r"lacks the keys \['stages'\]"),
        ("missing weights", FileNotFoundError, r"lacks \['adapter.safetensors'\]"),
        ("wrong tensor shape", ValueError, "do not match its config.*size mismatch"),
        ("missing tensor", ValueError, "do not match its config.*Missing key"),
        ("malformed stage", ValueError, "malformed"),
    ],
)
def test_corrupt_files_are_refused_and_backbone_untouched(tmp_path, how, error, message):
    trained().save_adapter(tmp_path / "adapter")
    corrupt(tmp_path / "adapter", how)
    backbone = build("nafnet")
    before = snapshot(backbone)
    with pytest.raises(error, match=message):
        pa.load_adapter(backbone, tmp_path / "adapter")
    assert_untouched(backbone, before)


def test_mismatched_backbones_are_refused(tmp_path):
    trained().save_adapter(tmp_path / "adapter")
    with pytest.raises(ValueError, match="trained on a NAFNet, got a Restormer"):
        pa.load_adapter(build("restormer"), tmp_path / "adapter")
    from spandrel.architectures.NAFNet import NAFNet

    wider = NAFNet(width=16, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    before = snapshot(wider)
    with pytest.raises(ValueError, match=r"'decoders.0'.*16 channels.*gives .* 32"):
        pa.load_adapter(wider, tmp_path / "adapter")
    assert_untouched(wider, before)
    shallower = NAFNet(width=8, enc_blk_nums=[1], dec_blk_nums=[1])
    with pytest.raises(ValueError, match="'decoders.1' matches no module"):
        pa.load_adapter(shallower, tmp_path / "adapter")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pa.load_adapter(build("nafnet"), tmp_path / "nowhere")


def test_saving_overwrites_atomically(tmp_path):
    model = trained()
    model.save_adapter(tmp_path / "adapter")
    with torch.no_grad():
        next(iter(model.pip_units.parameters())).add_(1.0)
    model.save_adapter(tmp_path / "adapter")
    assert not list((tmp_path / "adapter").glob(".*tmp"))
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter")
    first = next(iter(loaded.pip_units.parameters()))
    assert torch.equal(first, next(iter(model.pip_units.parameters())))
