"""PSNR / SSIM agree with scikit-image, per image, on RGB and on the BT.601 Y channel."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pip_adapter.data import degrade, sample_images
from pip_adapter.metrics import psnr, rgb_to_y, ssim


def skimage_scores(a: torch.Tensor, b: torch.Tensor, y_channel: bool) -> tuple[float, float]:
    x = a.permute(1, 2, 0).double().numpy()
    y = b.permute(1, 2, 0).double().numpy()
    if y_channel:
        x, y = rgb2ycbcr(x)[..., 0] / 255.0, rgb2ycbcr(y)[..., 0] / 255.0
        return peak_signal_noise_ratio(x, y, data_range=1), structural_similarity(
            x, y, data_range=1
        )
    return peak_signal_noise_ratio(x, y, data_range=1), structural_similarity(
        x, y, data_range=1, channel_axis=2
    )


@pytest.fixture(scope="module")
def pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of photo crops and their degraded versions, one per degradation."""
    photo = sample_images("test")[0][:, :61, :83]
    clean = photo.unsqueeze(0).repeat(5, 1, 1, 1)
    degraded = torch.cat(
        [
            degrade(clean[i : i + 1], kind, generator=torch.Generator().manual_seed(i))
            for i, kind in enumerate(("noise", "rain", "haze", "blur", "lowlight"))
        ]
    )
    return clean, degraded


@pytest.mark.parametrize("y_channel", [False, True])
def test_agrees_with_scikit_image_per_image(pairs, y_channel):
    clean, degraded = pairs
    ours_psnr = psnr(degraded, clean, y_channel=y_channel)
    ours_ssim = ssim(degraded, clean, y_channel=y_channel)
    assert ours_psnr.shape == ours_ssim.shape == (5,)
    for i in range(5):
        ref_psnr, ref_ssim = skimage_scores(degraded[i], clean[i], y_channel)
        assert ours_psnr[i].item() == pytest.approx(ref_psnr, abs=1e-3)
        assert ours_ssim[i].item() == pytest.approx(ref_ssim, abs=1e-3)
    assert len(set(ours_ssim.tolist())) == 5  # really per image


@pytest.mark.parametrize("shape", [(3, 7, 7), (3, 8, 31), (1, 3, 33, 20)])
def test_agrees_on_random_images_of_odd_sizes(shape):
    g = torch.Generator().manual_seed(sum(shape))
    a = torch.rand(shape, generator=g)
    b = (a + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)
    ref_psnr, ref_ssim = skimage_scores(a.reshape(3, *shape[-2:]), b.reshape(3, *shape[-2:]), False)
    assert psnr(a, b).reshape(-1)[0].item() == pytest.approx(ref_psnr, abs=1e-3)
    assert ssim(a, b).reshape(-1)[0].item() == pytest.approx(ref_ssim, abs=1e-3)


def test_unbatched_identical_and_symmetric():
    a = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    b = (a * 0.9).clamp(0, 1)
    assert psnr(a, b).shape == () and ssim(a, b).shape == ()
    assert psnr(a, a).item() == float("inf")
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, b).item() == pytest.approx(ssim(b, a).item(), abs=1e-7)
    assert psnr(a.double(), b.double()).dtype == torch.float32


def test_y_channel_is_bt601_luma():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 2, 2), 235 / 255), atol=1e-4)
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 2, 2), 16 / 255))
    rgb = np.random.default_rng(0).random((4, 5, 3))
    expected = rgb2ycbcr(rgb)[..., 0] / 255
    ours = rgb_to_y(torch.from_numpy(rgb).permute(2, 0, 1))[0].numpy()
    assert np.allclose(ours, expected, atol=1e-6)


def test_errors():
    a = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, a[:1])
    with pytest.raises(ValueError, match="B×C×H×W"):
        ssim(a[0, 0], a[0, 0])
    with pytest.raises(ValueError, match="at least 7×7"):
        ssim(a[..., :5, :], a[..., :5, :])
    with pytest.raises(ValueError, match="3-channel"):
        psnr(a[:, :1], a[:, :1], y_channel=True)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        ssim(a.numpy(), a)
