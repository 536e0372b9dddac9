"""``pip-adapter export`` then ``restore --onnx`` on image files: graphs with weights, a baked
mixture or the sensor inside, run by onnxruntime alone and compared with the PyTorch path."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from backbones import build
from exporting import SIZES, adapted, assert_close, onnx, ort, run_onnx

import pip_adapter as pa
from pip_adapter import export
from pip_adapter.bundle import load_bundle, save_bundle
from pip_adapter.cli import main
from pip_adapter.conditioning import describe_weights
from pip_adapter.data import read_image, write_image

STRENGTHS = {"rain": 0.4, "haze": 0.0}  # the bundle's output strengths


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    # the lean NAFNet as an official-format checkpoint the bundle points at (spandrel reads its
    # configuration): a smaller graph than the tiny one, so each export takes less time
    backbone = build("nafnet", lean=True)
    checkpoint = folder / "NAFNet-lean.pth"
    torch.save({"params": backbone.state_dict()}, checkpoint)
    model = adapted("nafnet", backbone=backbone)
    # output strengths below 1: every graph below must blend as the eager model does
    model.config = model.config.replace(output_strength=STRENGTHS)
    # judged in mirrored views, with image statistics and edge sharpness, at a temperature:
    # the graph must do all
    model.sensor = pa.DegradationSensor(
        crop_size=16,
        crops_per_side=2,
        views="flips",
        temperature=1.7,
        statistics=True,
        sharpness=True,
    ).eval()
    save_bundle(model, folder / "adapter", backbone="nafnet", size=None, checkpoint=checkpoint)
    images = folder / "images"
    write_image(torch.rand(3, 37, 53), images / "odd.png")
    write_image(torch.rand(3, 24, 30), images / "small.jpg")
    return folder


def restore(*args: str) -> int:
    return main(["restore", *map(str, args)])


MIXTURE = {"rain": 0.7, "noise": 0.3}


def cli_export(bundle: Path, graph: Path, degradation: str) -> Path:
    args = ["export", "--adapter", str(bundle / "adapter"), "--degradation", degradation]
    assert main([*args, "-o", str(graph)]) == 0
    return graph


@pytest.fixture(scope="module")
def baked_graph(bundle, tmp_path_factory):
    """``pip-adapter export --degradation rain:0.7,noise:0.3``: a mixture baked in."""
    return cli_export(
        bundle, tmp_path_factory.mktemp("baked") / "mixture.onnx", "rain:0.7,noise:0.3"
    )


@pytest.fixture(scope="module")
def blind_graph(bundle, tmp_path_factory):
    """``pip-adapter export --degradation auto``: the adapter's sensor in the graph."""
    return cli_export(bundle, tmp_path_factory.mktemp("blind") / "blind.onnx", "auto")


@pytest.mark.slow
def test_baked_degradation_leaves_one_input(bundle, baked_graph):
    model = load_bundle(bundle / "adapter").eval()
    session = ort.InferenceSession(str(baked_graph), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert export.read_metadata(baked_graph)["baked"] == pytest.approx(MIXTURE)
    assert export.read_metadata(baked_graph)["output_strength"] == STRENGTHS
    program = export.to_torch_export(model, degradation="haze")
    full = load_bundle(bundle / "adapter").eval()
    full.config = full.config.replace(output_strength={})
    for batch, height, width in SIZES:
        x = torch.rand(batch, 3, height, width)
        with torch.no_grad():
            restored = run_onnx(baked_graph, x)[0]
            assert_close(restored, model(x, degradation=MIXTURE))
            # the graph honours the strengths: 0.7 · 0.4 + 0.3 · 1 of the network's change
            assert_close(restored, x + 0.58 * (full(x, degradation=MIXTURE) - x))
            assert_close(program.module()(x), x)  # haze at strength 0: the input


@pytest.mark.slow
def test_blind_graph_runs_the_sensor_inside(bundle, blind_graph):
    model = load_bundle(bundle / "adapter").eval()
    session = ort.InferenceSession(str(blind_graph), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    sensor_config = export.read_metadata(blind_graph)["sensor"]
    assert (sensor_config["crop_size"], sensor_config["views"]) == (16, "flips")
    assert sensor_config["statistics"] is True and sensor_config["sharpness"] is True
    program = export.to_torch_export(model, sensor=True)
    # the graph holds the sensor twice: every module keeps its mode (a sensor left training
    # would judge by batch statistics and update them)
    assert not any(m.training for m in model.modules())
    for batch, height, width in [*SIZES, (1, 9, 50)]:  # shorter than a crop, more than two
        x = torch.rand(batch, 3, height, width)
        with torch.no_grad():
            weights = model.sensor.predict_weights(x)
            expected = model(x)  # blind: model.sensor steers
            restored, sensed = run_onnx(blind_graph, x)
            assert_close(restored, expected)
            assert_close(sensed, weights)
            restored, sensed = program.module()(x)
            assert_close(restored, expected)
            assert_close(sensed, weights)


@pytest.mark.slow
def test_cli_export_then_restore_with_onnx_matches_pytorch(bundle, tmp_path, capsys):
    graph = tmp_path / "model.onnx"
    assert main(["export", "--adapter", str(bundle / "adapter"), "-o", str(graph)]) == 0
    assert "image, weights -> restored" in capsys.readouterr().out
    for case, tile in (("whole", []), ("tiled", ["--tile", "16", "--overlap", "4"])):
        spec = ["--degradation", "rain:0.6,haze:0.4", *tile]
        onnx_out, torch_out = tmp_path / case / "onnx", tmp_path / case / "pt"
        assert restore(bundle / "images", "--onnx", graph, "-o", onnx_out, *spec) == 0
        assert restore(bundle / "images", "--adapter", bundle / "adapter", "-o", torch_out,
                       *spec) == 0  # fmt: skip
        for name in ("odd.png", "small.png"):
            a, b = read_image(onnx_out / name), read_image(torch_out / name)
            assert a.shape == b.shape and (a - b).abs().max() <= 1 / 255
    capsys.readouterr()
    # the same mistakes, the same one-line errors as the PyTorch path
    assert restore(bundle / "images", "--onnx", graph, "-o", tmp_path / "x") == 2
    assert "pass --degradation" in capsys.readouterr().err
    assert restore(bundle / "nope.png", "--onnx", graph, "-o", tmp_path / "x") == 2
    assert "no such image or folder" in capsys.readouterr().err
    args = ["--onnx", graph, "-o", tmp_path / "x", "--degradation", "snow"]
    assert restore(bundle / "images", *args) == 2
    err = capsys.readouterr().err
    assert "unknown degradation 'snow'; valid names" in err and "\n" not in err.strip()


@pytest.mark.slow
def test_cli_restore_onnx_never_imports_torch(bundle, baked_graph, tmp_path, capsys):
    graph = baked_graph
    script = (
        "import sys\n"
        "from pip_adapter.cli import main\n"
        f"code = main(['restore', {str(bundle / 'images')!r}, '--onnx', {str(graph)!r}, "
        f"'-o', {str(tmp_path / 'out')!r}, '--tile', '16', '--overlap', '4'])\n"
        "assert code == 0, code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(pa.__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert read_image(tmp_path / "out" / "odd.png").shape == (3, 37, 53)
    capsys.readouterr()
    assert restore(bundle / "images", "--onnx", graph, "--degradation", "haze", "-o", tmp_path) == 2
    assert "baked in, so it takes no --degradation" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_blind_export_and_refusals(bundle, blind_graph, tmp_path, capsys):
    graph = blind_graph
    args = ["export", "--adapter", str(bundle / "adapter"), "--degradation", "auto"]
    assert json.loads(json.dumps(export.read_metadata(graph)))["steering"] == "sensor"
    assert restore(bundle / "images", "--onnx", graph, "-o", tmp_path / "o") == 0
    assert read_image(tmp_path / "o" / "small.png").shape == (3, 24, 30)
    out = capsys.readouterr().out
    assert "2 restored, 0 failed, of 2 images" in out
    # the sensor's choice beside each file, as the PyTorch path prints it
    model = load_bundle(bundle / "adapter").eval()
    image = read_image(bundle / "images" / "odd.png")[None]
    with torch.no_grad():
        words = describe_weights(model.sensor.predict_weights(image)[0], model.degradations)
    assert f"odd.png  [sensor: {words}]" in out
    assert sum("[sensor: " in line for line in out.splitlines()) == 2
    tiles = ["--tile", "16", "--overlap", "4"]
    assert (
        restore(bundle / "images" / "odd.png", "--onnx", graph, "-o", tmp_path / "t", *tiles) == 0
    )
    assert re.search(r"odd\.png  \[sensor, mean of \d+ tiles: ", capsys.readouterr().out)
    # the shared batch loop: outputs that exist are kept unless --overwrite
    before = (tmp_path / "o" / "odd.png").read_bytes()
    assert restore(bundle / "images", "--onnx", graph, "-o", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "exists; pass --overwrite to replace it" in err and "0 restored, 2 failed" in err
    assert (tmp_path / "o" / "odd.png").read_bytes() == before
    assert restore(bundle / "images", "--onnx", graph, "-o", tmp_path / "o", "--overwrite") == 0
    capsys.readouterr()
    assert main([*args, "-o", str(graph)]) == 2
    assert "already exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "m.bin")]) == 2
    assert "end the file name in .onnx or .pt2" in capsys.readouterr().err
    assert main([*args, "--format", "pt2", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "--format pt2 writes a .pt2 file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "t"]
    assert sorted(p.name for p in graph.parent.iterdir()) == ["blind.onnx"]


@pytest.mark.slow
def test_cli_restore_onnx_refuses_a_non_finite_output(bundle, baked_graph, tmp_path, capsys):
    """A damaged graph (its last convolution's weights overflow) writes no black image."""
    from onnx import numpy_helper

    graph = tmp_path / "damaged.onnx"
    proto = onnx.load(baked_graph)
    last_conv = [n for n in proto.graph.node if n.op_type == "Conv"][-1]
    weight = next(i for i in proto.graph.initializer if i.name == last_conv.input[1])
    weight.CopyFrom(numpy_helper.from_array(
        np.full(numpy_helper.to_array(weight).shape, 3e38, np.float32), weight.name
    ))  # fmt: skip
    onnx.save(proto, graph)
    capsys.readouterr()
    assert restore(bundle / "images", "--onnx", graph, "-o", tmp_path / "out") == 1
    assert "the model's output is not finite" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
