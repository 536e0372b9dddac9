"""The synthetic degradations: contract (shape, range, seeding, errors) and physics."""

import math

import numpy as np
import pytest
import torch
from kornia.filters import spatial_gradient

from pip_adapter.data import (
    SYNTHETIC_DEGRADATIONS,
    AtmosphericHaze,
    Compose,
    GaussianNoise,
    JpegCompression,
    LowLight,
    MotionBlur,
    NoDegradation,
    RainStreaks,
    SnowFall,
    SyntheticAllInOne,
    atmospheric_haze,
    build_degradation,
    degrade,
    gaussian_noise,
    jpeg_compression,
    low_light,
    motion_blur,
    rain_streaks,
    snowfall,
    synthetic_depth,
)
from pip_adapter.data.degradations import motion_kernels
from pip_adapter.metrics import psnr

PAPER_KINDS = ("noise", "rain", "haze", "blur", "lowlight")
KINDS = (*PAPER_KINDS, "jpeg", "snow")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Two 64×64 textured images in [0, 1]."""
    g = gen(123)
    coarse = torch.rand(2, 3, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear")
    return (0.7 * smooth + 0.3 * torch.rand(2, 3, 64, 64, generator=g)).clamp(0, 1)


def streak_orientation(layer: torch.Tensor) -> tuple[float, float]:
    """Dominant line direction (degrees from the x axis, y down) and coherence in [0, 1]."""
    g = spatial_gradient(layer[None, None], mode="sobel")[0, 0]
    jxx, jyy, jxy = (g[0] ** 2).sum(), (g[1] ** 2).sum(), (g[0] * g[1]).sum()
    gradient_angle = 0.5 * math.atan2(2 * jxy, jxx - jyy)
    coherence = math.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy)
    return (math.degrees(gradient_angle) + 90) % 180, float(coherence)


def test_registry_holds_the_paper_five_then_jpeg_snow_and_clean():
    import pip_adapter as pa

    names = SYNTHETIC_DEGRADATIONS
    assert names == (*KINDS, "clean")
    assert pa.DEFAULT_DEGRADATIONS == PAPER_KINDS


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", DEVICES)
def test_contract_shape_dtype_device_range(images, kind, device):
    x = images.to(device)
    y = degrade(x, kind, generator=gen())
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.equal(y, x)


@pytest.mark.parametrize("kind", KINDS)
def test_reproducible_for_a_generator_and_different_across_seeds(images, kind):
    first = degrade(images, kind, generator=gen(7))
    assert torch.equal(first, degrade(images, kind, generator=gen(7)))
    assert not torch.equal(first, degrade(images, kind, generator=gen(8)))


@pytest.mark.parametrize("kind", KINDS)
def test_global_rng_used_without_generator(images, kind):
    torch.manual_seed(3)
    first = degrade(images, kind)
    torch.manual_seed(3)
    assert torch.equal(first, degrade(images, kind))


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_input_and_other_dtypes(images, kind):
    single = degrade(images[0], kind, generator=gen())
    assert single.shape == images[0].shape
    double = degrade(images.double(), kind, generator=gen())
    assert double.dtype == torch.float64
    assert torch.allclose(double.float(), degrade(images, kind, generator=gen()), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_cpu_generator_gives_the_same_result_on_gpu(images, kind):
    cpu = degrade(images, kind, generator=gen(5))
    gpu = degrade(images.cuda(), kind, generator=gen(5))
    assert torch.allclose(gpu.cpu(), cpu, atol=1 / 255 + 1e-5)  # lowlight: one 8-bit level


@pytest.mark.parametrize("name", SYNTHETIC_DEGRADATIONS)
def test_any_image_size_from_one_pixel_works(name):
    for height, width in [(1, 1), (1, 7), (5, 5), (17, 3), (2, 40)]:
        x = torch.rand(2, 3, height, width, generator=gen(height * 100 + width))
        y = degrade(x, name, generator=gen(1))
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        assert torch.equal(y, degrade(x, name, generator=gen(1)))


# ---- noise ---------------------------------------------------------------------------------


def test_noise_std_matches_sigma_on_mid_grey():
    grey = torch.full((2, 3, 96, 96), 0.5)
    noisy = gaussian_noise(grey, sigma=25, generator=gen())
    residual = noisy - torch.round(grey * 255) / 255
    assert residual.std().item() == pytest.approx(25 / 255, rel=0.03)
    assert residual.mean().abs().item() < 0.002


def test_noise_quantises_the_clean_image_first():
    clean = torch.full((1, 3, 64, 64), 0.5 + 0.3 / 255)  # between two 8-bit levels
    noisy = gaussian_noise(clean, sigma=1, generator=gen())
    assert noisy.mean().item() == pytest.approx(128 / 255, abs=2e-4)
    raw = gaussian_noise(clean, sigma=1, quantize=False, generator=gen())
    assert raw.mean().item() == pytest.approx(clean.mean().item(), abs=2e-4)


def test_noise_sampled_sigma_is_one_of_the_benchmark_levels():
    grey = torch.full((24, 3, 48, 48), 0.5)
    stds = (gaussian_noise(grey, generator=gen()) - 128 / 255).flatten(1).std(dim=1) * 255
    nearest = torch.tensor([15.0, 25.0, 50.0])[
        (stds[:, None] - torch.tensor([15.0, 25, 50])).abs().argmin(1)
    ]
    assert torch.allclose(stds, nearest, rtol=0.06)
    assert len(set(nearest.tolist())) == 3


def test_noise_is_clipped():
    white = torch.ones(1, 3, 32, 32)
    noisy = gaussian_noise(white, sigma=50, generator=gen())
    assert noisy.max() == 1 and (noisy == 1).float().mean() > 0.4


# ---- rain ----------------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [-25.0, 0.0, 20.0])
def test_rain_adds_sparse_grey_streaks_with_one_direction(angle):
    clean = torch.full((1, 3, 128, 128), 0.3)
    layer = rain_streaks(clean, angle=angle, generator=gen(1)) - clean
    assert layer.min() >= 0  # additive, O = B + S
    assert torch.equal(layer[:, 0], layer[:, 1]) and torch.equal(layer[:, 1], layer[:, 2])
    covered = (layer[0, 0] > 0.05).float().mean().item()
    assert 0.02 < covered < 0.5  # sparse
    assert layer.max() > 0.4  # bright
    direction, coherence = streak_orientation(layer[0, 0])
    assert coherence > 0.8  # one dominant direction
    # positive angles lean to the right going down: direction (sin a, cos a) in (x, y-down)
    assert abs(direction - (90 - angle)) < 5


def test_rain_parameters_control_the_streaks():
    clean = torch.zeros(1, 3, 96, 96)
    sparse = rain_streaks(clean, density=0.001, generator=gen())
    dense = rain_streaks(clean, density=0.01, generator=gen())
    assert (dense > 0.05).float().mean() > 3 * (sparse > 0.05).float().mean()
    faint = rain_streaks(clean, intensity=0.2, length=20, generator=gen())
    strong = rain_streaks(clean, intensity=0.9, length=20, generator=gen())
    assert faint.max() <= 0.2 + 1e-6 and strong.max() > 0.6


# ---- haze ----------------------------------------------------------------------------------


def test_haze_follows_the_scattering_model_with_a_given_depth():
    clean = torch.rand(2, 3, 16, 16, generator=gen())
    depth = torch.linspace(0, 10, 16).view(16, 1).expand(16, 16)
    hazy = atmospheric_haze(clean, beta=0.1, airlight=0.9, depth=depth)
    t = torch.exp(-0.1 * depth)
    assert torch.allclose(hazy, clean * t + 0.9 * (1 - t), atol=1e-6)
    assert torch.equal(atmospheric_haze(clean, depth=torch.zeros(16, 16), generator=gen()), clean)


def test_haze_brightens_dark_scenes_darkens_white_and_lowers_contrast(images):
    dark = images * 0.3
    hazy = atmospheric_haze(dark, generator=gen())
    assert (hazy.mean(dim=(1, 2, 3)) > dark.mean(dim=(1, 2, 3)) + 0.05).all()

    def local_contrast(x: torch.Tensor) -> torch.Tensor:
        return (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))

    assert (local_contrast(hazy) < 0.9 * local_contrast(dark)).all()
    white = atmospheric_haze(torch.ones(1, 3, 32, 32), airlight=0.8, generator=gen())
    assert white.max() <= 1 and white.mean() < 0.97
    thin = atmospheric_haze(dark, beta=0.04, generator=gen(2))
    thick = atmospheric_haze(dark, beta=0.2, generator=gen(2))
    assert thick.mean() > thin.mean()


def test_synthetic_depth_is_smooth_far_at_the_top_and_in_range():
    depth = synthetic_depth(8, 64, 96, generator=gen())
    assert depth.shape == (8, 1, 64, 96)
    assert depth.min() >= 0 and depth.max() <= 10
    assert (depth[..., :8, :].mean(dim=(1, 2, 3)) > depth[..., -8:, :].mean(dim=(1, 2, 3))).all()
    step = (depth[..., 1:, :] - depth[..., :-1, :]).abs().max()
    assert step < 1.5  # no jumps: at most 15 % of the depth range between neighbours


def test_haze_depth_shape_is_checked(images):
    with pytest.raises(ValueError, match="depth must be shaped"):
        atmospheric_haze(images, depth=torch.ones(32, 32))
    with pytest.raises(ValueError, match="non-negative"):
        atmospheric_haze(images, depth=-torch.ones(64, 64))


# ---- blur ----------------------------------------------------------------------------------


def test_motion_kernels_are_normalised_paths_of_the_requested_length():
    lengths = torch.tensor([5.0, 11.0, 21.0])
    kernels = motion_kernels(lengths, torch.zeros(3), torch.zeros(3), gen())
    assert kernels.shape == (3, 25, 25)
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(3)) and kernels.min() >= 0
    straight = kernels[1]
    rows, cols = straight.nonzero(as_tuple=True)
    assert rows.unique().numel() == 1  # angle 0, no shake: a horizontal line
    assert cols.max() - cols.min() + 1 == 11
    shaky = motion_kernels(torch.tensor([21.0]), torch.zeros(1), torch.ones(1), gen())[0]
    assert shaky.nonzero(as_tuple=True)[0].unique().numel() > 2  # the path bends


def test_blur_removes_detail_and_keeps_flat_regions(images):
    blurred = motion_blur(images, length=15, generator=gen())
    detail = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    assert (blurred[..., :, 1:] - blurred[..., :, :-1]).abs().mean() < 0.6 * detail
    flat = torch.full((1, 3, 40, 40), 0.4)
    assert torch.allclose(motion_blur(flat, generator=gen()), flat, atol=1e-6)


def test_blur_direction_follows_angle():
    point = torch.zeros(1, 3, 41, 41)
    point[..., 20, 20] = 1.0
    vertical = motion_blur(point, length=9, angle=90, shake=0, generator=gen())[0, 0]
    rows, cols = vertical.nonzero(as_tuple=True)
    assert cols.unique().numel() == 1 and rows.max() - rows.min() + 1 == 9


# ---- low light -----------------------------------------------------------------------------


def test_lowlight_is_darker_noisy_and_8_bit(images):
    dark = low_light(images, generator=gen())
    assert (dark.mean(dim=(1, 2, 3)) < 0.45 * images.mean(dim=(1, 2, 3))).all()
    assert torch.equal(dark * 255, torch.round(dark * 255))
    grey = torch.full((1, 3, 64, 64), 0.6)
    few = low_light(grey, gamma=2, scale=0.3, photons=100, read_noise=0, generator=gen())
    many = low_light(grey, gamma=2, scale=0.3, photons=5000, read_noise=0, generator=gen())
    assert few.mean().item() == pytest.approx(0.3 * 0.36, abs=0.01)
    assert few.std() > 2 * many.std()
    black = low_light(torch.zeros(1, 3, 16, 16), read_noise=0, generator=gen())
    assert black.max() == 0


# ---- jpeg ----------------------------------------------------------------------------------


def blockiness(x: torch.Tensor) -> float:
    """Mean jump across the 8×8 JPEG block borders over the mean jump inside the blocks."""
    jumps = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(0, 1, 2))  # per column border
    border = torch.arange(jumps.numel()) % 8 == 7
    return (jumps[border].mean() / jumps[~border].mean()).item()


def test_jpeg_blocks_appear_and_psnr_drops_as_quality_falls():
    from pip_adapter.data import sample_images

    smooth = sample_images("test")[2][None, :, 100:228, 200:328]  # a real photo, no blocks
    assert blockiness(smooth) == pytest.approx(1.0, abs=0.1)
    qualities = (90, 40, 20, 10)
    scores = [psnr(jpeg_compression(smooth, quality=q), smooth).mean().item() for q in qualities]
    assert scores == sorted(scores, reverse=True) and scores[0] - scores[-1] > 5
    assert blockiness(jpeg_compression(smooth, quality=10)) > 1.5
    assert blockiness(jpeg_compression(smooth, quality=10)) > blockiness(
        jpeg_compression(smooth, quality=40)
    )


def test_jpeg_sampled_quality_is_a_whole_number_in_10_to_40_per_image(images):
    batch = torch.cat([images] * 4)
    sampled = jpeg_compression(batch, generator=gen(3))
    found = []
    for image, out in zip(batch, sampled, strict=True):
        matches = [q for q in range(1, 101) if torch.equal(jpeg_compression(image, quality=q), out)]
        assert matches and all(10 <= q <= 40 for q in matches)
        found.append(matches[0])
    assert len(set(found)) > 1  # each image draws its own quality


def test_jpeg_matches_pillow_and_refuses_bad_qualities(images):
    import io

    from PIL import Image

    pixels = (images[0] * 255).round().byte().permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=25)
    reference = torch.from_numpy(np.asarray(Image.open(buffer), dtype=np.float32) / 255)
    assert torch.equal(jpeg_compression(images[0], quality=25), reference.permute(2, 0, 1))
    with pytest.raises(ValueError, match="whole number"):
        degrade(images, "jpeg", quality=12.5)
    with pytest.raises(ValueError, match=r"quality must be in \[1.0, 100.0\]"):
        degrade(images, "jpeg", quality=0)
    with pytest.raises(ValueError, match="quality"):
        JpegCompression(quality=101)
    with pytest.raises(TypeError, match="number"):
        JpegCompression(quality="high")


# ---- snow ----------------------------------------------------------------------------------


def test_snow_without_flakes_or_veil_is_the_identity_and_the_veil_is_a_blend(images):
    assert torch.equal(snowfall(images, density=0, veil=0, generator=gen()), images)
    veiled = snowfall(images, density=0, veil=0.3, generator=gen())
    white = (veiled - 0.7 * images) / 0.3  # J·(1 − v) + A·v with one grey-white A per image
    assert torch.allclose(white, white.mean(dim=(1, 2, 3), keepdim=True), atol=1e-5)
    assert ((white.mean(dim=(1, 2, 3)) >= 0.85 - 1e-5) & (white.mean(dim=(1, 2, 3)) <= 1)).all()


def test_snow_brightens_and_density_adds_flakes(images):
    snowy = snowfall(images, generator=gen())
    assert (snowy.mean(dim=(1, 2, 3)) > images.mean(dim=(1, 2, 3)) + 0.02).all()
    dark = torch.full((1, 3, 128, 128), 0.2)

    def covered(density: float) -> float:
        flakes = snowfall(dark, density=density, veil=0, motion=0, generator=gen(1)) - dark
        assert torch.equal(flakes[:, 0], flakes[:, 1])  # grey-white flakes
        return (flakes[0, 0] > 0.3).float().mean().item()

    light, heavy = covered(0.004), covered(0.03)
    assert light > 0 and heavy > 3 * light
    small = snowfall(dark, density=0.01, size=1, veil=0, motion=0, generator=gen(1)) - dark
    large = snowfall(dark, density=0.01, size=8, veil=0, motion=0, generator=gen(1)) - dark
    assert (large > 0.3).float().mean() > 2 * (small > 0.3).float().mean()


@pytest.mark.parametrize("angle", [-20.0, 0.0, 25.0])
def test_snow_motion_smears_the_large_flakes_along_the_fall_direction(angle):
    dark = torch.zeros(1, 3, 160, 160)
    still = snowfall(dark, density=0.02, size=2, motion=0, veil=0, angle=angle, generator=gen())
    moving = snowfall(dark, density=0.02, size=2, motion=30, veil=0, angle=angle, generator=gen())
    _, still_coherence = streak_orientation(still[0, 0])
    direction, coherence = streak_orientation(moving[0, 0])
    assert still_coherence < 0.2 and coherence > still_coherence + 0.2
    assert abs(direction - (90 - angle)) < 8


def test_snow_parameters_are_checked(images):
    with pytest.raises(ValueError, match="density"):
        degrade(images, "snow", density=0.5)
    with pytest.raises(ValueError, match="veil"):
        SnowFall(veil=1.5)
    with pytest.raises(TypeError, match=r"unknown parameter.*valid: density, size, angle"):
        degrade(images, "snow", flakes=3)


def test_new_degradations_compose_and_train(images):
    g = gen(4)
    expected = degrade(degrade(images, "snow", generator=g), "noise", generator=g)
    assert torch.equal(degrade(images, "snow+noise", generator=gen(4)), expected)
    g = gen(4)
    expected = degrade(degrade(images, "blur", generator=g), "jpeg", generator=g, quality=20)
    assert torch.equal(
        degrade(images, "blur+jpeg", generator=gen(4), jpeg={"quality": 20}), expected
    )
    dataset = SyntheticAllInOne(
        list(images), ("jpeg", "snow"), patch_size=32, samples_per_degradation=2
    )
    for index in range(len(dataset)):
        degraded, clean, degradation_id = dataset[index]
        assert degraded.shape == clean.shape == (3, 32, 32) and degradation_id == index % 2
        assert not torch.equal(degraded, clean)


# ---- clean ---------------------------------------------------------------------------------


def test_clean_returns_an_unchanged_copy(images):
    out = degrade(images, "clean", generator=gen())
    assert torch.equal(out, images) and out.data_ptr() != images.data_ptr()
    out[0, 0, 0, 0] = 0.5 if images[0, 0, 0, 0] != 0.5 else 0.25
    assert not torch.equal(out, images)  # a copy: the caller's tensor is not touched
    for x in (images[0], images.double(), images[:1, :, :1, :7]):
        same = degrade(x, "clean")
        assert torch.equal(same, x) and same.dtype == x.dtype and same.shape == x.shape
    state = torch.random.get_rng_state()
    assert torch.equal(NoDegradation()(images), images)
    assert torch.equal(build_degradation("clean")(images, generator=gen()), images)
    assert torch.equal(torch.random.get_rng_state(), state)  # draws nothing
    assert torch.equal(
        degrade(images, "clean+noise", generator=gen(2)), degrade(images, "noise", generator=gen(2))
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        degrade(images * 3, "clean")
    with pytest.raises(TypeError, match="unknown parameter"):
        degrade(images, "clean", sigma=25)


def test_clean_is_a_class_of_the_training_and_evaluation_sets(images):
    dataset = SyntheticAllInOne(
        list(images), ("clean", "noise"), patch_size=32, samples_per_degradation=3
    )
    for index in range(len(dataset)):
        degraded, clean, degradation_id = dataset[index]
        assert torch.equal(degraded, clean) == (degradation_id == 0)
    from pip_adapter.data import build_eval_set

    evaluation = build_eval_set(list(images), ("clean", "rain"))
    assert torch.equal(evaluation.degraded[0], evaluation.clean[0])
    assert evaluation.names[0] == "image0/clean"


# ---- composites, modules, errors -----------------------------------------------------------


def test_composites_apply_in_order(images):
    g = gen(4)
    rain_then_noise = degrade(degrade(images, "rain", generator=g), "noise", generator=g)
    assert torch.equal(degrade(images, ["rain", "noise"], generator=gen(4)), rain_then_noise)
    assert torch.equal(degrade(images, "rain+noise", generator=gen(4)), rain_then_noise)
    assert not torch.equal(degrade(images, "noise+rain", generator=gen(4)), rain_then_noise)
    g = gen(4)
    expected = degrade(degrade(images, "rain", generator=g), "noise", generator=g, sigma=50)
    fixed = degrade(images, "rain+noise", generator=gen(4), noise={"sigma": 50})
    assert torch.equal(fixed, expected)


def test_modules_match_the_functions(images):
    cases = [
        (GaussianNoise(sigma=15), "noise", {"sigma": 15}),
        (RainStreaks(angle=10), "rain", {"angle": 10}),
        (AtmosphericHaze(beta=0.1), "haze", {"beta": 0.1}),
        (MotionBlur(length=9), "blur", {"length": 9}),
        (LowLight(gamma=2.0), "lowlight", {"gamma": 2.0}),
        (JpegCompression(quality=15), "jpeg", {"quality": 15}),
        (JpegCompression(), "jpeg", {}),
        (SnowFall(angle=10), "snow", {"angle": 10}),
    ]
    for module, kind, params in cases:
        expected = degrade(images, kind, generator=gen(), **params)
        assert torch.equal(module(images, generator=gen()), expected)
    for module, _, _ in cases:  # ordinary modules: no weights, nn.Module's API intact
        assert list(module.parameters()) == [] and module.to("cpu") is module
    pipeline = Compose(RainStreaks(), GaussianNoise(sigma=25))
    expected = degrade(images, "rain+noise", generator=gen(9), noise={"sigma": 25})
    assert torch.equal(pipeline(images, generator=gen(9)), expected)
    built = build_degradation("rain+noise", noise={"sigma": 25})
    assert torch.equal(built(images, generator=gen(9)), expected)


def test_unknown_name_lists_the_valid_degradations(images):
    with pytest.raises(ValueError, match="noise, rain, haze, blur, lowlight, jpeg, snow, clean"):
        degrade(images, "hail")
    with pytest.raises(ValueError, match="valid degradations"):
        degrade(images, ["rain", "fog"])
    with pytest.raises(ValueError, match="no degradation"):
        degrade(images, [])


def test_invalid_parameters_raise_clear_errors(images):
    with pytest.raises(ValueError, match=r"sigma must be in \(0, 255\].*got -1"):
        degrade(images, "noise", sigma=-1)
    with pytest.raises(ValueError, match="sigma"):
        degrade(images, "noise", sigma=0)
    with pytest.raises(TypeError, match=r"unknown parameter.*sigm.*valid: sigma, quantize"):
        degrade(images, "noise", sigm=25)
    with pytest.raises(TypeError, match="mapping per degradation"):
        degrade(images, "rain+noise", sigma=25)
    with pytest.raises(ValueError, match="beta"):
        AtmosphericHaze(beta=10)
    with pytest.raises(TypeError, match="unknown parameter"):
        build_degradation("haze", depth=torch.ones(4, 4))
    with pytest.raises(TypeError, match="number"):
        degrade(images, "rain", angle="steep")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.rand(2, 1, 16, 16), "B×3×H×W"),
        (torch.rand(16, 16), "B×3×H×W"),
        (torch.rand(1, 3, 16, 16) * 2, r"\[0, 1\]"),
        (torch.randint(0, 255, (1, 3, 16, 16)), "floating-point"),
    ],
)
def test_bad_images_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        degrade(bad, "noise")


def test_documented_parameter_ranges_match_the_code():
    from pathlib import Path

    from pip_adapter.data.degradations import blur, haze, jpeg, lowlight, rain, snow

    page = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    rows, kind = {}, None
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[2].startswith("`"):
            kind = cells[0] or kind
            rows[kind, cells[2].split("`")[1]] = f"{cells[3]} | {cells[4]}"
    tables = {
        "rain": rain.RAIN_PARAMETERS,
        "haze": haze.HAZE_PARAMETERS,
        "blur": blur.BLUR_PARAMETERS,
        "lowlight": lowlight.LOWLIGHT_PARAMETERS,
        "jpeg": jpeg.JPEG_PARAMETERS,
        "snow": snow.SNOW_PARAMETERS,
    }
    for kind, table in tables.items():
        for name, ((low, high), (lowest, highest)) in table.items():
            assert rows[kind, name] == f"[{low:g}, {high:g}] | [{lowest:g}, {highest:g}]"
