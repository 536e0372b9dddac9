"""save_adapter / load_adapter: round trips, file contents, and refusal of bad files."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from backbones import build, injection_kwargs, train_conditioning
from safetensors.torch import load_file, save_file

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
    assert loaded.config == model.config
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
    header = {"format": "pip-adapter", "format_version": 2, "library_version": pa.__version__}
    features = [
        {"stage": "decoders.0", "layout": "image", "channels": 16},
        {"stage": "decoders.1", "layout": "image", "channels": 8},
    ]
    module = type(model.backbone).__module__
    backbone = {"class": "NAFNet", "module": module, "features": features}
    assert config == {**header, "backbone": backbone, **model.config.to_dict()}
    assert config["stages"][0] == {
        "pattern": "decoders.0",
        "at": "input",
        "channels": [0, 16],
        "prompt_dim": 16,
        "prompt_size": 8,  # NAFNet's preset: light units
        "heads": 1,
        "feature_ffn_expansion": 0.5,
    }
    assert pa.PIPConfig.from_dict({k: config[k] for k in model.config.to_dict()}) == model.config
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
    elif how == "unknown field":
        config_path.write_text(json.dumps(config | {"colour": "red"}))
    elif how == "bad field":
        config_path.write_text(json.dumps(config | {"prompt_size": "16"}))
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
        ("unknown field", ValueError, r"unknown PIPConfig fields \['colour'\]"),
        ("bad field", ValueError, "PIPConfig.prompt_size must be None or an integer"),
        ("missing weights", FileNotFoundError, r"lacks \['adapter.safetensors'\]"),
        ("wrong tensor shape", ValueError, "do not match its config.*size mismatch"),
        ("missing tensor", ValueError, "do not match its config.*Missing key"),
        ("malformed stage", ValueError, "malformed"),
    ],
)
def test_corrupt_files_are_refused_and_backbone_untouched(tmp_path, how, error, message, untouched):
    trained().save_adapter(tmp_path / "adapter")
    corrupt(tmp_path / "adapter", how)
    backbone = build("nafnet")
    with untouched(backbone), pytest.raises(error, match=message):
        pa.load_adapter(backbone, tmp_path / "adapter")


def test_mismatched_backbones_are_refused(tmp_path, untouched):
    trained().save_adapter(tmp_path / "adapter")
    with pytest.raises(ValueError, match="trained on a NAFNet, got a Restormer"):
        pa.load_adapter(build("restormer"), tmp_path / "adapter")
    from spandrel.architectures.NAFNet import NAFNet

    wider = NAFNet(width=16, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    with (
        untouched(wider),
        pytest.raises(ValueError, match=r"'decoders.0'.*16 channels.*gives .* 32"),
    ):
        pa.load_adapter(wider, tmp_path / "adapter")
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


V1 = Path(__file__).parent / "data" / "adapter_v1"


def test_version_1_files_load_and_give_the_same_outputs(tmp_path):
    """tests/data/adapter_v1 was written by pip-adapter 0.1.0 before PIPConfig existed (format
    version 1), with the outputs the model gave then."""
    assert json.loads((V1 / "adapter_config.json").read_text())["format_version"] == 1
    expected = load_file(V1 / "expected_outputs.safetensors")
    model = pa.load_adapter(build("unet"), V1)
    assert model.stages == ["middle", "decoder"]
    assert model.config == pa.PIPConfig(
        stages=[
            pa.Stage("middle", "output", (0, 16), prompt_dim=16, prompt_size=8, heads=1),
            pa.Stage("decoder", "input", (8, 16), prompt_dim=8, prompt_size=8, heads=1),
        ],
        degradations=("noise", "rain", "haze"),
        size_multiple=2,
        size_minimum=0,
        size_square=False,
        prompt_size=16,  # resolved
        design="paper",  # files from before the compact design hold the authors' units
        feature_ffn_stride=1,
    )
    with torch.no_grad():
        rain = model(expected["input"], degradation="rain")
        mixture = model(expected["input"], degradation={"noise": 0.3, "haze": 0.7})
    torch.testing.assert_close(rain, expected["rain"], rtol=0, atol=1e-6)
    torch.testing.assert_close(mixture, expected["mixture"], rtol=0, atol=1e-6)
    model.save_adapter(tmp_path / "v2")  # saved again: the current format, same model
    again = pa.load_adapter(build("unet"), tmp_path / "v2")
    assert json.loads((tmp_path / "v2" / "adapter_config.json").read_text())["format_version"] == 2
    assert again.config == model.config
    with torch.no_grad():
        assert torch.equal(again(expected["input"], degradation="rain"), rain)


def test_version_1_files_with_foreign_stage_keys_are_refused(tmp_path):
    directory = tmp_path / "adapter"
    shutil.copytree(V1, directory)
    config = json.loads((directory / "adapter_config.json").read_text())
    config["stages"][1]["topm_ratios"] = None  # units of one file must agree on it
    (directory / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="malformed.*differ"):
        pa.load_adapter(build("unet"), directory)
    del config["stages"][1]["hook"]
    (directory / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"malformed.*missing \['hook'\]"):
        pa.load_adapter(build("unet"), directory)


def test_files_that_name_no_design_hold_paper_units(tmp_path):
    """Adapter files written before ``PIPConfig.design`` existed rebuild the authors' units
    (and those from before ``feature_ffn_stride``, feed-forwards at every pixel; before
    ``degradation_ffn_rank``, feed-forwards shared by every degradation)."""
    model = pa.inject_pip(build("nafnet"), **injection_kwargs("nafnet"), design="paper")
    model.freeze_backbone()
    train_conditioning(model, steps=2)
    model.save_adapter(tmp_path / "adapter")
    path = tmp_path / "adapter" / "adapter_config.json"
    config = json.loads(path.read_text())
    assert (config["design"], config["feature_ffn_stride"]) == ("paper", 1)
    assert config["degradation_ffn_rank"] == 0
    del config["design"], config["feature_ffn_stride"], config["degradation_ffn_rank"]
    path.write_text(json.dumps(config))
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter")
    assert (loaded.config.design, loaded.config.feature_ffn_stride) == ("paper", 1)
    assert loaded.config.degradation_ffn_rank == 0
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x, degradation="rain"), model(x, degradation="rain"))


def test_per_stage_feed_forwards_are_saved_and_loaded(tmp_path):
    """A stage's own feed-forward width and stride (the full-resolution unit's, cheaper than
    the others') are written to the file and rebuild the same units."""
    stages = [
        {"pattern": r"decoders\.\d", "portion": [0, 0.5], "prompt_size": 4},
        {"pattern": r"decoders\.\d", "portion": [0.5, 1], "feature_ffn_stride": 2},
    ]
    model = pa.inject_pip(build("nafnet"), stages, feature_ffn_expansion=0.5)
    model.freeze_backbone()
    train_conditioning(model, steps=2)
    model.save_adapter(tmp_path / "adapter")
    written = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["stages"]
    assert [stage.get("feature_ffn_stride") for stage in written] == [None, 2]
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter")
    assert loaded.config == model.config
    assert [u.prompt_to_feature.ffn_stride for u in loaded.pip_units.values()] == [1, 2]
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x, degradation="rain"), model(x, degradation="rain"))
