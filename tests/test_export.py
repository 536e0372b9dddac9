"""Export to ONNX and torch.export: real tiny NAFNet, Restormer and SwinIR adapters, real
onnxruntime, real files; and ``pip-adapter export`` / ``restore --onnx`` on image files."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from architectures import build_tiny
from backbones import build, injection_kwargs
from torch import nn

import pip_adapter as pa
from pip_adapter import export
from pip_adapter.blending import NUMPY_OPS
from pip_adapter.bundle import load_bundle, save_bundle
from pip_adapter.cli import main
from pip_adapter.conditioning import describe_weights
from pip_adapter.data import read_image, write_image
from pip_adapter.padding import pad_to_size

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

SIZES = [(1, 23, 37), (2, 32, 40), (1, 41, 19)]  # odd sides, a batch of two
TOLERANCE = 1e-4
STRENGTHS = {"rain": 0.4, "haze": 0.0}  # the bundle's output strengths


def adapted(name: str, seed: int = 0) -> pa.PIPModel:
    """A tiny adapted backbone whose PIP units really act (their output layers start at zero)."""
    model = pa.inject_pip(build(name, seed), **injection_kwargs(name)).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.pip_units.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return model


def run_onnx(path: Path, *inputs: torch.Tensor) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})


def weights_for(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 5, generator=torch.Generator().manual_seed(seed)) + 0.05


def assert_close(got, expected) -> None:
    got = torch.as_tensor(got)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOLERANCE


@pytest.fixture(scope="module", params=["nafnet", "restormer", "swinir"])
def exported(request, tmp_path_factory):
    """Each backbone exported once per format, weights as an input, without onnxscript's
    optimizer (a third to a half of the export time): ``pip-adapter export`` runs it, and the
    CLI tests below check its files (NAFNet, weights, a baked mixture, the sensor) against the
    eager model; the files here are compared with it too."""
    model = adapted(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    onnx_path = export.to_onnx(model, folder / "model.onnx", optimize=False)
    program = export.to_torch_export(model, folder / "model.pt2")
    return model, onnx_path, program, folder / "model.pt2"


@pytest.mark.slow
def test_onnx_equals_eager_at_three_sizes(exported):
    model, path, _, _ = exported
    for batch, height, width in SIZES:
        x, w = torch.rand(batch, 3, height, width), weights_for(batch)
        (restored,) = run_onnx(path, x, w)
        with torch.no_grad():
            assert_close(restored, model(x, degradation=w))


@pytest.mark.slow
def test_torch_export_equals_eager_and_reloads(exported):
    model, _, program, path = exported
    loaded = torch.export.load(path).module()
    for batch, height, width in SIZES:
        x, w = torch.rand(batch, 3, height, width), weights_for(batch)
        with torch.no_grad():
            expected = model(x, degradation=w)
            assert_close(program.module()(x, w), expected)
            assert_close(loaded(x, w), expected)


@pytest.mark.slow
def test_files_describe_themselves(exported):
    model, onnx_path, _, pt2_path = exported
    for path in (onnx_path, pt2_path):
        meta = export.read_metadata(path)
        assert meta["degradations"] == list(model.degradations)
        assert meta["steering"] == "weights"
        assert meta["inputs"] == ["image", "weights"] and meta["outputs"] == ["restored"]
        assert meta["size_multiple"] == model.size_multiple
        assert meta["min_side"] <= 16
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    image = session.get_inputs()[0]
    assert image.shape == ["batch", 3, "height", "width"]


@pytest.mark.slow
@pytest.mark.parametrize("identity", ["Swin2SR", "HAT"])
def test_other_swin_networks_take_every_size_and_batch(identity):
    """Swin2SR and HAT (SwinIR's code: a mask kept for one size, the batch computed with
    int()) are traced in the same equivalent form: one program for every batch and size."""
    model = pa.inject_pip(build_tiny(identity)).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.pip_units.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    program = export.to_torch_export(model).module()
    for batch, height, width in [(2, 37, 43), (1, 64, 64), (3, 19, 70)]:
        x, w = torch.rand(batch, 3, height, width), weights_for(batch)
        with torch.no_grad():
            assert_close(program(x, w), model(x, degradation=w))


@pytest.mark.parametrize(
    ("crops_per_side", "views", "statistics"),
    [(1, "none", False), (2, "flips", True), (3, "none", False), (4, "hflip", False)],
)
def test_traceable_sensor_takes_the_eager_crops(crops_per_side, views, statistics):
    """The sensor in a blind graph averages the same crops (and views) as DegradationSensor at
    any size."""
    sensor = pa.DegradationSensor(
        crop_size=8, crops_per_side=crops_per_side, views=views, statistics=statistics
    ).eval()
    grid = export._GridSensor(sensor)
    with torch.no_grad():
        for height in (1, 2, 5, 8, 9, 15, 16, 17, 23, 24, 25, 31, 40):
            for width in (1, 7, 8, 13, 33):
                x = torch.rand(1, 3, height, width)
                assert (grid(x) - sensor(x)).abs().max() < 1e-5, (height, width)


# ---------------------------------------------------------------------------------------------
# Refusals: one clear error, no file, the model untouched


def test_bad_requests_are_refused_before_any_work(tmp_path):
    model = adapted("nafnet")
    target = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=r"unknown degradation 'snow'; valid names"):
        export.to_onnx(model, target, degradation="snow")
    with pytest.raises(TypeError, match="needs a pip_adapter.DegradationSensor .*got Conv2d"):
        export.to_onnx(model, target, sensor=nn.Conv2d(3, 5, 1))
    with pytest.raises(ValueError, match="has none"):
        export.to_onnx(model, target, sensor=True)
    with pytest.raises(ValueError, match="not both"):
        export.to_onnx(model, target, degradation="rain", sensor=True)
    with pytest.raises(FileNotFoundError, match="output folder .* does not exist"):
        export.to_onnx(model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export.to_onnx(model, tmp_path / "m.pt2")
    with pytest.raises(TypeError, match="takes a PIPModel"):
        export.to_onnx(build("nafnet"), target)
    with pytest.raises(ValueError, match="float32"):
        export.to_onnx(adapted("nafnet").double(), target)
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.to_onnx(model, target)
    assert target.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only folder (/sys)")
def test_unwritable_folder_is_refused():
    with pytest.raises(PermissionError, match="cannot write to folder '/sys'"):
        export.to_onnx(adapted("nafnet"), "/sys/m.onnx")


@torch.library.custom_op("pip_adapter_test::wobble", mutates_args=())
def wobble(x: torch.Tensor) -> torch.Tensor:
    return x + 0.01 * torch.sin(x)


@wobble.register_fake
def _(x):
    return torch.empty_like(x)


class Wobbly(nn.Module):
    """A backbone with an operator ONNX has no translation for."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return x + self.head(wobble(F.gelu(self.body(x))))


class SizeBound(Wobbly):
    """A backbone that turns its input size into Python numbers (a fixed-size graph)."""

    def forward(self, x):
        size = (int(x.shape[-2]), int(x.shape[-1]))
        return x + self.head(F.interpolate(F.gelu(self.body(x)), size=size))


class TraceDiffers(Wobbly):
    """A backbone that computes something else when traced than when run."""

    def forward(self, x):
        y = self.head(F.gelu(self.body(x)))
        return x + (2 * y if torch.compiler.is_compiling() else y)


def custom(backbone: nn.Module) -> pa.PIPModel:
    torch.manual_seed(0)
    model = pa.inject_pip(backbone, stages=["head"], degradations=("noise", "rain"))
    with torch.no_grad():
        for param in model.pip_units.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "fmt", "message"),
    [
        (Wobbly, "onnx", "ONNX conversion failed at operator .*pip_adapter_test.*wobble"),
        (SizeBound, "pt2", "tracing fixed the image height to 67"),
        (TraceDiffers, "onnx", "the ONNX file differs from the eager model by"),
        (TraceDiffers, "pt2", "the exported program differs from the eager model by"),
    ],
)
def test_what_cannot_be_exported_is_named_and_leaves_no_file(tmp_path, backbone, fmt, message):
    model = custom(backbone())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    writer = export.to_onnx if fmt == "onnx" else export.to_torch_export
    with pytest.raises(export.ExportError, match=message):
        writer(model, tmp_path / f"m.{fmt}")
    assert list(tmp_path.iterdir()) == []
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not model.training


def test_numpy_padding_follows_the_torch_rule():
    for height, width, to_h, to_w in [(5, 7, 8, 8), (3, 9, 8, 16), (1, 1, 4, 4), (6, 6, 6, 6)]:
        x = torch.rand(1, 3, height, width)
        assert np.array_equal(NUMPY_OPS.pad(x.numpy(), to_h, to_w), pad_to_size(x, to_h, to_w))


# ---------------------------------------------------------------------------------------------
# The command line: export, then restore with onnxruntime alone


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    model = adapted("nafnet")
    # output strengths below 1: every graph below must blend as the eager model does
    model.config = model.config.replace(output_strength=STRENGTHS)
    # judged in mirrored views, with image statistics, at a temperature: the graph must do all
    model.sensor = pa.DegradationSensor(
        crop_size=16, crops_per_side=2, views="flips", temperature=1.7, statistics=True
    ).eval()
    save_bundle(
        model, folder / "adapter", backbone="nafnet", size="tiny", save_backbone_weights=True
    )
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
    assert sensor_config["statistics"] is True
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
