"""Export to ONNX and torch.export: real tiny NAFNet, Restormer and SwinIR adapters, real
onnxruntime, real files (``pip-adapter export`` and ``restore --onnx``: test_export_cli.py)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from architectures import build_tiny
from backbones import build
from exporting import SIZES, adapted, assert_close, ort, run_onnx, weights_for
from torch import nn

import pip_adapter as pa
from pip_adapter import export
from pip_adapter.blending import NUMPY_OPS
from pip_adapter.padding import pad_to_size


@pytest.fixture(scope="module", params=["nafnet", "restormer", "swinir"])
def exported(request, tmp_path_factory):
    """Each backbone (exporting.LEAN's) exported once per format, weights as an input, without
    onnxscript's optimizer (a third to a half of the export time): ``pip-adapter export`` runs
    it, and test_export_cli.py checks its files (NAFNet, weights, a baked mixture, the sensor)
    against the eager model; the files here are compared with it too."""
    model = adapted(request.param, backbone=build(request.param, lean=True))
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
    ("crops_per_side", "views", "statistics", "sharpness"),
    [
        (1, "none", False, False),
        (2, "flips", True, False),
        (3, "none", False, True),
        (4, "hflip", False, False),
    ],
)
def test_traceable_sensor_takes_the_eager_crops(crops_per_side, views, statistics, sharpness):
    """The sensor in a blind graph averages the same crops (and views) as DegradationSensor at
    any size."""
    sensor = pa.DegradationSensor(
        crop_size=8,
        crops_per_side=crops_per_side,
        views=views,
        statistics=statistics,
        sharpness=sharpness,
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
    zoomed = pa.DegradationSensor(model.degradations, backbone="test_resnet", crop_size=16)
    zoomed.scale_weights = {1.0: 1.0, 0.5: 0.5}
    with pytest.raises(ValueError, match=r"native-scale crops only.*set its scale_weights to"):
        export.to_onnx(model, target, sensor=zoomed)
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
