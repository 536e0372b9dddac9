"""DegradationSensor: native-resolution crops, real training, blind mode, adapter files."""

import copy
import json

import kornia
import pytest
import torch
import torch.nn.functional as F
from backbones import build
from safetensors.torch import load_file, save_file

import pip_adapter as pa
from pip_adapter.data import SyntheticAllInOne, degrade, sample_images, synthetic_pages
from pip_adapter.injection.serialization import (
    SENSOR_FEATURE_VERSIONS,
    SENSOR_FORMAT_VERSION,
    write_sensor,
)
from pip_adapter.sensor import (
    DEFAULT_SENSOR_SCALE_WEIGHTS,
    DEFAULT_SENSOR_VIEWS,
    SENSOR_SHARPNESS,
    SENSOR_STATISTICS,
    SHARPNESS_WINDOW,
    _window_max,
    crop_grid,
    edge_sharpness,
    image_statistics,
    zoom,
)
from pip_adapter.training import calibrate_sensor, fit_temperature, train_sensor
from pip_adapter.training.sensor import (
    DEFAULT_SENSOR_CONTEXT,
    DEFAULT_SENSOR_FAINT,
    DEFAULT_SENSOR_SCALES,
    FAINT_RANGES,
    SOFT_SIGMA,
    _dataset,
    _extra_clean,
    _ExtraClean,
    _Faint,
    _HazeField,
    _item_logits,
    _Recoloured,
    _Softened,
)

TOY_DEGRADATIONS = ("clean", "noise")
TINY = {"backbone": "test_resnet", "crop_size": 32}


def keep(clean, generator=None):
    return clean


def toy_set(images, seed, augment=True):
    """Clean patches vs heavily noisy ones (sigma 50): separable by local statistics."""
    return SyntheticAllInOne(
        images,
        TOY_DEGRADATIONS,
        patch_size=32,
        samples_per_degradation=32,
        seed=seed,
        augment=augment,
        params={"noise": {"sigma": 50}},
        custom={"clean": keep},
    )


def accuracy(sensor, dataset):
    degraded = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor([dataset[i][2] for i in range(len(dataset))])
    with torch.no_grad():
        return (sensor(degraded).argmax(dim=-1) == labels).float().mean().item()


@pytest.fixture(scope="module")
def toy_sensor():
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY)
    held_out = toy_set(sample_images("test"), seed=1, augment=False)
    before = accuracy(sensor.eval(), held_out)
    train_sensor(sensor, toy_set(sample_images("train"), seed=0), steps=60, progress=False)
    return sensor, before, accuracy(sensor, held_out)


def test_training_learns_clean_vs_noisy_on_held_out_photos(toy_sensor):
    sensor, before, after = toy_sensor
    assert after >= 0.9, f"held-out accuracy {after:.2f} (was {before:.2f} untrained)"
    assert not sensor.training and not any(p.requires_grad for p in sensor.parameters())


def test_crops_are_native_resolution_and_cover_the_image():
    x = torch.rand(2, 3, 100, 70)
    crops = crop_grid(x, 32, 3)
    assert crops.shape == (2, 9, 3, 32, 32)
    tops, lefts = [0, 34, 68], [0, 19, 38]
    expected = [x[:, :, t : t + 32, c : c + 32] for t in tops for c in lefts]
    assert torch.equal(crops, torch.stack(expected, dim=1))
    assert crop_grid(x, 64, 3).shape == (2, 4, 3, 64, 64)
    assert crop_grid(x, 32, 1).shape == (2, 1, 3, 32, 32)
    assert torch.equal(crop_grid(x, 32, 1)[:, 0], x[:, :, 34:66, 19:51])


def test_small_images_are_mirrored_out_to_a_crop():
    x = torch.rand(1, 3, 5, 40)
    crop = crop_grid(x, 32, 3)
    assert crop.shape == (1, 2, 3, 32, 32)
    assert torch.equal(crop[0, 0, :, :5], x[0, :, :, :32])
    assert torch.equal(crop[0, 0, :, 5:9], x[0, :, [3, 2, 1, 0], :32])
    assert crop_grid(torch.rand(1, 3, 1, 1), 32, 3).shape == (1, 1, 3, 32, 32)


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 17, 45), (1, 3, 32, 32), (2, 3, 90, 61)])
def test_logits_and_weights_for_any_size(shape):
    sensor = pa.DegradationSensor(**TINY).eval()
    x = torch.rand(shape)
    logits = sensor(x)
    assert logits.shape == (shape[0], 5)
    weights = sensor.predict_weights(x)
    assert weights.dtype == torch.float32 and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(shape[0]))
    assert sensor.predict(x)[0] in pa.DEFAULT_DEGRADATIONS


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(3, 32, 32), r"B×3×H×W image tensors, got \(3, 32, 32\)"),
        (torch.rand(1, 1, 32, 32), "3 channels"),
        (torch.randint(0, 255, (1, 3, 32, 32)), "float images"),
        (torch.rand(1, 3, 0, 8), "at least 1×1"),
        ([[0.5]], "got list"),
    ],
)
def test_bad_images_are_refused(x, message):
    with pytest.raises(ValueError, match=message):
        pa.DegradationSensor(**TINY)(x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "resnet_18"}, r"unknown timm backbone 'resnet_18'; did you mean .*resnet18"),
        ({"backbone": "no-such-net"}, r"mobilenetv3_small_100.*timm.list_models"),
        ({"degradations": "rain"}, "sequence of names"),
        ({"degradations": ()}, "non-empty strings"),
        ({"degradations": ("rain", "rain")}, "unique"),
        ({"crop_size": 0}, "crop_size must be an integer from 1 to 1024"),
        ({"crops_per_side": 1.5}, "crops_per_side must be an integer from 1 to 16"),
        ({"statistics": "yes"}, "statistics must be True or False, got 'yes'"),
        ({"sharpness": 1}, "sharpness must be True or False, got 1"),
        ({"statistics": True, "crop_size": 3}, "statistics need a crop_size of at least 4"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pa.DegradationSensor(**{**TINY, **kwargs})


def test_training_checks_its_inputs():
    sensor = pa.DegradationSensor(**TINY)
    with pytest.raises(ValueError, match=r"degradations \['clean'\] are not among the sensor's"):
        train_sensor(sensor, toy_set([torch.rand(3, 40, 40)], 0), steps=1)
    with pytest.raises(ValueError, match="steps and batch_size must be positive"):
        train_sensor(sensor, steps=0)
    with pytest.raises(ValueError, match=r"faint must be a share in \[0, 1\], got 1.5"):
        train_sensor(sensor, faint=1.5)
    with pytest.raises(ValueError, match="temperature must be a number from 0.01"):
        train_sensor(sensor, temperature=-1.0)
    with pytest.raises(ValueError, match="smaller than one batch"):
        train_sensor(
            pa.DegradationSensor(TOY_DEGRADATIONS, **TINY),
            toy_set([torch.rand(3, 40, 40)], 0),
            batch_size=65,
            steps=1,
        )


def with_sensor(sensor, **options):
    model = pa.inject_pip(build("nafnet"), degradations=sensor.degradations, **options)
    with torch.no_grad():
        for unit in model.pip_units.values():
            for param in unit.parameters():
                param.add_(0.05 * torch.randn_like(param))
    model.sensor = sensor
    return model


# blind mode mixes the degradations' own feed-forward updates by the sensor's weights too
@pytest.mark.parametrize("options", [{}, {"degradation_ffn_rank": 2}])
def test_blind_calls_use_the_sensor(toy_sensor, options):
    sensor, _, _ = toy_sensor
    model = with_sensor(sensor, **options).eval()
    x = torch.rand(2, 3, 24, 40)
    x[1] = (x[1] + 0.3 * torch.randn_like(x[1])).clamp(0, 1)
    with torch.no_grad():
        weights = sensor.predict_weights(x)
        blind = model(x)
        assert torch.equal(blind, model(x, degradation=weights))
        assert not torch.allclose(blind, model(x, degradation="clean"))


def test_save_and_load_adapter_carry_the_sensor(toy_sensor, tmp_path):
    sensor, _, _ = toy_sensor
    model = with_sensor(sensor).eval()
    out = model.save_adapter(tmp_path / "adapter")
    assert {"sensor_config.json", "sensor.safetensors"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "sensor_config.json").read_text())
    assert config["format"] == "pip-adapter-sensor" and config["degradations"] == list(
        TOY_DEGRADATIONS
    )
    assert config["backbone"] == "test_resnet" and config["crop_size"] == 32
    loaded = pa.load_adapter(build("nafnet"), out).eval()
    assert isinstance(loaded.sensor, pa.DegradationSensor) and not loaded.sensor.training
    x = torch.rand(2, 3, 50, 37)
    with torch.no_grad():
        assert torch.equal(loaded.sensor(x), sensor(x))
        assert torch.equal(loaded(x), model(x))
    model.sensor = None
    model.save_adapter(out)
    assert not (out / "sensor.safetensors").exists()
    assert pa.load_adapter(build("nafnet"), out).sensor is None


def test_save_adapter_refuses_a_foreign_sensor(tmp_path):
    model = with_sensor(pa.DegradationSensor(TOY_DEGRADATIONS, **TINY))
    model.sensor = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="stores a pip_adapter.DegradationSensor.*Linear"):
        model.save_adapter(tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


def corrupt_sensor(directory, how):
    config_path, weights_path = directory / "sensor_config.json", directory / "sensor.safetensors"
    config = json.loads(config_path.read_text())
    if how == "truncated weights":
        weights_path.write_bytes(weights_path.read_bytes()[:64])
    elif how == "weights only":
        config_path.unlink()
    elif how == "config only":
        weights_path.unlink()
    elif how == "not json":
        config_path.write_text("{")
    elif how == "adapter config":
        config_path.write_text((directory / "adapter_config.json").read_text())
    elif how == "missing key":
        del config["crop_size"]
        config_path.write_text(json.dumps(config))
    elif how == "other degradations":
        config_path.write_text(json.dumps(config | {"degradations": ["clean", "rain"]}))
    elif how == "unknown backbone":
        config_path.write_text(json.dumps(config | {"backbone": "resnet_18"}))
    elif how == "bad crop size":
        config_path.write_text(json.dumps(config | {"crop_size": "big"}))
    elif how == "other backbone":
        config_path.write_text(json.dumps(config | {"backbone": "test_efficientnet"}))
    elif how == "wrong tensor shape":
        tensors = load_file(weights_path)
        key = next(k for k in tensors if k.endswith("fc.weight"))
        tensors[key] = torch.zeros(3, 3)
        save_file(tensors, weights_path)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated weights", "could not read sensor weights"),
        ("weights only", "has sensor.safetensors but not sensor_config.json"),
        ("config only", "has sensor_config.json but not sensor.safetensors"),
        ("not json", "sensor_config.json is not valid JSON"),
        ("adapter config", "is not a pip-adapter-sensor config"),
        ("missing key", r"lacks the keys \['crop_size'\]"),
        ("other degradations", r"predicts \['clean', 'rain'\] but the adapter's degradations"),
        ("unknown backbone", "sensor_config.json in .* is malformed: unknown timm backbone"),
        ("bad crop size", "is malformed: crop_size must be an integer from 1 to 1024"),
        ("other backbone", "sensor weights in .* do not match its config"),
        ("wrong tensor shape", "do not match its config.*size mismatch"),
    ],
)
def test_corrupt_sensor_files_are_refused_and_backbone_untouched(tmp_path, how, message, untouched):
    with_sensor(pa.DegradationSensor(TOY_DEGRADATIONS, **TINY)).save_adapter(tmp_path / "adapter")
    corrupt_sensor(tmp_path / "adapter", how)
    backbone = build("nafnet")
    with untouched(backbone), pytest.raises(ValueError, match=message):
        pa.load_adapter(backbone, tmp_path / "adapter")


def test_recolouring_is_reproducible_and_stays_in_range():
    recoloured = _Recoloured(keep)
    clean = torch.rand(6, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    first = recoloured(clean, generator=torch.Generator().manual_seed(1))
    again = recoloured(clean, generator=torch.Generator().manual_seed(1))
    other = recoloured(clean, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == clean.shape and first.min() >= 0 and first.max() <= 1
    # the colours change (per image), the picture does not: still correlated with its source
    assert (first - clean).abs().mean() > 0.02
    for image, source in zip(first, clean, strict=True):
        grey, source_grey = image.mean(0).flatten(), source.mean(0).flatten()
        assert torch.corrcoef(torch.stack([grey, source_grey]))[0, 1] > 0.5


def test_sensor_crops_from_photos_use_the_default_context_zoom_and_faint_draws():
    """An image source becomes recoloured crops degraded with context, at several zooms, with
    faint draws of the degradations that have a faint range."""
    sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY)
    data = _dataset(
        sensor,
        sample_images("train"),
        0,
        True,
        DEFAULT_SENSOR_CONTEXT,
        (1.0, 0.5),
        0.5,
        FAINT_RANGES,
        1.0,
        1,
    )
    assert isinstance(data, SyntheticAllInOne) and data.degradations == TOY_DEGRADATIONS
    assert (data.context, data.scales, data.patch_size) == (DEFAULT_SENSOR_CONTEXT, (1.0, 0.5), 32)
    assert DEFAULT_SENSOR_CONTEXT > 0 and len(DEFAULT_SENSOR_SCALES) > 1
    assert 0 < DEFAULT_SENSOR_FAINT < 1
    degraded, _, _ = data[0]
    assert degraded.shape == (3, 32, 32)

    def inner(data):  # each degradation is recoloured first
        return [fn.degradation for fn in data._functions]

    assert isinstance(inner(data)[TOY_DEGRADATIONS.index("noise")], torch.nn.Module)  # not faint
    rain = pa.DegradationSensor(("rain", "clean"), **TINY)
    faint = inner(_dataset(rain, None, 0, True, 0, (1.0,), 0.5, FAINT_RANGES, 1.0, 1))[0]
    assert isinstance(faint, _Faint) and faint.share == 0.5
    never = inner(_dataset(rain, None, 0, True, 0, (1.0,), 0, FAINT_RANGES, 1.0, 1))[0]
    assert isinstance(never, torch.nn.Module)
    haze = pa.DegradationSensor(("haze", "clean"), **TINY)
    wide = inner(_dataset(haze, None, 0, True, 0, (1.0,), 0, FAINT_RANGES, 3.0, 1))[0]
    assert isinstance(wide, _HazeField) and wide.field == 3.0
    both = inner(
        _dataset(haze, None, 0, True, 0, (1.0,), 0.5, {"haze": {"beta": (0.04, 0.05)}}, 3.0, 1)
    )
    assert isinstance(both[0], _Faint) and isinstance(both[0].draw, _HazeField)


def test_haze_over_a_wider_field_shows_a_window_of_its_depth_map():
    """A crop given a window of a depth map drawn over a larger field sees less of the scene's
    depth range than one given a whole map (which always holds near ground and far sky): the
    haze over a flat grey crop varies less across it. Reproducible with the same generator."""
    grey = torch.full((16, 3, 48, 48), 0.4)

    def spread(field: float) -> float:
        hazy = _HazeField(field)(grey, generator=torch.Generator().manual_seed(0), beta=0.2)
        return (hazy.amax(dim=(1, 2, 3)) - hazy.amin(dim=(1, 2, 3))).mean().item()

    first = _HazeField(4.0)(grey, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, _HazeField(4.0)(grey, generator=torch.Generator().manual_seed(1)))
    assert first.shape == grey.shape and (first > grey).all()  # airlight above the grey
    assert spread(6.0) < 0.8 * spread(1.0)


@pytest.mark.parametrize("field", [0.5, 9, True, "2"])
def test_train_sensor_refuses_a_haze_field_out_of_range(field):
    sensor = pa.DegradationSensor(("haze", "clean"), **TINY)
    before = {k: v.clone() for k, v in sensor.state_dict().items()}
    with pytest.raises(ValueError, match="haze_field must be a number from 1 to 8"):
        train_sensor(sensor, steps=1, haze_field=field, progress=False)
    assert all(torch.equal(v, sensor.state_dict()[k]) for k, v in before.items())


def test_groups_are_patches_of_crops_judged_as_the_sensor_judges_a_photo():
    """With ``group=2`` an item is a patch of 2×2 crops degraded as one, and its logits are the
    sensor's own for that patch (the mean over its crop grid); training on groups moves the
    weights and gives back a frozen sensor."""
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY).eval()
    data = _dataset(sensor, sample_images("train"), 0, True, 8, (1.0,), 0, FAINT_RANGES, 1.0, 2)
    patches = torch.stack([data[i][0] for i in range(3)])
    assert patches.shape == (3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(_item_logits(sensor, patches, 2), sensor(patches), atol=1e-5)
        corner = patches[..., :32, :32]
        assert torch.equal(_item_logits(sensor, corner, 1), sensor.classify(corner))
    before = {k: v.clone() for k, v in sensor.state_dict().items()}
    trained = train_sensor(sensor, steps=2, batch_size=2, group=2, progress=False)
    assert not trained.training and not any(p.requires_grad for p in trained.parameters())
    assert any(not torch.equal(v, trained.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("group", [0, 5, True, 2.0])
def test_train_sensor_refuses_a_group_out_of_range(group):
    sensor = pa.DegradationSensor(("haze", "clean"), **TINY)
    with pytest.raises(ValueError, match="group must be an integer from 1 to 4"):
        train_sensor(sensor, steps=1, group=group, progress=False)


def test_train_sensor_refuses_groups_of_a_dataset_and_leaves_the_sensor_untouched(untouched):
    """A Dataset's items are single crops: ``group`` > 1 would silently train at group 1."""
    sensor = pa.DegradationSensor(("haze", "clean"), **TINY)
    crops = torch.rand(4, 3, 32, 32)
    data = torch.utils.data.TensorDataset(crops, crops, torch.zeros(4, dtype=torch.long))
    with untouched(sensor), pytest.raises(ValueError, match="a Dataset's items are single crops"):
        train_sensor(sensor, data, steps=1, batch_size=2, group=2, progress=False)


@pytest.mark.parametrize("degradation", sorted(FAINT_RANGES))
def test_faint_draws_change_an_image_less_than_default_ones(degradation):
    """A faint draw is still a degradation, milder on average than a default one; reproducible."""
    clean = sample_images("train")[0][None, :, :96, :96].expand(8, -1, -1, -1).contiguous()
    faint = _Faint(degradation, share=1.0, ranges=FAINT_RANGES[degradation])
    first = faint(clean, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, faint(clean, generator=torch.Generator().manual_seed(3)))
    change = (first - clean).abs().mean().item()
    default = degrade(clean, degradation, generator=torch.Generator().manual_seed(3))
    assert 0 < change < (default - clean).abs().mean().item()


def test_a_sensor_learns_clean_from_a_restoration_dataset_without_it():
    """The clean images of a dataset's items become the sensor's "clean" class."""
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(("noise", "clean"), **TINY)
    noisy = SyntheticAllInOne(
        sample_images("train"),
        ("noise",),
        patch_size=32,
        samples_per_degradation=64,
        params={"noise": {"sigma": 50}},
    )
    train_sensor(sensor, noisy, steps=60, progress=False)
    held_out = toy_set(sample_images("test"), seed=1, augment=False)  # ids: clean 0, noise 1
    with torch.no_grad():
        predicted = [sensor.predict(held_out[i][0][None])[0] for i in range(len(held_out))]
    truth = [TOY_DEGRADATIONS[held_out[i][2]] for i in range(len(held_out))]
    hits = sum(p == t for p, t in zip(predicted, truth, strict=True))
    assert hits / len(truth) >= 0.9
    assert sensor.predict_weights(held_out[0][0][None]).shape == (1, 2)  # clean is a class


def test_flip_views_make_the_sensor_blind_to_mirroring():
    """ "flips" averages each crop with its mirror images: a mirrored photo (whose crops are
    the mirrored crops, on this symmetric grid) gets the same logits; one view does not."""
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(**TINY, crops_per_side=2).eval()
    x = torch.rand(2, 3, 64, 96)
    mirrors = (x.flip(-1), x.flip(-2), x.flip(-1, -2))
    with torch.no_grad():
        plain = [sensor(m) for m in (x, *mirrors)]
        assert all((p - plain[0]).abs().max() > 1e-3 for p in plain[1:])
        sensor.views = "flips"
        logits = sensor(x)
        for mirrored in mirrors:
            torch.testing.assert_close(sensor(mirrored), logits, atol=1e-5, rtol=1e-5)
        assert (logits - plain[0]).abs().max() > 1e-3
        torch.testing.assert_close(logits, torch.stack(plain).mean(dim=0), atol=1e-5, rtol=1e-5)
        sensor.views = "hflip"
        torch.testing.assert_close(sensor(x), (plain[0] + plain[1]) / 2, atol=1e-5, rtol=1e-5)


def test_temperature_softens_the_weights_without_changing_the_prediction():
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(**TINY).eval()
    x = torch.rand(3, 3, 40, 40)
    with torch.no_grad():
        sure = sensor.predict_weights(x)
        sensor.temperature = 2.5
        soft = sensor.predict_weights(x)
        torch.testing.assert_close(soft, (sensor(x) / 2.5).softmax(dim=-1))
    assert torch.equal(soft.argmax(-1), sure.argmax(-1))
    assert (soft.max(-1).values < sure.max(-1).values - 1e-4).all()
    assert "temperature=2.5" in repr(sensor)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"views": "rot90"}, r"views must be one of \['none', 'hflip', 'flips'\], got 'rot90'"),
        ({"temperature": 0}, "temperature must be a number from 0.01 to 100.0, got 0"),
        ({"temperature": float("nan")}, "temperature must be a number"),
        ({"temperature": True}, "temperature must be a number"),
        ({"temperature": "2"}, "temperature must be a number"),
    ],
)
def test_bad_views_and_temperatures_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pa.DegradationSensor(**{**TINY, **kwargs})
    sensor = pa.DegradationSensor(**TINY)
    with pytest.raises(ValueError, match=message):
        setattr(sensor, *next(iter(kwargs.items())))
    assert (sensor.views, sensor.temperature) == (DEFAULT_SENSOR_VIEWS, 1.0)


def test_fit_temperature_recovers_the_scale_of_overconfident_logits():
    """Labels drawn from softmax(z): logits 3·z are three times too sure, and the fit says 3."""
    generator = torch.Generator().manual_seed(0)
    z = 2 * torch.randn(4000, 6, generator=generator)
    truth = torch.multinomial(z.softmax(-1), 1, generator=generator)[:, 0]
    assert fit_temperature(3 * z, truth) == pytest.approx(3, rel=0.1)
    assert fit_temperature(z, truth) == pytest.approx(1, rel=0.1)
    with pytest.raises(ValueError, match=r"N×T logits and N class ids, got \(4, 6\) and \(3,\)"):
        fit_temperature(z[:4], truth[:3])


def test_calibrate_sensor_fits_its_temperature_on_labelled_images(toy_sensor):
    sensor = copy.deepcopy(toy_sensor[0])
    photos = sample_images("test")
    generator = torch.Generator().manual_seed(3)
    images, names = [], []
    for photo in photos:
        for name in ("clean", "noise"):
            sigma = {"sigma": 5} if name == "noise" else {}
            images.append(degrade(photo[:, :48, :64], name, generator=generator, **sigma))
            names.append(name)
    truth = torch.tensor([TOY_DEGRADATIONS.index(n) for n in names])

    def nll():
        with torch.no_grad():
            weights = torch.cat([sensor.predict_weights(i[None]) for i in images])
        return -weights[torch.arange(len(truth)), truth].log().mean().item()

    before = nll()
    assert calibrate_sensor(sensor, images, names) is sensor
    assert sensor.temperature != 1.0 and nll() < before - 1e-3
    # ids work as names do; unknown names and a length mismatch are refused
    fitted = sensor.temperature
    assert calibrate_sensor(sensor, images, truth.tolist()).temperature == pytest.approx(fitted)
    for unknown in ("rain", len(TOY_DEGRADATIONS), True):
        with pytest.raises(ValueError, match=rf"unknown degradation {unknown!r}; valid names: \["):
            calibrate_sensor(sensor, images[:1], [unknown])
    with pytest.raises(ValueError, match="as many images as degradations"):
        calibrate_sensor(sensor, images, names[:1])


def test_saved_sensor_carries_views_and_temperature(toy_sensor, tmp_path):
    sensor = copy.deepcopy(toy_sensor[0])
    sensor.views, sensor.temperature = "flips", 1.7
    model = with_sensor(sensor).eval()
    out = model.save_adapter(tmp_path / "adapter")
    loaded = pa.load_adapter(build("nafnet"), out).sensor
    assert (loaded.views, loaded.temperature) == ("flips", 1.7)
    x = torch.rand(1, 3, 40, 33)
    with torch.no_grad():
        assert torch.equal(loaded.predict_weights(x), sensor.predict_weights(x))
    # a sensor saved before views and temperature existed (format 1): one view, temperature 1
    config = json.loads((out / "sensor_config.json").read_text())
    assert config["format_version"] == 2  # readers of 2 rebuild a sensor without statistics
    del config["views"], config["temperature"]
    (out / "sensor_config.json").write_text(json.dumps(config | {"format_version": 1}))
    old = pa.load_adapter(build("nafnet"), out).sensor
    assert (old.views, old.temperature) == ("none", 1.0)


def test_image_statistics_move_with_each_degradation():
    """Each statistic moves the way the physics of its degradation says, on a held-out photo."""
    photo = sample_images("test")[2][None, :, :128, :128]

    def statistics(degradation):
        x = degrade(photo, degradation, generator=torch.Generator().manual_seed(0))
        return dict(zip(SENSOR_STATISTICS, image_statistics(x)[0].tolist(), strict=True))

    clean = statistics("clean")
    noise, rain, haze = statistics("noise"), statistics("rain"), statistics("haze")
    blur, dark = statistics("blur"), statistics("lowlight")
    assert noise["noise level"] > clean["noise level"] + 2  # logarithms
    assert blur["noise level"] < clean["noise level"]

    def fine_to_coarse(s):
        return s["gradient, 1x"] - s["gradient, 4x"]

    assert fine_to_coarse(blur) < fine_to_coarse(clean) - 0.1
    assert rain["across / along columns"] > clean["across / along columns"] + 0.5
    assert rain["bright / dark detail"] > clean["bright / dark detail"] + 0.5
    assert haze["dark channel"] > clean["dark channel"] + 1
    assert haze["saturation"] < clean["saturation"] - 0.2
    assert dark["brightness"] < clean["brightness"] - 1
    assert dark["dark share"] > clean["dark share"] + 0.5
    assert dark["highlight"] < clean["highlight"] - 1


def test_edge_sharpness_falls_under_blur_also_on_a_soft_photo():
    """Motion blur lowers every sharpness column of each held-out photo (each edge spread over
    the blur's length), and of the photo softened first too: a soft photo that needs nothing
    still reads sharper than its blurred draws, the split the cue is for."""
    for photo in sample_images("test"):
        crop = photo[None, :, :128, :128]
        soft = kornia.filters.gaussian_blur2d(crop, (7, 7), (1.0, 1.0), border_type="reflect")
        for x, margin in ((crop, 0.25), (soft, 0.05)):
            blurred = degrade(x, "blur", generator=torch.Generator().manual_seed(0), length=9.0)
            assert (edge_sharpness(blurred) < edge_sharpness(x) - margin).all()  # logarithms
    # a flat image has no edges: finite, and below any photo's
    flat = edge_sharpness(torch.full((1, 3, 16, 16), 0.5))
    assert torch.isfinite(flat).all() and (flat < edge_sharpness(crop)).all()
    assert flat.shape == (1, len(SENSOR_SHARPNESS))


def test_statistics_and_sharpness_both_add_their_logits():
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY, statistics=True, sharpness=True)
    sensor.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        learned = sensor.network((x - sensor.mean) / sensor.std)
        expected = learned + sensor.statistics(x) + sensor.sharpness(x)
        assert torch.allclose(sensor.classify(x), expected)


def test_window_maximum_is_the_square_pooling():
    """The sharpness window's maximum, from shifted copies, is the square max pooling's."""
    x = torch.rand(2, 1, 37, 20)
    pad = SHARPNESS_WINDOW // 2
    assert torch.equal(_window_max(x), F.max_pool2d(x, SHARPNESS_WINDOW, stride=1, padding=pad))


@pytest.mark.parametrize(("option", "version"), [("statistics", 3), ("sharpness", 5)])
def test_a_head_adds_trained_logits_and_is_saved(tmp_path, option, version):
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY, **{option: True})
    other = "sharpness" if option == "statistics" else "statistics"
    assert getattr(sensor, other) is None
    head = getattr(sensor, option)
    before = copy.deepcopy(head.state_dict())
    train_sensor(sensor, toy_set(sample_images("train"), seed=0), steps=2, progress=False)
    assert any(not torch.equal(v, head.state_dict()[k]) for k, v in before.items())
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        learned = sensor.network((x - sensor.mean) / sensor.std)
        assert torch.allclose(sensor.classify(x), learned + head(x))
        assert not torch.allclose(sensor.classify(x), learned, atol=1e-3)
    out = with_sensor(sensor).eval().save_adapter(tmp_path / "adapter")
    saved = json.loads((out / "sensor_config.json").read_text())
    assert saved[option] is True and saved["format_version"] == version
    loaded = pa.load_adapter(build("nafnet"), out).sensor
    assert getattr(loaded, option) is not None and getattr(loaded, other) is None
    x = torch.rand(2, 3, 45, 38)
    with torch.no_grad():
        assert torch.equal(loaded(x), sensor(x))
    # a sensor saved before the option existed has no such head
    assert (
        getattr(pa.DegradationSensor.from_config({**sensor.config(), option: False}), option)
        is None
    )
    old = {k: v for k, v in sensor.config().items() if k != option}
    assert getattr(pa.DegradationSensor.from_config(old), option) is None


def test_statistics_of_a_single_crop_in_training_use_the_running_normalisation():
    """Batch norm has no batch statistics for one crop: the head then normalises as in eval."""
    torch.manual_seed(0)
    head = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY, statistics=True).statistics
    head.norm.running_mean.uniform_(-3, 0)
    head.norm.running_var.uniform_(0.5, 2)
    crop = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(head.train()(crop), head.eval()(crop))


def test_zoom_downscales_antialiased_and_keeps_at_least_a_pixel():
    x = torch.rand(2, 3, 65, 40)
    assert zoom(x, 1.0) is x
    half = zoom(x, 0.5)
    assert half.shape == (2, 3, 32, 20) and half.min() >= 0 and half.max() <= 1
    # a checkerboard averages out (antialiased), instead of aliasing to one of its colours
    board = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2).float()
    inner = zoom(board.expand(1, 3, 64, 64), 0.5)[..., 1:-1, 1:-1]
    torch.testing.assert_close(inner, torch.full_like(inner, 0.5))
    assert zoom(torch.rand(1, 3, 1, 3), 0.25).shape == (1, 3, 1, 1)


def test_scale_weights_mix_the_mean_logits_of_zoomed_copies():
    """{1: 1, 0.5: 0.5}: two thirds of the native crops' mean logits and one third of those of
    the half-scale copy's crops, which the sensor judges like any image."""
    torch.manual_seed(0)
    sensor = pa.DegradationSensor(**TINY, crops_per_side=2).eval()
    assert sensor.scale_weights == dict(DEFAULT_SENSOR_SCALE_WEIGHTS) == {1.0: 1.0}
    x = torch.rand(2, 3, 90, 61)
    with torch.no_grad():
        native, half = sensor(x), sensor(zoom(x, 0.5))
        sensor.scale_weights = {1.0: 1.0, 0.5: 0.5}
        mixed = sensor(x)
        torch.testing.assert_close(mixed, (2 * native + half) / 3, atol=1e-5, rtol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the scales are summed in float32
            assert sensor(x).dtype == torch.float32
        assert (mixed - native).abs().max() > 1e-3
        torch.testing.assert_close(
            sensor.predict_weights(x), sensor.weights_from_logits(mixed), atol=0, rtol=0
        )
        sensor.scale_weights = {0.5: 3}  # the half-scale copy alone
        torch.testing.assert_close(sensor(x), half, atol=1e-5, rtol=1e-5)
        # tiny images: the zoomed copy is mirrored out to a crop like any short image
        assert sensor(torch.rand(1, 3, 1, 1)).shape == (1, 5)
    assert "scale_weights={0.5: 3.0}" in repr(sensor)
    copy_of = sensor.scale_weights
    copy_of[1.0] = 1.0  # a copy: the sensor's own stay as set
    assert sensor.scale_weights == {0.5: 3.0}


@pytest.mark.parametrize(
    "weights",
    [
        {},
        {1.0: 1.0, 0.5: 1, 0.25: 1, 0.75: 1, 0.6: 1},
        {2.0: 1.0},
        {0.01: 1.0},
        {1.0: 0},
        {1.0: -1.0},
        {1.0: float("nan")},
        {True: 1.0},
        {1.0: "1"},
        [(1.0, 1.0)],
        "1.0",
    ],
)
def test_bad_scale_weights_are_refused_and_leave_the_sensor_as_it_was(weights):
    message = r"scale_weights must map 1 to 4 zoom factors from 0.0625 to 1 to positive weights"
    with pytest.raises(ValueError, match=message):
        pa.DegradationSensor(**TINY, scale_weights=weights)
    sensor = pa.DegradationSensor(**TINY, scale_weights={1.0: 2.0, 0.5: 1.0})
    with pytest.raises(ValueError, match=message):
        sensor.scale_weights = weights
    assert sensor.scale_weights == {1.0: 2.0, 0.5: 1.0}


def test_saved_sensor_carries_its_scale_weights(toy_sensor, tmp_path):
    sensor = copy.deepcopy(toy_sensor[0])
    sensor.scale_weights = {1.0: 1.0, 0.5: 0.5}
    out = with_sensor(sensor).eval().save_adapter(tmp_path / "adapter")
    config = json.loads((out / "sensor_config.json").read_text())
    # a reader of format 3 would judge the native crops alone: zoomed copies need 4
    assert config["scale_weights"] == [[1.0, 1.0], [0.5, 0.5]]
    assert config["format_version"] == SENSOR_FEATURE_VERSIONS["scale_weights"] == 4
    loaded = pa.load_adapter(build("nafnet"), out).sensor
    assert loaded.scale_weights == {1.0: 1.0, 0.5: 0.5}
    x = torch.rand(2, 3, 70, 45)
    with torch.no_grad():
        assert torch.equal(loaded(x), sensor(x))
    # the native scale alone stays readable by format 2 readers; a file without the key
    # (written before it existed) loads with the native scale alone
    sensor.scale_weights = {1.0: 1.0}
    out = with_sensor(sensor).eval().save_adapter(tmp_path / "native")
    assert json.loads((out / "sensor_config.json").read_text())["format_version"] == 2
    old = {k: v for k, v in sensor.config().items() if k != "scale_weights"}
    assert pa.DegradationSensor.from_config(old).scale_weights == {1.0: 1.0}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({"1.0": 1.0}, r"a list of \[scale, weight\] pairs, got \{'1.0': 1.0\}"),
        ([[1.0]], r"a list of \[scale, weight\] pairs"),
        ([["1", 1.0]], r"a list of \[scale, weight\] pairs"),
        ([[1.0, 1.0], [0.5, 1.0], [1.0, 2.0]], r"names the scale 1.0 twice; give each scale once"),
        ([[3.0, 1.0]], r"scale_weights must map 1 to 4 zoom factors"),
    ],
)
def test_malformed_scale_weights_in_a_sensor_file_are_refused(tmp_path, pairs, message, untouched):
    out = with_sensor(pa.DegradationSensor(TOY_DEGRADATIONS, **TINY)).save_adapter(tmp_path / "a")
    config = json.loads((out / "sensor_config.json").read_text())
    (out / "sensor_config.json").write_text(json.dumps(config | {"scale_weights": pairs}))
    backbone = build("nafnet")
    with untouched(backbone), pytest.raises(ValueError, match="is malformed: .*" + message):
        pa.load_adapter(backbone, out)


def test_a_grey_share_makes_that_share_of_the_crops_monochrome():
    """``grey=1`` drops every crop's colours (the channels equal), ``grey=0`` none, and the
    crops are drawn as without the option (the same generator draws); reproducible."""
    clean = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))

    def recolour(grey, seed=1):
        return _Recoloured(keep, grey)(clean, generator=torch.Generator().manual_seed(seed))

    monochrome = recolour(1.0)
    assert torch.allclose(monochrome, monochrome[:, :1].expand_as(monochrome), atol=1e-6)
    assert torch.equal(recolour(0.0), _Recoloured(keep)(clean, torch.Generator().manual_seed(1)))
    assert not torch.allclose(recolour(0.0)[:, 0], recolour(0.0)[:, 1])
    half = recolour(0.5, seed=3)
    grey = (half - half[:, :1]).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert 0 < grey.sum() < len(half) and torch.equal(half, recolour(0.5, seed=3))


def test_soft_crops_lose_fine_detail_isotropically_and_keep_their_picture():
    """A softened crop has less fine detail in both directions than its source (a Gaussian, not
    a streak), is still the same picture, and ``share`` picks which crops; reproducible."""
    clean = sample_images("train")[0][None, :, :64, :64].expand(16, -1, -1, -1).contiguous()
    soft = _Softened(keep, 1.0)(clean, generator=torch.Generator().manual_seed(0))
    assert torch.equal(soft, _Softened(keep, 1.0)(clean, torch.Generator().manual_seed(0)))

    def detail(x, dim):
        return x.diff(dim=dim).abs().mean().item()

    for dim in (-1, -2):
        assert detail(soft, dim) < 0.9 * detail(clean, dim)
    assert torch.corrcoef(torch.stack([soft[0].flatten(), clean[0].flatten()]))[0, 1] > 0.9
    assert torch.equal(_Softened(keep, 0.0)(clean, generator=torch.Generator()), clean)
    some = _Softened(keep, 0.5)(clean, generator=torch.Generator().manual_seed(2))
    kept = (some == clean).flatten(1).all(dim=1)
    assert 0 < kept.sum() < len(clean)


def test_a_wider_softness_range_softens_more():
    """``sigma`` is the range the Gaussian's standard deviation is drawn from: a crop softened
    at 3 px keeps less fine detail than one at 1 px, and a range draws between its ends."""
    clean = sample_images("train")[0][None, :, :64, :64].expand(8, -1, -1, -1).contiguous()

    def detail(sigma):
        soft = _Softened(keep, 1.0, sigma)(clean, generator=torch.Generator().manual_seed(0))
        return soft.diff(dim=-1).abs().flatten(1).mean(dim=1)

    one, three, between = detail((1.0, 1.0)), detail((3.0, 3.0)), detail((1.0, 3.0))
    assert (three < 0.8 * one).all()
    assert (between < one + 1e-6).all() and (between > three - 1e-6).all()
    assert between.unique().numel() > 1
    # a crop smaller than the kernel: softened within its reflected border, same shape
    tiny = clean[:, :, :8, :8]
    small = _Softened(keep, 1.0, (4.0, 4.0))(tiny, generator=torch.Generator().manual_seed(0))
    assert small.shape == tiny.shape and small.isfinite().all()
    assert small.diff(dim=-1).abs().mean() < tiny.diff(dim=-1).abs().mean()


def test_synthetic_pages_are_dark_strokes_on_light_paper_the_same_for_a_seed():
    pages = synthetic_pages(2, size=128, seed=3)
    assert len(pages) == 2 and all(p.shape == (3, 128, 128) for p in pages)
    assert all(torch.equal(a, b) for a, b in zip(pages, synthetic_pages(2, 128, 3), strict=True))
    assert not torch.equal(pages[0], synthetic_pages(1, 128, 4)[0])
    for page in pages:
        assert page.min() >= 0 and page.max() <= 1
        assert page.median() > 0.7 and page.amin() < 0.4  # light paper, dark ink


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "count must be a positive integer, got 0"),
        ({"count": 1.5}, "count must be a positive integer, got 1.5"),
        ({"count": 1, "size": 32}, "size must be an integer of at least 64 pixels, got 32"),
    ],
)
def test_synthetic_pages_refuse_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_pages(**kwargs)


def test_grey_soft_and_pages_shape_the_crops_of_an_image_source():
    """``pages`` adds rendered pages to the photos, each as likely as a photo; ``grey`` and
    ``soft`` wrap every degradation (softened, then recoloured, then degraded); training
    with them moves the weights."""
    sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY)
    plain = _dataset(sensor, None, 0, True, 0, (1.0,), 0, FAINT_RANGES, 1.0, 1)
    data = _dataset(sensor, None, 0, True, 0, (1.0,), 0, FAINT_RANGES, 1.0, 1, 0.5, 2, 0.25)
    assert len(data.sources) == len(plain.sources) + 2
    assert torch.equal(data.sources[-1], synthetic_pages(2, seed=0)[1])
    softened = data._functions[0]
    assert isinstance(softened, _Softened) and softened.share == 0.25
    assert isinstance(softened.degradation, _Recoloured) and softened.degradation.grey == 0.5
    assert not isinstance(plain._functions[0], _Softened) and plain._functions[0].grey == 0
    wide = _dataset(sensor, None, 0, True, 0, (1.0,), 0, FAINT_RANGES, 1.0, 1, 0, 0, 1, (1, 3))
    assert data._functions[0].sigma == SOFT_SIGMA and wide._functions[0].sigma == (1, 3)
    before = {k: v.clone() for k, v in sensor.state_dict().items()}
    train_sensor(sensor, steps=2, batch_size=2, grey=0.5, soft=0.5, pages=1, progress=False)
    assert any(not torch.equal(v, sensor.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grey": 1.5}, r"grey must be a share in \[0, 1\], got 1.5"),
        ({"grey": 0.5, "recolour": False}, "grey=0.5 is a colour change of the crops"),
        ({"soft": -0.1}, r"soft must be a share in \[0, 1\], got -0.1"),
        ({"grey": None}, r"grey must be a share in \[0, 1\], got None"),
        ({"soft": True}, r"soft must be a share in \[0, 1\], got True"),
        ({"pages": 9}, "pages must be an integer from 0 to 8, got 9"),
        ({"pages": True}, "pages must be an integer from 0 to 8, got True"),
        (
            {"soft_sigma": (0, 1)},
            r"soft_sigma must be a range \(low, high\) of pixels with 0 < low",
        ),
        ({"soft_sigma": (2, 1)}, r"<= high <= 4, got \(2, 1\)"),
        ({"soft_sigma": (1, 5)}, r"<= high <= 4, got \(1, 5\)"),
        ({"soft_sigma": (1,)}, r"<= high <= 4, got \(1,\)"),
        ({"soft_sigma": (True, 2)}, r"<= high <= 4, got \(True, 2\)"),
        ({"soft_sigma": "12"}, r"<= high <= 4, got '12'"),
        ({"soft_sigma": (1, 3)}, r"soft_sigma=\(1, 3\) is the softening of soft's share"),
        ({"clean_share": 0.3}, r"clean_share must be a share from 1/2 .* to 0.5, got 0.3"),
        ({"clean_share": True}, "clean_share must be a share from 1/2 .* got True"),
    ],
)
def test_train_sensor_refuses_bad_content_options(untouched, kwargs, message):
    sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY)
    with untouched(sensor), pytest.raises(ValueError, match=message):
        train_sensor(sensor, steps=1, progress=False, **kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"grey": 0.5}, {"soft": 0.5}, {"pages": 1}, {"clean_share": 0.5}]
)
def test_train_sensor_refuses_content_options_for_a_dataset(untouched, kwargs):
    sensor = pa.DegradationSensor(("haze", "clean"), **TINY)
    crops = torch.rand(4, 3, 32, 32)
    data = torch.utils.data.TensorDataset(crops, crops, torch.zeros(4, dtype=torch.long))
    with untouched(sensor), pytest.raises(ValueError, match="a Dataset's items come made"):
        train_sensor(sensor, data, steps=1, batch_size=2, progress=False, **kwargs)


@pytest.mark.parametrize(
    ("options", "version"),
    [
        ({}, 2),
        ({"statistics": True}, 3),
        ({"scale_weights": [[1.0, 1.0], [0.5, 1.0]]}, 4),
        ({"statistics": True, "scale_weights": [[1.0, 1.0], [0.5, 1.0]]}, 4),
        ({"scale_weights": [[1.0, 1.0]]}, 2),
        ({"sharpness": True}, 5),
        ({"sharpness": False, "statistics": True}, 3),
    ],
)
def test_a_sensor_file_gets_the_oldest_version_that_reads_it_whole(tmp_path, options, version):
    """The version written is the newest of those that first saved each feature the sensor
    uses (``SENSOR_FEATURE_VERSIONS``), so older readers still take the files they can read."""
    write_sensor(tmp_path, ({"degradations": ["clean"], **options}, {"w": torch.zeros(1)}))
    written = json.loads((tmp_path / "sensor_config.json").read_text())["format_version"]
    assert written == version
    assert SENSOR_FORMAT_VERSION == max(SENSOR_FEATURE_VERSIONS.values()) == 5


def test_clean_offset_shifts_the_trained_sensors_clean_logit_and_nothing_else():
    """The same training with ``clean_offset=-0.5``: every photo's clean logit lower by 0.5
    (the mean over crops keeps the shift), the other logits equal; saved with the weights."""

    def trained(offset):
        torch.manual_seed(0)
        sensor = pa.DegradationSensor(TOY_DEGRADATIONS, **TINY)
        return train_sensor(sensor, steps=2, batch_size=2, clean_offset=offset, progress=False)

    x = torch.rand(2, 3, 80, 72)
    plain, shifted = trained(0.0)(x), trained(-0.5)(x)
    clean = TOY_DEGRADATIONS.index("clean")
    expected = plain.clone()
    expected[:, clean] -= 0.5
    torch.testing.assert_close(shifted, expected)


@pytest.mark.parametrize(
    ("degradations", "offset", "message"),
    [
        (TOY_DEGRADATIONS, float("nan"), "clean_offset must be a finite number of logits, got nan"),
        (TOY_DEGRADATIONS, True, "clean_offset must be a finite number of logits, got True"),
        (TOY_DEGRADATIONS, "-1", "clean_offset must be a finite number of logits, got '-1'"),
        (("noise", "rain"), -0.5, r"shifts the 'clean' logit, which this sensor lacks"),
    ],
)
def test_train_sensor_refuses_a_bad_clean_offset(untouched, degradations, offset, message):
    sensor = pa.DegradationSensor(degradations, **TINY)
    with untouched(sensor), pytest.raises(ValueError, match=message):
        train_sensor(sensor, steps=1, progress=False, clean_offset=offset)


def test_a_clean_share_adds_the_clean_crops_of_degraded_items():
    """``clean_share`` adds as many items as make that share of an epoch clean, each the clean
    crop of a different degraded item (never of a clean one), labelled clean; training with it
    moves the weights."""
    classes = ("noise", "rain", "clean")
    assert _extra_clean(classes, 96, None) == 0
    assert _extra_clean(classes, 96, 1 / 3) == 0
    assert _extra_clean(classes, 96, 0.5) == 32  # 32 + 32 clean of 128
    sensor = pa.DegradationSensor(classes, **TINY)
    plain = _dataset(sensor, None, 0, True, 0, (1.0,), 0, FAINT_RANGES, 1.0, 1)
    data = _dataset(sensor, None, 0, True, 0, (1.0,), 0, FAINT_RANGES, 1.0, 1, extra_clean=64)
    assert isinstance(data, _ExtraClean) and len(data) == len(plain) + 64
    sources = [data.degraded[k * len(data.degraded) // 64] for k in range(64)]
    assert len(set(sources)) == 64 and all(i % 3 != 2 for i in sources)
    degraded, clean, label = data[len(plain) + 5]
    assert label == 2 and torch.equal(degraded, clean)
    assert torch.equal(clean, plain[sources[5]][1]) and torch.equal(data[7][0], plain[7][0])
    before = {k: v.clone() for k, v in sensor.state_dict().items()}
    train_sensor(sensor, steps=2, batch_size=2, clean_share=0.5, progress=False)
    assert any(not torch.equal(v, sensor.state_dict()[k]) for k, v in before.items())


def test_train_sensor_refuses_a_clean_share_without_a_clean_class(untouched):
    sensor = pa.DegradationSensor(("noise", "rain"), **TINY)
    with untouched(sensor), pytest.raises(ValueError, match="clean_share is the share of 'clean'"):
        train_sensor(sensor, steps=1, clean_share=0.5, progress=False)
