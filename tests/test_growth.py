"""PIPModel.add_degradations: new prompt rows, bit-exact old degradations, files, the sensor."""

import copy
import json
import shutil

import pytest
import torch
from backbones import build, injection_kwargs, train_conditioning

import pip_adapter as pa
from pip_adapter import export
from pip_adapter.bundle import load_bundle
from pip_adapter.cli import main
from pip_adapter.data import SyntheticAllInOne, read_image, write_image
from pip_adapter.data.merged import MergedDegradations
from pip_adapter.injection.growth import light_parameters

OLD = ("noise", "rain")
NEW = ("jpeg", "snow")
OLD_SPECS = ["noise", "rain", {"noise": 0.3, "rain": 0.7}, torch.tensor([1, 0])]


def trained(name="nafnet", seed=0, **options):
    """A model injected into a tiny real backbone, its two degradations trained apart."""
    model = pa.inject_pip(build(name, seed), degradations=OLD, **injection_kwargs(name), **options)
    train_conditioning(model)
    return model.eval()


def image(seed=3):
    return torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def outputs(model, x, specs):
    with torch.no_grad():
        return [model(x, degradation=spec) for spec in specs]


def train_new(model, optimizer, x, steps=4):
    """Real steps on the new degradations (and the prompt regulariser), in training mode."""
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum((model(x, degradation=name) - x.flip(-1)).abs().mean() for name in NEW)
        (loss + model.prompt_regularization()).backward()
        optimizer.step()
    return model.eval()


OPTIMISERS = {
    "adamw_weight_decay": lambda params: torch.optim.AdamW(params, lr=5e-2, weight_decay=0.5),
    "sgd_momentum": lambda params: torch.optim.SGD(
        params, lr=0.5, momentum=0.9, weight_decay=0.1, nesterov=True
    ),
}


@pytest.mark.parametrize("optimiser", sorted(OPTIMISERS))
@pytest.mark.parametrize("name", ["nafnet", "unet"])
def test_prompts_mode_keeps_old_degradations_bit_exact(name, optimiser):
    model = trained(name)
    x = image()
    before = outputs(model, x, OLD_SPECS)
    new_before = outputs(model.add_degradations(list(NEW), mode="prompts"), x, NEW)
    trainable = [p for p in model.parameters() if p.requires_grad]
    train_new(model, OPTIMISERS[optimiser](trainable), x)
    after = outputs(model, x, OLD_SPECS)
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
    moved = [(a - b).abs().max() for a, b in zip(outputs(model, x, NEW), new_before, strict=True)]
    assert min(moved) > 1e-4, "training did not move the new degradations"


def test_prompts_mode_trains_only_the_new_rows():
    model = trained()
    model.sensor = pa.DegradationSensor(OLD, backbone="test_resnet", crop_size=32)
    model.add_degradations(NEW)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"pip_units.{key}.degradation_prompt.added_0" for key in model.pip_units}
    for unit in model.pip_units.values():
        prompts = unit.degradation_prompt
        assert prompts.added_0.shape == (2, unit.prompt_dim)
        assert prompts.added_0.untyped_storage().data_ptr() != (
            prompts.prompts.untyped_storage().data_ptr()
        )


def test_new_rows_start_at_the_mean_of_the_old_rows_or_at_a_chosen_one():
    model = trained()
    x = image()
    uniform, rain = outputs(model, x, [{"noise": 1, "rain": 1}, "rain"])
    model.add_degradations(["jpeg", "snow"], init={"snow": "rain"})
    jpeg, snow = outputs(model, x, NEW)
    torch.testing.assert_close(jpeg, uniform, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(snow, rain, rtol=1e-5, atol=1e-6)
    for unit in model.pip_units.values():
        prompts = unit.degradation_prompt
        torch.testing.assert_close(prompts.added_0[0], prompts.prompts.mean(dim=0))
        torch.testing.assert_close(prompts.added_0[1], prompts.prompts[1])


def test_vocabulary_config_and_files_follow(tmp_path):
    model = trained()
    model.add_degradations(NEW, mode="light")
    assert model.degradations == OLD + NEW == model.config.degradations
    assert all(unit.num_degradations == 4 for unit in model.pip_units.values())
    train_new(model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad]), image())
    model.save_adapter(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["degradations"] == list(OLD + NEW)
    loaded = pa.load_adapter(build("nafnet"), tmp_path).eval()
    loaded.backbone.load_state_dict(model.backbone.state_dict())
    specs = [*OLD_SPECS, *NEW, {"jpeg": 0.5, "rain": 0.5}]
    for a, b in zip(outputs(model, image(), specs), outputs(loaded, image(), specs), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_grown_state_dict_loads_back_and_growth_repeats():
    model = trained()
    model.add_degradations(["jpeg"])
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in (p for p in model.parameters() if p.requires_grad):
            p.add_(1.0)
    twin.load_state_dict(model.state_dict())  # e.g. a trainer resuming from a checkpoint
    x = image()
    assert torch.equal(*outputs(twin, x, ["jpeg"]), *outputs(model, x, ["jpeg"]))
    model.add_degradations(["snow"])
    assert model.degradations == (*OLD, "jpeg", "snow")
    trainable = {n.rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"added_1"}
    key = next(k for k in model.state_dict() if k.endswith("degradation_prompt.prompts"))
    assert model.state_dict()[key].shape[0] == 4


def test_light_mode_trains_new_rows_and_a_small_part_of_the_units():
    model = trained()
    model.add_degradations(NEW, mode="light")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for key, unit in model.pip_units.items():
        light = {f"pip_units.{key}.{n}" for n, p in unit.named_parameters()} & trainable
        leaves = {n.split(".")[-2] if "norm" in n else n.split(".")[-1] for n in light}
        assert leaves == {
            "added_0",
            "temperature",
            "topm_weights",
            "norm_query",
            "norm_context",
            "norm_feature",
            "norm_prompt",
            "norm_ffn",
        }
        share = sum(p.numel() for p in light_parameters(unit)) / sum(
            p.numel() for p in unit.parameters()
        )
        assert share < 0.05
    assert not any(p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize(
    ("names", "kwargs", "message"),
    [
        (["rain"], {}, "already has the degradations"),
        (["jpeg", "jpeg"], {}, "must be distinct"),
        (["clean"], {}, "needs no prompt"),
        (["auto"], {}, "reserved"),
        (["jpeg,snow"], {}, "separate the entries"),
        ([" jpeg"], {}, "without surrounding spaces"),
        ([""], {}, "non-empty string"),
        ([], {}, "non-empty list"),
        ("jpeg", {}, "non-empty list"),
        (["jpeg"], {"mode": "full"}, "mode must be one of"),
        (["jpeg"], {"init": {"snow": "rain"}}, "not among the new"),
        (["jpeg"], {"init": {"jpeg": "snow"}}, "unknown degradation"),
        (["jpeg"], {"init": {"jpeg": 3}}, "must be an old degradation name"),
    ],
)
def test_bad_requests_are_refused_and_leave_the_model_untouched(names, kwargs, message, untouched):
    model = trained()
    with untouched(model), pytest.raises(ValueError, match=message):
        model.add_degradations(names, **kwargs)
    assert model.degradations == OLD


# units with each degradation's own feed-forward updates (PIPConfig.degradation_ffn_rank)
UPDATES = {"degradation_ffn_rank": 2}
UPDATE_FACTORS = [f"ffn_{side}_update.{f}_0" for side in ("in", "out") for f in ("up", "down")]


@pytest.mark.parametrize("optimiser", sorted(OPTIMISERS))
def test_feed_forward_updates_grow_keeping_old_degradations_bit_exact(optimiser):
    model = trained(**UPDATES)
    x = image()
    before = outputs(model, x, OLD_SPECS)
    model.add_degradations(list(NEW))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        f"pip_units.{key}.{name}"
        for key in model.pip_units
        for name in [
            "degradation_prompt.added_0",
            *(f"prompt_to_feature.{f}" for f in UPDATE_FACTORS),
        ]
    }
    new = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    train_new(model, OPTIMISERS[optimiser]([p for p in model.parameters() if p.requires_grad]), x)
    after = outputs(model, x, OLD_SPECS)
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
    moved = dict(model.named_parameters())
    assert all(not torch.equal(moved[n], p) for n, p in new.items()), "an update did not train"


def test_new_feed_forward_updates_start_at_the_nearest_to_their_mixture():
    model = trained(**UPDATES)
    x = image()
    rain, uniform = outputs(model, x, ["rain", {"noise": 1, "rain": 1}])
    updates = [u.prompt_to_feature.ffn_in_update for u in model.pip_units.values()]
    mixtures = [u(torch.full((1, 2), 0.5))[0] for u in updates]
    model.add_degradations(list(NEW), init={"snow": "rain"})
    jpeg, snow = outputs(model, x, NEW)
    # the prompt and the updates of one old degradation (an exact copy, to rounding)
    torch.testing.assert_close(snow, rain, rtol=1e-5, atol=1e-6)
    # a blend of two rank-2 updates: the nearest rank-2 update, close to the blend's output
    for update, mixture in zip(updates, mixtures, strict=True):
        grown = update(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))[0].detach()
        tail = torch.linalg.svdvals(mixture.detach())[2:].square().sum().sqrt()
        torch.testing.assert_close(torch.linalg.matrix_norm(grown - mixture.detach()), tail)
    assert 0 < (jpeg - uniform).abs().max() < 0.1 * (rain - uniform).abs().max()


def test_grown_feed_forward_updates_save_and_load(tmp_path):
    model = trained(**UPDATES)
    model.add_degradations(list(NEW))
    train_new(model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad]), image())
    model.save_adapter(tmp_path / "adapter")
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter").eval()
    # the file is that of a model built with all four degradations, which loads it as is
    fresh = pa.inject_pip(
        build("nafnet"), degradations=OLD + NEW, **injection_kwargs("nafnet"), **UPDATES
    )
    fresh.load_state_dict(model.state_dict())
    # exact for steering within the old or the new degradations; a mixture across both, whose
    # shares the grown model sums block by block, to rounding
    within, across = [*OLD_SPECS, *NEW, {"jpeg": 0.3, "snow": 0.7}], {"jpeg": 0.5, "rain": 0.5}
    *expected, expected_mixed = outputs(model, image(), [*within, across])
    for other in (loaded, fresh.eval()):
        other.backbone.load_state_dict(model.backbone.state_dict())
        *got, mixed = outputs(other, image(), [*within, across])
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
        torch.testing.assert_close(mixed, expected_mixed, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_grown_feed_forward_updates_export(tmp_path):
    pytest.importorskip("onnxruntime")
    from exporting import assert_close, run_onnx

    # the tiny U-Net: the grown units are the graph under test, a smaller backbone exports faster
    model = trained("unet", **UPDATES)
    model.add_degradations(list(NEW))
    train_new(model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad]), image())
    x, w = image(), torch.tensor([[0.0, 0.2, 0.8, 0.0], [0.1, 0.0, 0.3, 0.6]])
    (restored,) = run_onnx(export.to_onnx(model, tmp_path / "model.onnx", optimize=False), x, w)
    with torch.no_grad():
        assert_close(restored, model(x, degradation=w))


@pytest.mark.parametrize("heads", [{}, {"statistics": True}, {"sharpness": True}])
def test_sensor_grows_keeping_its_old_classes(heads):
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(OLD, backbone="test_resnet", crop_size=32, **heads).eval()
    x = torch.rand(4, 3, 40, 40)
    with torch.no_grad():
        before = sensor(x)
        sensor.add_degradations(NEW)
        after = sensor(x)
    assert sensor.degradations == OLD + NEW
    assert sensor.config()["degradations"] == list(OLD + NEW)
    torch.testing.assert_close(after[:, :2], before)
    torch.testing.assert_close(after[:, 2:], before.mean(dim=1, keepdim=True).expand(-1, 2))
    assert torch.equal(after.argmax(dim=1), before.argmax(dim=1))
    with pytest.raises(ValueError, match="unique"):
        sensor.add_degradations(["noise"])


# the command line, end to end on a tiny NAFNet: train on two degradations, add two, restore
TRAIN = ["--steps", "2", "--batch-size", "2", "--patch-size", "32", "--checkpoint-every", "0"]
ADDED = ",".join(NEW)
# 'pip-adapter train' adds "clean" (no prompt rows); the new degradations follow it
GROWN = (*OLD, "clean", *NEW)
STRENGTHS = {OLD[0]: 0.5}


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """(the trained bundle, the bundle grown from it with a sensor)."""
    root = tmp_path_factory.mktemp("grow")
    first = ["train", "--backbone", "nafnet", "--size", "tiny", "--degradations", ",".join(OLD)]
    assert main([*first, *TRAIN, "--sensor-steps", "2", "--out", str(root / "a")]) == 0
    # with output strengths fitted (by hand here): growth keeps them (prompts mode)
    config_path = root / "a" / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "output_strength": STRENGTHS}))
    grow = ["train", "--adapter", str(root / "a" / "adapter"), "--add-tasks", ADDED]
    assert main([*grow, *TRAIN, "--sensor-steps", "2", "--out", str(root / "b")]) == 0
    return root / "a" / "adapter", root / "b" / "adapter"


def test_cli_growth_writes_a_new_bundle_and_keeps_the_old_one(grown):
    old, new = grown
    config = json.loads((new / "adapter_config.json").read_text())
    assert config["degradations"] == list(GROWN)
    assert json.loads((new / "sensor_config.json").read_text())["degradations"] == list(GROWN)
    assert json.loads((old / "adapter_config.json").read_text())["degradations"] == [*OLD, "clean"]
    assert config["output_strength"] == STRENGTHS  # kept: the old outputs are unchanged
    before, after = load_bundle(old).eval(), load_bundle(new).eval()
    x = image()
    # prompts mode (the default): the old degradations' outputs are bit-exact
    assert all(
        torch.equal(a, b)
        for a, b in zip(outputs(before, x, OLD_SPECS), outputs(after, x, OLD_SPECS), strict=True)
    )


@pytest.mark.parametrize("degradation", ["jpeg", "auto", "snow:0.5,rain:0.5"])
def test_restore_with_a_grown_bundle(grown, tmp_path, degradation):
    write_image(torch.rand(3, 37, 53), tmp_path / "in.png")
    args = ["restore", str(tmp_path / "in.png"), "--adapter", str(grown[1])]
    assert main([*args, "--degradation", degradation, "-o", str(tmp_path / "o")]) == 0
    assert read_image(tmp_path / "o" / "in.png").shape == (3, 37, 53)


def test_cli_light_mode_trains_with_replay(grown, tmp_path):
    grow = ["train", "--adapter", str(grown[0]), "--add-tasks", ADDED, "--mode", "light"]
    assert main([*grow, *TRAIN, "--sensor-steps", "0", "--out", str(tmp_path)]) == 0
    before, after = load_bundle(grown[0]).eval(), load_bundle(tmp_path / "adapter").eval()
    assert after.degradations == GROWN and after.sensor is not None
    assert after.config.output_strength == ()  # fitted for the units light mode changed
    pairs = zip(outputs(before, image(), OLD), outputs(after, image(), OLD), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)  # light mode trains shared parameters


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--add-tasks", "rain"], "already has the degradations ['rain']"),
        (["--add-tasks", "clean"], "needs no prompt"),
        (["--add-tasks", "jpeg", "--backbone", "nafnet"], "--backbone cannot be combined"),
        (["--add-tasks", "jpeg", "--degradations", "noise,jpeg"], "--degradations cannot be"),
        (["--add-tasks", "jpeg", "--strength-photos", "."], "--strength-photos cannot be"),
        (["--add-tasks", "jpeg", "--degradation-ffn-rank", "8"], "--degradation-ffn-rank cannot"),
        ([], "--adapter needs --add-degradations"),
    ],
)
def test_cli_growth_errors_are_one_line(grown, tmp_path, capsys, args, message):
    code = main(["train", "--adapter", str(grown[0]), *args, *TRAIN, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "adapter").exists()


def test_cli_growth_never_writes_over_its_input(grown, capsys):
    old = grown[0]
    files = {p.name: p.read_bytes() for p in old.iterdir()}
    for out in (old, old.parent):
        grow = ["train", "--adapter", str(old), "--add-tasks", ADDED, *TRAIN, "--out", str(out)]
        assert main(grow) == 2
        assert "would write over the adapter it starts from" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in old.iterdir()} == files


def test_cli_growth_keeps_a_previous_run_unless_overwrite(grown, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(grown[1].parent, run)
    files = {p.name: p.read_bytes() for p in (run / "adapter").iterdir()}
    grow = ["train", "--adapter", str(grown[0]), "--add-tasks", "jpeg", *TRAIN, "--out", str(run)]
    assert main([*grow, "--sensor-steps", "0"]) == 2
    assert "holds a previous run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (run / "adapter").iterdir()} == files
    assert main([*grow, "--sensor-steps", "0", "--overwrite"]) == 0
    config = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert config["degradations"] == [*OLD, "clean", "jpeg"]


def test_cli_needs_a_backbone_or_an_adapter(tmp_path, capsys):
    assert main(["train", *TRAIN, "--out", str(tmp_path)]) == 2
    assert "--backbone is required" in capsys.readouterr().err
    assert main(["train", "--add-tasks", ADDED, *TRAIN, "--out", str(tmp_path)]) == 2
    assert "--add-degradations needs --adapter" in capsys.readouterr().err


def test_merged_datasets_map_ids_into_one_vocabulary():
    new = SyntheticAllInOne(degradations=NEW, patch_size=16, samples_per_degradation=2)
    old = SyntheticAllInOne(degradations=OLD, patch_size=16, samples_per_degradation=2)
    merged = MergedDegradations([new, old], OLD + NEW)
    assert len(merged) == len(new) + len(old) == 8
    assert [merged[i][2] for i in range(len(merged))] == [2, 3, 2, 3, 0, 1, 0, 1]
    assert torch.equal(merged[5][0], old[1][0])
    merged.set_epoch(1)
    assert new.epoch == old.epoch == 1
    with pytest.raises(ValueError, match=r"\['snow'\], which are not among"):
        MergedDegradations([new], ("jpeg", "noise"))
