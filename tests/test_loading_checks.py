"""Loading untrusted files: non-finite weights, configs out of bounds, malformed bundles and
checkpoints are one-line ValueErrors naming the file (and the field or tensor)."""

import json
import os
import re
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

import pip_adapter as pa
from pip_adapter.backbones import build_backbone, load_backbone
from pip_adapter.bundle import load_bundle, save_bundle
from pip_adapter.cli import main
from pip_adapter.conditioning import check_weights, degradation_weights, parse_degradation
from pip_adapter.data import write_image


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A bundle with backbone weights and a sensor."""
    torch.manual_seed(0)
    model = pa.inject_pip(build_backbone("nafnet", "tiny"))
    model.sensor = pa.DegradationSensor(crop_size=16)
    directory = tmp_path_factory.mktemp("saved") / "bundle"
    return save_bundle(model, directory, backbone="nafnet", size="tiny", save_backbone_weights=True)


@pytest.fixture
def bundle(saved, tmp_path):
    """A fresh copy of the saved bundle, to damage."""
    return shutil.copytree(saved, tmp_path / "bundle")


def one_line_error(call, match, error=ValueError):
    with pytest.raises(error, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)
    return str(caught.value)


def poison(path, value, key_part=""):
    tensors = load_file(path)
    key = next(k for k in tensors if key_part in k and tensors[k].is_floating_point())
    tensors[key].view(-1)[0] = value
    save_file(tensors, path)
    return key


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", ["adapter", "sensor", "backbone"])
def test_non_finite_weights_are_refused_naming_the_file_and_tensor(bundle, name, value):
    key = poison(bundle / f"{name}.safetensors", value)
    bad = "NaN" if value != value else "infinite values"
    path = bundle / f"{name}.safetensors"
    one_line_error(lambda: load_bundle(bundle), re.escape(f"{path}: tensor '{key}' holds {bad}"))


def test_non_finite_checkpoints_are_refused(tmp_path):
    torch.manual_seed(0)
    state = build_backbone("nafnet", "tiny").state_dict()
    state["intro.weight"][0, 0, 0, 0] = float("nan")
    torch.save({"params": state}, tmp_path / "nafnet.pth")
    one_line_error(
        lambda: load_backbone(tmp_path / "nafnet.pth"), "tensor 'intro.weight' holds NaN"
    )
    torch.save([1, 2, 3], tmp_path / "list.pth")
    one_line_error(lambda: load_backbone(tmp_path / "list.pth"), "does not hold a state dict")


def test_restore_with_nan_weights_fails_and_writes_nothing(bundle, tmp_path, capsys):
    poison(bundle / "adapter.safetensors", float("nan"))
    write_image(torch.rand(3, 8, 8), tmp_path / "in.png")
    out = tmp_path / "out"
    code = main(["restore", str(tmp_path / "in.png"), "--adapter", str(bundle), "-o", str(out)])
    assert code == 2
    assert "holds NaN" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "size_multiple",
            4096,
            "size_multiple must be None or an integer of at least 1 and at most 512",
        ),
        (
            "prompt_size",
            100_000,
            "prompt_size must be None or an integer of at least 1 and at most 128",
        ),
        (
            "prompt_dim",
            1 << 20,
            "prompt_dim must be None or an integer of at least 2 and at most 1024",
        ),
        ("heads", 10_000, "heads must be None or an integer of at least 1 and at most 256"),
        ("ffn_expansion", 1e9, "ffn_expansion must be a positive number of at most 8"),
        ("ffn_expansion", float("nan"), "ffn_expansion"),
        ("stages", ["decoders.0"] * 2000, "at most 1024 stage entries"),
    ],
)
def test_configs_out_of_bounds_are_refused_at_once(bundle, field, value, message):
    edit_json(bundle / "adapter_config.json", lambda c: c.__setitem__(field, value))
    # this process's CPU time: what the refusal costs, however busy the cores are (make test
    # runs two test processes at once)
    started = time.process_time()
    one_line_error(lambda: load_bundle(bundle), f"adapter_config.json is malformed: .*{message}")
    assert time.process_time() - started < 5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt_dim", "16", "prompt_dim must be a positive integer of at most 1024, got '16'"),
        (
            "prompt_size",
            1e6,
            "prompt_size must be a positive integer of at most 128, got 1000000.0",
        ),
        ("channels", ["0", "8"], "channels must be \\(start, stop\\) integers"),
        ("channels", [8, 0], "channels must be \\(start, stop\\) integers with 0 <= start < stop"),
        ("channels", 8, "channels must be"),
        ("portion", ["0", "1"], "portion must be \\(start, stop\\) numbers"),
        ("at", ["input"], "at must be 'input' or 'output'"),
        ("pattern", 3, "pattern must be a non-empty string"),
    ],
)
def test_malformed_stages_name_the_file_and_the_field(bundle, field, value, message):
    edit_json(bundle / "adapter_config.json", lambda c: c["stages"][0].__setitem__(field, value))
    one_line_error(lambda: load_bundle(bundle), f"adapter_config.json is malformed: .*{message}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.__setitem__("backbone", "NAFNet"), '"backbone" must hold the class name'),
        (lambda c: c["backbone"].__setitem__("features", "x"), '"features" must be a list'),
        (lambda c: c["backbone"]["features"][0].pop("stage"), '"features" must be a list'),
        (lambda c: c.__setitem__("degradations", "rain"), "degradations must be a sequence"),
    ],
)
def test_malformed_adapter_configs_name_the_file(bundle, change, message):
    edit_json(bundle / "adapter_config.json", change)
    path = re.escape(str(bundle / "adapter_config.json"))
    one_line_error(lambda: load_bundle(bundle), f"{path}.*{message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{oops", "backbone.json is not valid JSON"),
        ("[1, 2]", "backbone.json must hold a JSON object, got a list"),
        ('{"name": "NAFNet", "weights": "backbone.safetensors"}', '"name" must be one of'),
        ('{"name": "nafnet", "size": 3}', "\"size\" must be null or one of \\['official'"),
        ('{"name": "nafnet", "weights": 5}', '"weights" must be null or a path'),
        ('{"name": "nafnet", "weights": "backbone.safe \\nsors"}', '"weights" must be null or a'),
        ('{"name": "nafnet", "checkpoint": "a\\tb.pth"}', '"checkpoint" must be null or a path'),
        ('{"name": "nafnet", "colour": "red"}', "unknown keys \\['colour'\\]"),
        ('{"name": "nafnet", "weights": "../backbone.safetensors"}', "must name a file inside"),
        ('{"name": "nafnet", "weights": "/etc/hostname"}', "must name a file inside"),
        ('{"weights": "backbone.safetensors"}', '"weights" needs "name"'),
        ('{"name": "nafnet", "weights": "absent.safetensors"}', "could not read backbone"),
    ],
)
def test_malformed_backbone_recipes_name_the_file_and_the_field(bundle, text, message):
    (bundle / "backbone.json").write_text(text)
    one_line_error(lambda: load_bundle(bundle), message)


def test_bundle_weights_cannot_link_out_of_the_folder(bundle, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    shutil.copy(bundle / "backbone.safetensors", outside)
    os.remove(bundle / "backbone.safetensors")
    os.symlink(outside, bundle / "backbone.safetensors")
    one_line_error(lambda: load_bundle(bundle), '"weights" must name a file inside')


def test_a_mismatched_backbone_checkpoint_names_the_file(bundle, tmp_path):
    save_file(build_backbone("nafnet", "small").state_dict(), bundle / "backbone.safetensors")
    one_line_error(
        lambda: load_bundle(bundle),
        re.escape(f"backbone weights {bundle / 'backbone.safetensors'} do not match the tiny ")
        + "nafnet of .*backbone.json: .*size mismatch",
    )
    torch.save(build_backbone("nafnet", "small").state_dict(), tmp_path / "small.pth")
    one_line_error(
        lambda: load_bundle(bundle, tmp_path / "small.pth"), "the adapter expects .* channels"
    )


def test_huge_mixture_weights_are_normalised_not_lost():
    names = pa.DEFAULT_DEGRADATIONS
    assert parse_degradation("rain:1e308,noise:1e308", names) == {"rain": 0.5, "noise": 0.5}
    weights = degradation_weights({"rain": 1e308, "haze": 1e308}, names, batch=2)
    assert weights[:, [1, 2]].eq(0.5).all() and weights.sum(dim=1).eq(1).all()
    huge = torch.tensor([[3e38, 3e38, 0, 0, 0], [1.0, 0, 0, 0, 1.0]])
    assert check_weights(huge, 2, 5).tolist() == [[0.5, 0.5, 0, 0, 0], [0.5, 0, 0, 0, 0.5]]
    with pytest.raises(ValueError, match="no positive weight"):
        parse_degradation("rain:0,noise:0", names)


def test_stage_patterns_in_a_file_are_names_never_regular_expressions(bundle):
    """A saved config names its modules exactly; a hostile pattern is refused before it could
    run as a regular expression (this one backtracks exponentially on module names)."""
    edit_json(
        bundle / "adapter_config.json", lambda c: c["stages"][0].__setitem__("pattern", "(.*.*)*z")
    )
    started = time.process_time()  # CPU time, as above
    one_line_error(
        lambda: load_bundle(bundle),
        r"stage '\(\.\*\.\*\)\*z' matches no module of NAFNet \(adapter_config.json",
    )
    assert time.process_time() - started < 5
    edit_json(
        bundle / "adapter_config.json",
        lambda c: c["stages"][0].update(pattern="decoders.0", module_type="(.*.*)*z"),
    )
    one_line_error(lambda: load_bundle(bundle), r"names its modules exactly, without module_type")


def test_restore_writes_no_black_image_for_a_non_finite_output(bundle, tmp_path, capsys):
    """Finite weights can still overflow (here 3e38s): the output is refused, not written."""
    tensors = load_file(bundle / "backbone.safetensors")
    tensors["ending.weight"] = torch.full_like(tensors["ending.weight"], 3e38)
    save_file(tensors, bundle / "backbone.safetensors")
    write_image(torch.rand(3, 8, 8), tmp_path / "in.png")
    out = tmp_path / "out"
    args = ["restore", str(tmp_path / "in.png"), "--adapter", str(bundle), "-o", str(out)]
    assert main([*args, "--degradation", "rain"]) == 1
    assert "the model's output is not finite" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
