"""Blur's output strength per image (``PIPConfig.blur_strength``): the blur effect it reads from
the input is scikit-image's, the model blends as with a fixed output strength, the fit recovers
the line the restorations follow, and the setting is checked and saved with the adapter."""

import pytest
import torch
from backbones import build, train_conditioning
from skimage.color import rgb2gray
from skimage.measure import blur_effect as skimage_blur_effect

import pip_adapter as pa
from pip_adapter.data import sample_images
from pip_adapter.data.degradations.blur import motion_blur
from pip_adapter.metrics import blur_effect
from pip_adapter.training import calibrate_blur_strength, fit_blur_strength

WITH_CLEAN = (*pa.DEFAULT_DEGRADATIONS, "clean")


def trained(**config):
    model = pa.inject_pip(build("nafnet"), degradations=WITH_CLEAN, **config).freeze_backbone()
    train_conditioning(model)
    return model.eval()


def test_blur_effect_is_scikit_images_and_grows_with_the_blur():
    photo = sample_images("test")[0][:, :160, :200]
    previous = -1.0
    for length in (None, 5.0, 15.0):
        image = photo[None]
        if length is not None:  # the same shake path at each length (a seeded generator)
            image = motion_blur(image, length, generator=torch.Generator().manual_seed(0))
        ours = blur_effect(image).item()
        theirs = skimage_blur_effect(rgb2gray(image[0].permute(1, 2, 0).numpy()), h_size=11)
        assert ours == pytest.approx(theirs, abs=0.005)
        assert ours > previous + 0.05
        previous = ours
    with pytest.raises(ValueError, match="blur_effect expects B×3×H×W RGB input"):
        blur_effect(photo)


def test_blur_effect_is_computed_in_float32_under_autocast():
    image = motion_blur(sample_images("test")[0][None, :, :96, :96], length=7.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = blur_effect(image)
    assert under_autocast.dtype == torch.float32
    assert torch.equal(under_autocast, blur_effect(image))


def test_a_constant_line_blends_as_the_output_strength_and_a_line_per_image():
    model = trained(blur_strength=(0.3, 0.0))
    reference = trained(output_strength={"blur": 0.3})
    full = trained()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for degradation in ("blur", "rain", "clean", {"blur": 0.5, "clean": 0.5}):
            torch.testing.assert_close(
                model(x, degradation=degradation), reference(x, degradation=degradation)
            )
        model.config = model.config.replace(blur_strength=(2.0, -1.0))
        strength = (2.0 - blur_effect(x)).clamp(0, 1).view(-1, 1, 1, 1)
        restored = full(x, degradation="blur")
        torch.testing.assert_close(model(x, degradation="blur"), x + strength * (restored - x))
        torch.testing.assert_close(model(x, degradation="rain"), full(x, degradation="rain"))


def test_the_fit_recovers_the_line_the_restorations_follow():
    generator = torch.Generator().manual_seed(0)
    inputs, outputs, targets = [], [], []
    for size in (1, 3, 5, 9):  # inputs of different blur effects
        x = torch.rand(1, 3, 48, 48, generator=generator)
        x = torch.nn.functional.avg_pool2d(x, size, stride=1, padding=size // 2)
        change = torch.randn(1, 3, 48, 48, generator=generator) * 0.05
        best = 0.9 - 0.6 * blur_effect(x).item()
        inputs.append(x), outputs.append(x + change), targets.append(x + best * change)
    a0, a1 = fit_blur_strength(inputs, outputs, targets)
    assert (a0, a1) == (pytest.approx(0.9, abs=1e-6), pytest.approx(-0.6, abs=1e-6))
    with pytest.raises(ValueError, match="at least two blur effects"):
        fit_blur_strength(inputs[:1], outputs[:1], targets[:1])
    with pytest.raises(ValueError, match="matching B×3×H×W degraded, restored and clean batches"):
        fit_blur_strength(inputs, outputs, [y[..., :32, :32] for y in targets])  # no broadcast


def test_the_fit_of_blind_blends_recovers_the_line_under_the_sensors_shares():
    generator = torch.Generator().manual_seed(1)
    inputs, outputs, targets, shares = [], [], [], []
    for size in (1, 3, 5, 9):
        x = torch.rand(2, 3, 48, 48, generator=generator)
        x = torch.nn.functional.avg_pool2d(x, size, stride=1, padding=size // 2)
        change = torch.randn(2, 3, 48, 48, generator=generator) * 0.05
        w, r = torch.rand(2, generator=generator), torch.rand(2, generator=generator) * 0.3
        share = r + w * (0.9 - 0.6 * blur_effect(x))  # the blend a mixture makes at that line
        inputs.append(x), outputs.append(x + change), shares.append((w, r))
        targets.append(x + share.view(-1, 1, 1, 1) * change)
    a0, a1 = fit_blur_strength(inputs, outputs, targets, shares=shares)
    assert (a0, a1) == (pytest.approx(0.9, abs=1e-6), pytest.approx(-0.6, abs=1e-6))
    ones = [(torch.ones(2), torch.zeros(2)) for _ in inputs]  # the label: w = 1, r = 0
    assert fit_blur_strength(inputs, outputs, targets, shares=ones) == pytest.approx(
        fit_blur_strength(inputs, outputs, targets)
    )
    with pytest.raises(ValueError, match="one \\(w, r\\) pair of shares per batch"):
        fit_blur_strength(inputs, outputs, targets, shares=shares[:1])
    with pytest.raises(ValueError, match="shares of one value per image"):
        fit_blur_strength(inputs, outputs, targets, shares=[(torch.ones(3), torch.ones(3))] * 4)


def test_blind_calibration_fits_the_blends_the_sensors_weights_make():
    model = trained(output_strength={"rain": 0.7})
    model.sensor = pa.DegradationSensor(WITH_CLEAN, backbone="test_resnet", crop_size=16).eval()
    photos = [p[:, :48, :48] for p in sample_images("test")]
    images = [motion_blur(photos[0][None], length=9)[0], photos[1], photos[2] * 0.5]
    with torch.no_grad():  # the sensor's weights as the model takes them, image by image
        weights = torch.cat([model.degradation_weights(x[None], None) for x in images])
    blur, clean = WITH_CLEAN.index("blur"), WITH_CLEAN.index("clean")
    strengths = torch.tensor([0.7 if d == "rain" else 1.0 for d in WITH_CLEAN])
    strengths[[blur, clean]] = 0.0
    with torch.no_grad():  # the network's own output, steered by the weights but "clean"
        restored = [
            model.full_output(x[None], w[None]) for x, w in zip(images, weights, strict=True)
        ]
    shares = [(w[blur : blur + 1], (w * strengths).sum()[None]) for w in weights]
    expected = fit_blur_strength(
        [x[None] for x in images], restored, [p[None] for p in photos], shares=shares
    )
    calibrate_blur_strength(model, images, photos, blind=True)
    assert model.config.blur_strength == pytest.approx(expected)
    assert dict(model.config.output_strength) == {"rain": 0.7}
    assert model.config.blur_strength != pytest.approx(
        calibrate_blur_strength(model, images, photos).config.blur_strength
    )
    model.sensor = None  # blind needs the sensor: refused, the model left as it was
    before = model.config
    with pytest.raises(ValueError, match="blind=True\\) restores through model.sensor"):
        calibrate_blur_strength(model, images, photos, blind=True)
    assert model.config == before


def test_the_full_output_is_what_the_model_blends_with_its_input():
    model = trained(output_strength={"rain": 0.7})
    x = torch.rand(3, 3, 32, 32)
    names = list(WITH_CLEAN)
    weights = torch.zeros(3, len(names))
    weights[0, [names.index("clean"), names.index("rain"), names.index("blur")]] = torch.tensor(
        [0.4, 0.3, 0.3]
    )
    weights[1, names.index("clean")] = 1.0  # clean alone: steered as any mixture of the others
    weights[2, names.index("noise")] = 1.0
    uniform = torch.tensor([0.0 if d == "clean" else 0.2 for d in names])
    with torch.no_grad():
        full = model.full_output(x, weights)
        blended = model(x, degradation=weights)
        torch.testing.assert_close(
            full[0:1], model.full_output(x[0:1], torch.tensor([[0, 0.5, 0, 0.5, 0, 0]]))
        )
        torch.testing.assert_close(full[1:2], model.full_output(x[1:2], uniform[None]))
        assert not torch.allclose(full[0], x[0], atol=1e-3)  # the network changed the image
    amount = torch.tensor([0.3 * 0.7 + 0.3, 0.0, 1.0])
    torch.testing.assert_close(model.output_amount(x, weights * 2), amount)  # normalised
    torch.testing.assert_close(blended, x + amount.view(-1, 1, 1, 1) * (full - x))
    assert torch.equal(blended[1], x[1])
    model.config = model.config.replace(blur_strength=(1.5, -2.0))  # blur's share per image
    amount = amount + weights[:, names.index("blur")] * (
        (1.5 - 2.0 * blur_effect(x)).clamp(0, 1) - 1
    )
    torch.testing.assert_close(model.output_amount(x, weights), amount)
    with torch.no_grad():
        torch.testing.assert_close(
            model(x, degradation=weights), x + amount.view(-1, 1, 1, 1) * (full - x)
        )
    with pytest.raises(ValueError, match=r"shape \(batch, num_degradations\) = \(3, 6\)"):
        model.full_output(x, weights[:, :-1])  # one column short: refused, not misread
    with pytest.raises(ValueError, match="rows \\[2\\] are all zero"):
        model.full_output(x, weights * torch.tensor([[1.0], [1.0], [0.0]]))
    with pytest.raises(ValueError, match="x must be a B×C×H×W image tensor"):
        model.full_output(x[0], weights[:1])
    with pytest.raises(ValueError, match=r"shape \(batch, num_degradations\) = \(3, 6\)"):
        model.output_amount(x, weights[:, :-1])  # the same checks as full_output
    with pytest.raises(ValueError, match="x must be a B×C×H×W image tensor"):
        model.output_amount(x[0], weights[:1])


def test_calibration_sets_the_fitted_line_and_replaces_a_blur_output_strength():
    model = trained(output_strength={"blur": 0.5, "rain": 0.7})
    photos = [p[:, :64, :64] for p in sample_images("test")]
    blurred = [
        motion_blur(p[None], length=length)[0] for p, length in zip(photos, (5, 9, 15), strict=True)
    ]
    full = trained(output_strength={"rain": 0.7})
    with torch.no_grad():
        restored = [full(x[None], degradation="blur") for x in blurred]
    expected = fit_blur_strength([x[None] for x in blurred], restored, [p[None] for p in photos])
    calibrate_blur_strength(model, blurred, photos)
    assert model.config.blur_strength == pytest.approx(expected)
    assert dict(model.config.output_strength) == {"rain": 0.7}
    # a model that does not restore blur is refused and left as it was
    no_blur = pa.inject_pip(build("nafnet"), degradations=("noise", "rain"))
    before = no_blur.config
    with pytest.raises(ValueError, match="blur"):
        calibrate_blur_strength(no_blur, blurred, photos)
    assert no_blur.config == before


def test_the_setting_is_checked_and_saved_with_the_adapter(tmp_path):
    config = pa.PIPConfig(degradations=WITH_CLEAN, blur_strength=[1.5, -2])
    assert config.blur_strength == (1.5, -2.0)
    assert pa.PIPConfig.from_dict(config.to_dict()) == config
    for bad, message in (
        ((1.0,), "must be None or a pair"),
        ("ab", "must be None or a pair"),
        ((1.0, float("nan")), "two finite numbers"),
    ):
        with pytest.raises(ValueError, match=message):
            pa.PIPConfig(blur_strength=bad)
    with pytest.raises(ValueError, match="blur_strength and output_strength both"):
        pa.PIPConfig(blur_strength=(1.0, 0.0), output_strength={"blur": 0.5})
    with pytest.raises(ValueError, match=r"blur_strength \['blur'\] are not among"):
        pa.PIPConfig(degradations=("noise", "rain"), blur_strength=(1.0, 0.0))
    model = trained(blur_strength=(1.2, -0.8))
    model.save_adapter(tmp_path / "adapter")
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter").eval()
    assert loaded.config.blur_strength == (1.2, -0.8)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, degradation="blur"), model(x, degradation="blur"))


@pytest.mark.slow
def test_an_exported_graph_reads_each_images_blur_effect():
    from pip_adapter import export

    model = trained(blur_strength=(1.5, -1.0))
    program = export.to_torch_export(model, degradation="blur")
    for size in ((32, 32), (40, 56)):
        x = torch.rand(2, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), model(x, degradation="blur"))
