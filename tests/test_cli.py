"""The pip-adapter command line, run for real on tiny models and real files."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pip_adapter import DegradationSensor, PIPConfig
from pip_adapter.bundle import load_bundle, save_bundle
from pip_adapter.cli import build_parser, main
from pip_adapter.cli.options import recipe_from_args
from pip_adapter.data import read_image, write_image
from pip_adapter.recipes import ADAPTER_FFN_RANK, FinetuneRecipe, default_pip, strength_pairs
from pip_adapter.training import TrainConfig, calibrate_output_strength

TRAIN = ["--backbone", "nafnet", "--size", "tiny", "--steps", "2", "--batch-size", "2"]
TRAIN += ["--patch-size", "32", "--checkpoint-every", "0", "--sensor-steps", "0"]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *TRAIN, "--out", str(out)]) == 0
    return out / "adapter"


def test_every_option_is_documented_in_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subparsers) == {"demo", "train", "eval", "restore", "export"}
    for name, sub in subparsers.items():
        text = sub.format_help()
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"
            for option in action.option_strings:
                assert option in text


def test_a_command_imports_only_its_own_module():
    code = (
        "import sys; from pip_adapter.cli import build_parser; build_parser('eval'); "
        "print(sorted(m for m in sys.modules if m.startswith('pip_adapter.cli.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['pip_adapter.cli.errors', 'pip_adapter.cli.evaluate']"


def test_option_defaults_are_the_recipes():
    parser = build_parser()
    args = parser.parse_args(["train", "--backbone", "nafnet"])
    recipe = recipe_from_args(args)
    assert dataclasses.replace(recipe, pip=None) == FinetuneRecipe("nafnet")
    assert recipe.model_config() == FinetuneRecipe("nafnet").model_config()
    options = ["--tasks", "rain,noise", "--workers", "2", "--lr", "1e-3", "--patch-size", "64"]
    recipe = recipe_from_args(parser.parse_args(["train", "--backbone", "nafnet", *options]))
    assert recipe.pip == PIPConfig(degradations=("rain", "noise"))
    assert recipe.train == TrainConfig(checkpoint_every=500, num_workers=2, lr=1e-3)
    assert recipe.patch_size == 64
    same = parser.parse_args(["train", "--backbone", "nafnet", "--degradations", "rain,noise"])
    assert recipe_from_args(same).pip == recipe.pip
    psnr = parser.parse_args(["train", "--backbone", "nafnet", "--strength-objective", "psnr"])
    assert recipe_from_args(psnr).strength_objective == "psnr"
    with pytest.raises(ValueError, match="unknown objective 'l1'; choose from mse, psnr"):
        FinetuneRecipe("nafnet", strength_objective="l1")
    paper = parser.parse_args(["train", "--backbone", "nafnet", "--design", "paper"])
    assert recipe_from_args(paper).pip == PIPConfig(design="paper")


@pytest.mark.parametrize(
    ("options", "rank"),
    [
        ([], 0),  # from scratch: the shared feed-forwards the quality benchmark measures
        (["--checkpoint", "x.pth"], ADAPTER_FFN_RANK),  # only the adapter trains
        (["--checkpoint", "x.pth", "--full"], 0),
        (["--checkpoint", "x.pth", "--degradation-ffn-rank", "0"], 0),
        (["--degradation-ffn-rank", "8"], 8),
    ],
)
def test_an_adapter_on_a_pretrained_backbone_gets_feed_forward_updates(options, rank):
    args = build_parser().parse_args(["train", "--backbone", "nafnet", *options])
    recipe = recipe_from_args(args)
    assert recipe.model_config().degradation_ffn_rank == rank
    # the recipe in Python: its own default for its checkpoint and ``full``
    python = FinetuneRecipe("nafnet", checkpoint=recipe.checkpoint, full=recipe.full)
    if "--degradation-ffn-rank" not in options:
        assert python.model_config() == recipe.model_config()
    # a pip given to the recipe is used as it is; starting it from default_pip keeps the default
    given = PIPConfig(degradations=("noise", "rain"))
    assert dataclasses.replace(python, pip=given).pip_config() == given  # rank 0, as given
    kept = default_pip(recipe.checkpoint, recipe.full).replace(degradations=("noise", "rain"))
    adapter = ADAPTER_FFN_RANK if recipe.checkpoint is not None and not recipe.full else 0
    assert dataclasses.replace(python, pip=kept).pip_config().degradation_ffn_rank == adapter


def test_train_writes_a_complete_bundle(adapter):
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_config.json", "adapter.safetensors", "backbone.json"} <= names
    assert "backbone.safetensors" in names  # trained from scratch: backbone weights kept


def test_eval_prints_a_table(adapter, capsys):
    assert main(["eval", "--adapter", str(adapter)]) == 0
    table = capsys.readouterr().out
    assert "| noise |" in table and "**average**" in table


@pytest.mark.parametrize("tile", [None, 16])
def test_restore_keeps_odd_sizes(adapter, tmp_path, tile):
    image = torch.rand(3, 37, 53)
    write_image(image, tmp_path / "in" / "odd.png")
    args = ["restore", str(tmp_path / "in"), "--adapter", str(adapter), "-o", str(tmp_path / "o")]
    args += ["--degradation", "rain:0.7,noise:0.3"]
    if tile:
        args += ["--tile", str(tile), "--overlap", "4"]
    assert main(args) == 0
    assert read_image(tmp_path / "o" / "odd.png").shape == image.shape


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--degradation", "snow"], "unknown degradation 'snow'; valid names"),
        (["--degradation", "rain:x"], "is not a number"),
        (["--degradation", "auto"], "no sensor is attached"),
    ],
)
def test_restore_errors_are_one_line(adapter, tmp_path, capsys, args, message):
    write_image(torch.rand(3, 8, 8), tmp_path / "a.png")
    code = main(
        [
            "restore",
            str(tmp_path / "a.png"),
            "--adapter",
            str(adapter),
            "-o",
            str(tmp_path / "o"),
            *args,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err and "Traceback" not in err


def test_train_with_a_sensor_then_restore_and_eval_blind(tmp_path, capsys):
    out = tmp_path / "run"
    write_image(torch.rand(3, 40, 30), tmp_path / "strength" / "photo.png")
    strength = ["--strength-photos", str(tmp_path / "strength"), "--strength-objective", "psnr"]
    assert main(["train", *TRAIN, "--sensor-steps", "3", *strength, "--out", str(out)]) == 0
    names = {p.name for p in (out / "adapter").iterdir()}
    assert {"sensor_config.json", "sensor.safetensors", "adapter.safetensors"} <= names
    # the output strengths were fitted on those photos after training, by PSNR, and saved
    model = load_bundle(out / "adapter")
    fitted = model.config.output_strength
    assert fitted
    pairs = strength_pairs(tmp_path / "strength", model.restorable_degradations, seed=0)
    model.config = model.config.replace(output_strength={})
    calibrate_output_strength(model, pairs.degraded, pairs.clean, pairs.labels, "psnr")
    assert dict(model.config.output_strength) == pytest.approx(dict(fitted))
    write_image(torch.rand(3, 37, 53), tmp_path / "in" / "odd.png")
    args = ["restore", str(tmp_path / "in"), "--adapter", str(out / "adapter")]
    assert main([*args, "-o", str(tmp_path / "o"), "--degradation", "auto"]) == 0
    assert main([*args, "-o", str(tmp_path / "t"), "--tile", "16", "--overlap", "4"]) == 0
    whole, tiled = read_image(tmp_path / "o" / "odd.png"), read_image(tmp_path / "t" / "odd.png")
    assert whole.shape == tiled.shape == (3, 37, 53)
    assert main(["eval", "--adapter", str(out / "adapter"), "--blind"]) == 0
    assert "| blind PSNR / SSIM |" in capsys.readouterr().out
    bad = ["--sensor-steps", "1", "--sensor-backbone", "resnet_18", "--out", str(tmp_path / "b")]
    assert main(["train", *TRAIN, *bad]) == 2
    assert "unknown timm backbone 'resnet_18'" in capsys.readouterr().err


def test_missing_inputs_and_adapters(tmp_path, capsys):
    assert main(["eval", "--adapter", str(tmp_path / "none")]) == 2
    assert "does not say which backbone" in capsys.readouterr().err
    assert main(["train", *TRAIN, "--data", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
    none = ["--strength-photos", str(tmp_path / "none"), "--out", str(tmp_path)]
    assert main(["train", *TRAIN, *none]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", *TRAIN, "--strength-objective", "ssim", "--out", str(tmp_path)])
    assert "invalid choice: 'ssim' (choose from 'mse', 'psnr')" in capsys.readouterr().err
    assert main(["train", *TRAIN, "--degradations", "noise,fog", "--out", str(tmp_path)]) == 2
    assert "fog" in capsys.readouterr().err


def test_train_from_a_folder_of_images_and_resume(tmp_path):
    for index in range(3):
        write_image(torch.rand(3, 40, 40), tmp_path / "photos" / f"{index}.png")
    out = tmp_path / "run"
    common = [*TRAIN, "--data", str(tmp_path / "photos"), "--tasks", "noise,blur"]
    assert main(["train", *common, "--out", str(out)]) == 0
    assert main(["train", *common, "--steps", "3", "--resume", "--out", str(out)]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--steps", "2", "--batch-size", "2", "--eval-crop", "32", "--out", str(out)])
        == 0
    )
    for name in ("results.md", "comparison.png", "interactive_control.png", "training_curves.png"):
        assert (out / name).stat().st_size > 0
    results = (out / "results.md").read_text()
    assert "NAFNet + PIP" in results
    # each table says which held-out set its numbers come from
    assert "Bundled held-out photos" in results and "Out-of-domain held-out photos" in results


def test_train_and_eval_on_the_standard_layout(layout, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TRAIN, "--data", str(layout), "--out", str(out)]) == 0
    assert main(["eval", "--adapter", str(out / "adapter"), "--data", str(layout)]) == 0
    table = capsys.readouterr().out.split("| degradation")[-1]
    for degradation in ("noise", "rain", "haze", "blur", "lowlight"):
        assert f"| {degradation} |" in table


@pytest.mark.slow
def test_console_script_under_torchrun(tmp_path, torchrun):
    # the installed console script, also when the virtual environment is not activated
    script = Path(sys.executable).with_name("pip-adapter")
    torchrun("--no-python", script, "train", *TRAIN, "--steps", "4", "--out", tmp_path)
    assert (tmp_path / "adapter" / "adapter.safetensors").is_file()


def test_restore_leaves_a_clean_image_exactly_as_it_was(adapter, tmp_path, capsys):
    """`pip-adapter train` adds "clean" by default: --degradation clean is the identity, and so
    is auto on an image the sensor calls clean (a sensor whose classifier says clean always)."""
    image = torch.rand(3, 21, 34)
    write_image(image, tmp_path / "in" / "photo.png")
    original = read_image(tmp_path / "in" / "photo.png")
    args = ["restore", str(tmp_path / "in"), "--adapter", str(adapter)]
    assert main([*args, "-o", str(tmp_path / "label"), "--degradation", "clean"]) == 0
    assert torch.equal(read_image(tmp_path / "label" / "photo.png"), original)

    model = load_bundle(adapter)
    assert model.degradations[-1] == "clean"
    model.sensor = DegradationSensor(model.degradations, backbone="test_resnet", crop_size=16)
    head = model.sensor.network.get_classifier()
    torch.nn.init.zeros_(head.weight)
    head.bias.data = torch.tensor([0.0] * (len(model.degradations) - 1) + [20.0])
    blind = save_bundle(
        model, tmp_path / "blind", backbone="nafnet", size="tiny", save_backbone_weights=True
    )
    args = ["restore", str(tmp_path / "in"), "--adapter", str(blind)]
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "auto"), "--degradation", "auto"]) == 0
    assert torch.equal(read_image(tmp_path / "auto" / "photo.png"), original)
    assert "[sensor: clean (1.00)]" in capsys.readouterr().out


def test_restore_auto_restores_an_unsure_image_as_the_sensors_mixture_and_says_so(
    adapter, tmp_path, capsys
):
    """A sensor that is unsure (no class has 0.9 of the weight) steers the mixture of its
    weights, not its top label, and the CLI prints that mixture. The rain label is given output
    strength 0 (the image back as it is), so a restoration by the top label would be the
    input, and one by the mixture rain 0.6 + noise 0.4 is not."""
    image = torch.rand(3, 21, 34)
    write_image(image, tmp_path / "in" / "photo.png")
    original = read_image(tmp_path / "in" / "photo.png")
    model = load_bundle(adapter)
    model.config = model.config.replace(output_strength={"rain": 0.0})
    model.sensor = DegradationSensor(model.degradations, backbone="test_resnet", crop_size=16)
    model.sensor.temperature = 1.0
    head = model.sensor.network.get_classifier()
    torch.nn.init.zeros_(head.weight)
    mixture = {"rain": 0.6, "noise": 0.4}
    head.bias.data = torch.tensor([mixture.get(name, 1e-9) for name in model.degradations]).log()
    unsure = save_bundle(
        model, tmp_path / "unsure", backbone="nafnet", size="tiny", save_backbone_weights=True
    )
    args = ["restore", str(tmp_path / "in"), "--adapter", str(unsure)]
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "auto"), "--degradation", "auto"]) == 0
    out = capsys.readouterr().out
    assert "[sensor: unsure: rain 0.60 + noise 0.40 (restored as this mixture)]" in out
    assert main([*args, "-o", str(tmp_path / "mix"), "--degradation", "rain:0.6,noise:0.4"]) == 0
    assert main([*args, "-o", str(tmp_path / "rain"), "--degradation", "rain"]) == 0
    auto, mixed = (read_image(tmp_path / f / "photo.png") for f in ("auto", "mix"))
    assert torch.equal(read_image(tmp_path / "rain" / "photo.png"), original)
    assert (auto - original).abs().max() > 0.05  # not the top label's output
    assert torch.allclose(auto, mixed, atol=1.5 / 255)


def test_restore_with_local_pooling_restores_as_the_python_api_does(adapter, tmp_path, capsys):
    """--local-pooling makes the network's global pools window means (pa.local_pooling): the
    file is the model's output with it, and differs from the output without it. The NAFNet's
    blocks are made to act (residual scales 1, channel attention ×10) so that its pools matter."""
    import pip_adapter as pa

    ramp = torch.linspace(0, 1, 53).expand(3, 37, 53)  # local means far from the global one
    write_image(0.8 * ramp + 0.2 * torch.rand(3, 37, 53), tmp_path / "in" / "photo.png")
    model = load_bundle(adapter)
    with torch.no_grad():
        for name, parameter in model.backbone.named_parameters():
            if name.endswith(("beta", "gamma")):
                parameter.fill_(1.0)
            if ".sca." in name:  # channel attention that weighs its pooled means more
                parameter.mul_(10)
    acting = save_bundle(
        model, tmp_path / "acting", backbone="nafnet", size="tiny", save_backbone_weights=True
    )
    args = ["restore", str(tmp_path / "in"), "--adapter", str(acting), "--degradation", "rain"]
    assert main([*args, "-o", str(tmp_path / "global")]) == 0
    assert main([*args, "-o", str(tmp_path / "local"), "--local-pooling", "8"]) == 0
    local = read_image(tmp_path / "local" / "photo.png")
    model = load_bundle(acting).eval()
    with torch.no_grad(), pa.local_pooling(model, 8):
        expected = model(read_image(tmp_path / "in" / "photo.png")[None], degradation="rain")
    assert torch.allclose(local, expected[0].clamp(0, 1), atol=1.5 / 255)
    assert (local - read_image(tmp_path / "global" / "photo.png")).abs().max() > 8 / 255

    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "bad"), "--local-pooling", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--local-pooling must be a positive number of input pixels, got 0" in err
    assert "\n" not in err and not (tmp_path / "bad").exists()
