"""native_degradations: for a degradation the backbone already restores, the adapted model is
exactly the backbone, after any training; mixtures move between the two; files keep it."""

import json

import pytest
import torch
from backbones import build, train_conditioning

import pip_adapter as pa
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.training import TrainConfig, Trainer

TASKS = ("noise", "rain", "haze")


def trained_model(tmp_path, **kwargs) -> tuple[torch.nn.Module, pa.PIPModel]:
    backbone = build("nafnet")
    model = pa.inject_pip(backbone, degradations=TASKS, native_degradations=("noise",), **kwargs)
    model.freeze_backbone()
    data = SyntheticAllInOne(degradations=TASKS, patch_size=16, samples_per_degradation=4, seed=0)
    config = TrainConfig(steps=4, batch_size=6, lr=2e-2, progress=False)
    Trainer(model, data, config, out_dir=tmp_path / "run").fit()
    return backbone, model.eval()


def backbone_output(backbone, x):
    with torch.no_grad():
        return backbone(x)


def test_native_label_gives_the_backbone_bit_exactly_after_training(tmp_path):
    backbone, model = trained_model(tmp_path)
    x = torch.rand(3, 3, 19, 23)
    with torch.no_grad():
        expected = backbone_output(backbone, x)
        assert torch.equal(model(x, degradation="noise"), expected)
        assert torch.equal(model(x, degradation=torch.tensor([0, 0, 0])), expected)
        assert torch.equal(model(x, degradation=torch.tensor([[2.0, 0, 0]] * 3)), expected)
        rain = model(x, degradation="rain")
        assert (rain - expected).abs().max() > 1e-3  # the other degradations did adapt
        per_sample = model(x, degradation=["noise", "rain", "noise"])
    assert torch.equal(per_sample[[0, 2]], expected[[0, 2]])
    assert torch.allclose(per_sample[1], rain[1], atol=1e-6)


def test_units_hold_prompts_only_for_the_other_degradations():
    model = pa.inject_pip(build("nafnet"), degradations=TASKS, native_degradations=("noise",))
    assert model.config.native_degradations == ("noise",)
    for unit in model.pip_units.values():
        assert unit.num_degradations == 2


def capture_stage_input(model: pa.PIPModel, stage: str) -> list[torch.Tensor]:
    """The feature the stage module receives, after the PIP unit's pre-hook changed it."""
    seen: list[torch.Tensor] = []
    module = dict(model.backbone.named_modules())[stage]
    module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    return seen


def test_a_mixture_interpolates_the_unit_between_backbone_and_adapter(tmp_path):
    stage = "decoders.1"  # one unit, so the feature it modulates is the same in every call
    backbone, model = trained_model(tmp_path, stages=[stage])
    seen = capture_stage_input(model, stage)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        for degradation in ("noise", "rain", {"noise": 0.25, "rain": 0.75}):
            mixed = model(x, degradation=degradation)
    native, adapted, between = seen
    expected = torch.lerp(native, adapted, 0.75)
    assert torch.allclose(between, expected, atol=1e-6)
    assert not torch.allclose(between, native) and not torch.allclose(between, adapted)
    assert (mixed - backbone_output(backbone, x)).abs().max() > 1e-4


def test_save_and_load_keep_native_degradations(tmp_path):
    backbone, model = trained_model(tmp_path)
    model.save_adapter(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["native_degradations"] == ["noise"]
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter").eval()
    assert loaded.config.native_degradations == ("noise",)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x, degradation="noise"), backbone_output(backbone, x))
        assert torch.equal(loaded(x, degradation="haze"), model(x, degradation="haze"))


def test_adapter_files_without_the_key_load_with_no_native_degradation(tmp_path):
    model = pa.inject_pip(build("nafnet"), degradations=TASKS)
    model.save_adapter(tmp_path)
    path = tmp_path / "adapter_config.json"
    config = json.loads(path.read_text())
    del config["native_degradations"]
    path.write_text(json.dumps(config))
    assert pa.load_adapter(build("nafnet"), tmp_path).config.native_degradations == ()


@pytest.mark.parametrize(
    ("native", "match"),
    [
        ("noise", "sequence of names"),
        (("snow",), r"\['snow'\] are not among the degradations"),
        (("noise", "noise"), "must be distinct"),
        (TASKS, "leave at least one"),
    ],
)
def test_bad_native_degradations_are_refused_before_touching_the_backbone(native, match):
    backbone = build("nafnet")
    with pytest.raises(ValueError, match=match):
        pa.inject_pip(backbone, degradations=TASKS, native_degradations=native)
    assert not backbone._forward_pre_hooks and not backbone.decoders[0]._forward_pre_hooks


def test_train_command_keeps_the_checkpoint_exact_for_its_native_degradation(tmp_path, capsys):
    from pip_adapter.backbones import load_backbone
    from pip_adapter.cli import main

    checkpoint = tmp_path / "denoiser.pth"
    torch.save({"params": build("nafnet").state_dict()}, checkpoint)  # as BasicSR saves
    common = ["train", "--backbone", "nafnet", "--checkpoint", str(checkpoint), "--steps", "2"]
    common += ["--batch-size", "5", "--patch-size", "16", "--sensor-steps", "0"]
    common += ["--checkpoint-every", "0", "--out", str(tmp_path / "run")]
    assert main([*common, "--native-degradations", "noise"]) == 0
    model = pa.load_adapter(load_backbone(checkpoint), tmp_path / "run" / "adapter").eval()
    assert model.config.native_degradations == ("noise",)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x, degradation="noise"), load_backbone(checkpoint)(x))
    assert main([*common, "--native-degradations", "snow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "native_degradations ['snow'] are not among the degradations" in err


def test_growing_a_model_with_a_native_degradation_keeps_it_exact(tmp_path):
    backbone, model = trained_model(tmp_path)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        rain = model(x, degradation="rain")
    model.add_degradations(["snow"], init={"snow": "rain"})  # native names have no prompt row
    assert all(unit.num_degradations == 3 for unit in model.pip_units.values())
    with torch.no_grad():
        assert torch.equal(model(x, degradation="noise"), backbone_output(backbone, x))
        assert torch.allclose(model(x, degradation="snow"), rain, atol=1e-6)
    with pytest.raises(ValueError):
        model.add_degradations(["jpeg"], init={"jpeg": "noise"})


def test_clean_and_native_degradations_combine():
    """One notion of what the units see: neither 'clean' (the identity) nor a native
    degradation (the backbone itself) has a prompt row."""
    backbone = build("nafnet")
    names = ("clean", "noise", "rain", "haze")
    model = pa.inject_pip(backbone, degradations=names, native_degradations=("noise",))
    assert model.config.adapted_degradations == ("rain", "haze")
    assert all(unit.num_degradations == 2 for unit in model.pip_units.values())
    train_conditioning(model, steps=2)  # units away from the identity
    model.eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x, degradation="clean"), x)
        assert torch.equal(model(x, degradation="noise"), backbone_output(backbone, x))
        assert not torch.equal(model(x, degradation="rain"), backbone_output(backbone, x))
    with pytest.raises(ValueError, match="not among the degradations the model restores"):
        pa.inject_pip(build("nafnet"), degradations=names, native_degradations=("clean",))
