"""Output strength per degradation: ``PIPConfig.output_strength`` (x + a · (f(x) − x)), its
fitting on labelled photos (``calibrate_output_strength``), and its adapter files. The ONNX
graphs of tests/test_export_cli.py's bundle carry strengths too (onnxruntime honours them)."""

import json
from pathlib import Path

import pytest
import torch
from backbones import build, train_conditioning
from torch import nn

import pip_adapter as pa
from pip_adapter.training import calibrate_output_strength, fit_output_strength

WITH_CLEAN = (*pa.DEFAULT_DEGRADATIONS, "clean")
V1 = Path(__file__).parent / "data" / "adapter_v1"


def trained(degradations=WITH_CLEAN) -> pa.PIPModel:
    """NAFNet-tiny + PIP whose units act (real training steps; the backbone frozen)."""
    model = pa.inject_pip(build("nafnet"), degradations=degradations).freeze_backbone()
    train_conditioning(model)
    return model.eval()


def at_full_strength(model: pa.PIPModel, x: torch.Tensor, degradation) -> torch.Tensor:
    """The network's own output f(x): the model with every strength at 1."""
    config = model.config
    model.config = config.replace(output_strength={})
    try:
        with torch.no_grad():
            return model(x, degradation=degradation)
    finally:
        model.config = config


def test_config_keeps_strengths_below_one_in_prompt_order():
    config = pa.PIPConfig(degradations=WITH_CLEAN, output_strength={"blur": 0.25, "rain": 1})
    assert config.output_strength == (("blur", 0.25),)
    assert config.strengths() == (1.0, 1.0, 1.0, 0.25, 1.0, 0.0)  # "clean": the input
    assert pa.PIPConfig().strengths() == (1.0,) * 5
    again = pa.PIPConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and config.to_dict()["output_strength"] == {"blur": 0.25}
    both = {"haze": 0.5, "noise": 0.0}
    assert pa.PIPConfig(output_strength=both).output_strength == (("noise", 0.0), ("haze", 0.5))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"blur": 1.5}, r"in \[0, 1\]"),
        ({"blur": float("nan")}, r"in \[0, 1\]"),
        ({"blur": True}, r"in \[0, 1\]"),
        ({"snow": 0.5}, "not among the degradations the model restores"),
        ({"clean": 0.5}, "not among the degradations the model restores"),
        ("blur", "mapping"),
        (0.5, "mapping"),
    ],
)
def test_bad_strengths_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        pa.PIPConfig(degradations=WITH_CLEAN, output_strength=value)


def test_the_output_moves_towards_the_input_by_the_strength():
    model = trained()
    x = torch.rand(2, 3, 19, 23)
    full = at_full_strength(model, x, "blur")
    assert (full - x).abs().max() > 1e-3  # the units act
    model.config = model.config.replace(output_strength={"blur": 0.25, "rain": 0.0})
    with torch.no_grad():
        assert torch.allclose(model(x, degradation="blur"), x + 0.25 * (full - x), atol=1e-6)
        assert torch.equal(model(x, degradation="rain"), x)  # strength 0: the input itself
        # other degradations are untouched, bit for bit
        assert torch.equal(model(x, degradation="haze"), at_full_strength(model, x, "haze"))
        # weights mix the strengths (a sensor's soft prediction alike): 0.5·0.25 + 0.5·1
        mixture = {"blur": 0.5, "noise": 0.5}
        mixed = at_full_strength(model, x, mixture)
        assert torch.allclose(model(x, degradation=mixture), x + 0.625 * (mixed - x), atol=1e-6)
        # and "clean" stays the identity
        assert torch.equal(model(x, degradation="clean"), x)


def test_blind_mode_mixes_the_strengths_by_the_sensor_weights():
    model = trained()
    model.sensor = pa.DegradationSensor(WITH_CLEAN, crop_size=16).eval()
    model.config = model.config.replace(output_strength={"blur": 0.5, "haze": 0.2})
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        weights = model.sensor.predict_weights(x)
        amount = (weights[0] * torch.tensor(model.config.strengths())).sum()
        # the network steered by the weights of the restorable degradations
        steering = {n: w for n, w in zip(WITH_CLEAN, weights[0].tolist(), strict=True)}
        del steering["clean"]
        expected = x + amount * (at_full_strength(model, x, steering) - x)
        assert torch.allclose(model(x), expected, atol=1e-6)


class Upscaler(nn.Module):
    """A super-resolution network: its output is twice the input's size."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(x))


def test_networks_that_change_the_size_are_refused(untouched):
    config = pa.PIPConfig(stages=["body"], output_strength={"blur": 0.5})
    model = pa.inject_pip(Upscaler(), config)
    with pytest.raises(ValueError, match="input into a .* output"):
        model(torch.rand(1, 3, 8, 8), degradation="blur")
    plain = pa.inject_pip(Upscaler(), stages=["body"])
    image = torch.rand(3, 8, 8)
    with untouched(plain), pytest.raises(ValueError, match="input into a .* output"):
        calibrate_output_strength(plain, [image], [image], ["rain"])
    assert plain.config.output_strength == ()


def test_fit_is_the_least_squares_strength_clipped_to_0_1():
    generator = torch.Generator().manual_seed(0)
    x, f, y = (torch.rand(2, 3, 8, 8, generator=generator) for _ in range(3))
    grid = torch.linspace(0, 1, 1001)
    errors = torch.stack([((x + a * (f - x) - y) ** 2).sum() for a in grid])
    assert fit_output_strength([x[0], x[1]], [f[0], f[1]], [y[0], y[1]]) == pytest.approx(
        grid[errors.argmin()].item(), abs=1e-3
    )
    assert fit_output_strength([x], [x + 0.1], [x - 0.1]) == 0.0  # the network makes it worse
    assert fit_output_strength([x], [x + 0.1], [x + 0.3]) == 1.0  # it does not go far enough
    assert fit_output_strength([x], [x], [y]) == 1.0  # no change: any strength is the same
    with pytest.raises(ValueError, match="same shape"):
        fit_output_strength([x], [f[:, :, :4]], [y])
    with pytest.raises(ValueError, match="as many"):
        fit_output_strength([x], [f], [])


def test_psnr_objective_maximises_the_mean_psnr_per_image():
    generator = torch.Generator().manual_seed(1)
    y = torch.rand(2, 3, 8, 8, generator=generator)
    x = y + 0.05 * torch.randn(2, 3, 8, 8, generator=generator)
    # the network helps the first image a little and hurts the second a lot: least squares
    # follows the large error, the PSNR per image weighs both alike
    f = torch.stack([y[0] + 0.6 * (x[0] - y[0]), x[1] + 0.4 * (x[1] - y[1])])
    grid = torch.linspace(0, 1, 1001)
    scores = torch.stack([pa.metrics.psnr(torch.lerp(x, f, a).clamp(0, 1), y).mean() for a in grid])
    fitted = fit_output_strength(list(x), list(f), list(y), objective="psnr")
    assert fitted == pytest.approx(grid[scores.argmax()].item(), abs=2e-3)
    assert fitted != pytest.approx(fit_output_strength(list(x), list(f), list(y)), abs=0.05)
    assert fit_output_strength([x[0]], [x[0]], [y[0]], objective="psnr") == 1.0  # no change
    with pytest.raises(ValueError, match="unknown objective 'ssim'; choose from mse, psnr"):
        fit_output_strength(list(x), list(f), list(y), objective="ssim")


def test_psnr_search_evaluates_each_strength_once(monkeypatch):
    # the grid, then golden-section steps that keep their surviving point: no strength is
    # blended twice (the grid's best is not evaluated again at the end either)
    from pip_adapter.training import strength

    blended: list[float] = []
    blend = strength.blend_output
    monkeypatch.setattr(
        strength, "blend_output", lambda x, f, a: blended.append(a) or blend(x, f, a)
    )
    generator = torch.Generator().manual_seed(3)
    y = torch.rand(3, 8, 8, generator=generator)
    x = y + 0.1 * torch.randn(y.shape, generator=generator)
    fitted = fit_output_strength([x], [x + 2 * (y - x)], [y], objective="psnr")
    assert fitted == pytest.approx(0.5, abs=1e-3)  # the restoration overshoots twofold
    assert len(blended) == len(set(blended))
    # from 2 / GRID wide to REFINED: 12 steps, the first with two points, then one each, and
    # the middle of the last interval (both points every step would take 26)
    assert len(blended) - (strength.GRID + 1) <= 14


def test_calibration_takes_the_objective(untouched):
    model = trained()
    generator = torch.Generator().manual_seed(4)
    degraded = [torch.rand(3, 16, 16, generator=generator) for _ in range(2)]
    restored = [at_full_strength(model, x[None], "blur")[0] for x in degraded]
    # clean photos near strengths 0.1 and 0.9 of the network's output, with a little noise
    clean = [
        (x + c * (f - x) + 0.01 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
        for x, f, c in zip(degraded, restored, (0.1, 0.9), strict=True)
    ]
    fitted = {}
    for objective in ("mse", "psnr"):
        expected = fit_output_strength(degraded, restored, clean, objective=objective)
        calibrate_output_strength(model, degraded, clean, ["blur"] * 2, objective=objective)
        fitted[objective] = dict(model.config.output_strength).get("blur", 1.0)
        assert fitted[objective] == pytest.approx(expected, abs=1e-6)
        model.config = model.config.replace(output_strength={})
    assert fitted["mse"] != pytest.approx(fitted["psnr"], abs=1e-3)  # the option acts
    with untouched(model), pytest.raises(ValueError, match="unknown objective"):
        calibrate_output_strength(model, degraded, clean, ["blur"] * 2, objective="l1")


def test_psnr_fit_caps_exact_photos_and_takes_batches():
    generator = torch.Generator().manual_seed(2)
    x, f = torch.rand(4, 3, 8, 8, generator=generator), torch.rand(4, 3, 8, 8, generator=generator)
    # three photos best near a = 0.2; the first one's clean image is its restoration exactly
    # (infinite PSNR at a = 1): capped, it does not decide alone
    y = x + 0.2 * (f - x) + 0.003 * torch.randn(x.shape, generator=generator)
    y[0] = f[0]
    fitted = fit_output_strength([x], [f], [y], objective="psnr")  # one B×C×H×W batch
    assert fitted == fit_output_strength(list(x), list(f), list(y), objective="psnr")
    assert fitted == pytest.approx(0.2, abs=0.05)
    with pytest.raises(ValueError, match="C×H×W or B×C×H×W for objective='psnr'"):
        fit_output_strength([x[0, 0]], [f[0, 0]], [y[0, 0]], objective="psnr")


def test_calibration_recovers_known_strengths_and_saves_them(tmp_path):
    model = trained()
    model.config = model.config.replace(output_strength={"noise": 0.5})
    generator = torch.Generator().manual_seed(3)
    degraded = [torch.rand(3, 17, 21, generator=generator) for _ in range(4)]
    labels = ["blur", "blur", "rain", "haze"]
    # targets made from the network's own output at strengths 0.3 (blur), 1 (rain), 0 (haze)
    wanted = {"blur": 0.3, "rain": 1.0, "haze": 0.0}
    clean = [
        x + wanted[d] * (at_full_strength(model, x[None], d)[0] - x)
        for x, d in zip(degraded, labels, strict=True)
    ]
    model.train()
    assert calibrate_output_strength(model, degraded, clean, labels) is model
    fitted = dict(model.config.output_strength)
    assert fitted.keys() == {"noise", "blur", "haze"}  # rain: 1, the default
    assert fitted["blur"] == pytest.approx(0.3, abs=1e-4) and fitted["haze"] == 0.0
    assert fitted["noise"] == 0.5  # not among the photos: kept
    assert model.training  # its mode back
    model.save_adapter(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["output_strength"] == pytest.approx({"noise": 0.5, "blur": 0.3, "haze": 0.0})
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter").eval()
    assert loaded.config == model.config
    x = degraded[0][None]
    with torch.no_grad():
        assert torch.equal(loaded(x, degradation="blur"), model.eval()(x, degradation="blur"))


def test_bad_calibrations_leave_the_model_untouched(untouched):
    model = trained()
    image = torch.rand(3, 16, 16)
    with untouched(model):
        config = model.config
        with pytest.raises(ValueError, match="unknown degradation 'clean'"):
            calibrate_output_strength(model, [image], [image], ["clean"])
        with pytest.raises(ValueError, match="unknown degradation 'snow'"):
            calibrate_output_strength(model, [image], [image], ["snow"])
        with pytest.raises(ValueError, match="as many"):
            calibrate_output_strength(model, [image, image], [image], ["rain"])
        with pytest.raises(ValueError, match="same shape"):
            calibrate_output_strength(model, [image], [image[:, :8]], ["rain"])
        assert model.config is config


def test_files_without_strengths_load_at_full_strength():
    """Adapter files written before output strengths existed (here: format version 1)."""
    model = pa.load_adapter(build("unet"), V1)
    assert model.config.output_strength == ()
    assert model.config.strengths() == (1.0,) * len(model.degradations)
