"""PSNR and SSIM per image, as image-restoration papers report them, and the blur effect of an
image alone (no reference).

Both match scikit-image (``peak_signal_noise_ratio`` and ``structural_similarity`` with its
defaults: 7×7 uniform window, sample covariance, ``K1=0.01``, ``K2=0.03``, mean over the region
where the window fits, channels averaged) for ``data_range=1``. ``y_channel=True`` evaluates
the luma of ITU-R BT.601 (``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``, MATLAB's
``rgb2ycbcr``), as deraining papers do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["blur_effect", "psnr", "rgb_to_y", "ssim"]

_BT601_WEIGHTS = (65.481, 128.553, 24.966)
_SSIM_WINDOW = 7
_K1, _K2 = 0.01, 0.03
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights (kornia's rgb_to_grayscale)
BLUR_EFFECT_SIZE = 11  # the re-blur filter's length (Crété-Roffet et al.; scikit-image's default)


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of an RGB image in [0, 1] (…×3×H×W -> …×1×H×W), in [16/255, 235/255]."""
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"rgb_to_y expects …×3×H×W RGB input, got shape {tuple(image.shape)}")
    weights = torch.tensor(_BT601_WEIGHTS, dtype=image.dtype, device=image.device)
    return (16.0 + torch.einsum("...chw,c->...hw", image, weights)).unsqueeze(-3) / 255.0


def _prepare(
    a: torch.Tensor, b: torch.Tensor, y_channel: bool, min_size: int = 1
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() not in (3, 4):
            raise ValueError(f"{name} must be B×C×H×W or C×H×W, got shape {tuple(t.shape)}")
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if y_channel and a.shape[-3] != 3:
        raise ValueError(f"y_channel=True needs RGB (3-channel) input, got {a.shape[-3]} channels")
    if min(a.shape[-2:]) < min_size:
        raise ValueError(
            f"images must be at least {min_size}×{min_size} pixels, got {tuple(a.shape[-2:])}"
        )
    unbatched = a.dim() == 3
    # float64 on CPU / CUDA for agreement with scikit-image; float32 where float64 is missing
    dtype = torch.float32 if a.device.type == "mps" else torch.float64
    a, b = a.to(dtype), b.to(dtype)
    if unbatched:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    return a, b, unbatched


def psnr(a: torch.Tensor, b: torch.Tensor, y_channel: bool = False) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for data range 1.

    ``a`` and ``b``: B×C×H×W (result shape ``(B,)``) or C×H×W (result 0-dim). Identical images
    give ``inf``. Returned as float32 on the inputs' device.
    """
    x, y, unbatched = _prepare(a, b, y_channel)
    mse = (x - y).square().flatten(1).mean(dim=1)
    out = (10 * torch.log10(1.0 / mse)).float()
    return out[0] if unbatched else out


def ssim(a: torch.Tensor, b: torch.Tensor, y_channel: bool = False) -> torch.Tensor:
    """Structural similarity per image (7×7 uniform window, data range 1), channels averaged.

    ``a`` and ``b``: B×C×H×W (result shape ``(B,)``) or C×H×W (result 0-dim), at least 7×7
    pixels. Returned as float32 on the inputs' device.
    """
    x, y, unbatched = _prepare(a, b, y_channel, min_size=_SSIM_WINDOW)
    # sample covariance over the window, as scikit-image's default use_sample_covariance=True
    n = _SSIM_WINDOW**2
    cov_norm = n / (n - 1)

    def mean(t: torch.Tensor) -> torch.Tensor:
        # stride-1 average pooling without padding = the "valid" region skimage averages over
        return F.avg_pool2d(t, _SSIM_WINDOW, stride=1)

    mu_x, mu_y = mean(x), mean(y)
    # centre each channel first so the variance differences do not cancel catastrophically
    x0 = x - x.mean(dim=(-2, -1), keepdim=True)
    y0 = y - y.mean(dim=(-2, -1), keepdim=True)
    m_x0, m_y0 = mean(x0), mean(y0)
    var_x = cov_norm * (mean(x0 * x0) - m_x0 * m_x0)
    var_y = cov_norm * (mean(y0 * y0) - m_y0 * m_y0)
    cov_xy = cov_norm * (mean(x0 * y0) - m_x0 * m_y0)
    c1, c2 = _K1**2, _K2**2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    out = (numerator / denominator).flatten(1).mean(dim=1).float()
    return out[0] if unbatched else out


def _x_gradient(grey: torch.Tensor) -> torch.Tensor:
    """|Sobel derivative along x| of B×1×H×W, replicate borders: the [1, 2, 1] smoothing down
    the columns, then the central difference along the rows, written with slices (no constant
    tensor to copy to the device: ``blur_effect`` runs inside captured CUDA graphs)."""
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    smooth = padded[..., :-2, :] + 2 * padded[..., 1:-1, :] + padded[..., 2:, :]
    return (smooth[..., 2:] - smooth[..., :-2]).abs()


def blur_effect(image: torch.Tensor) -> torch.Tensor:
    """How blurred each image looks, 0 (sharp) to 1 (blurred), from the image alone: the
    share of its luminance gradient that a further box blur of ``BLUR_EFFECT_SIZE`` pixels
    does not take away (Crété-Roffet et al. 2007, "The blur effect"; the larger of the two
    axes'). Matches scikit-image's ``measure.blur_effect`` to about 0.001 (their borders differ).
    Written with torch alone, as ``PIPModel`` computes it at inference (``PIPConfig.
    blur_strength``), where kornia is not installed. ``image``: B×3×H×W RGB -> B (float32)."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"blur_effect expects B×3×H×W RGB input, got {tuple(image.shape)}")
    with torch.autocast(image.device.type, enabled=False):  # float32 under autocast too
        rgb = image.float()
        grey = (_LUMA[0] * rgb[:, 0] + _LUMA[1] * rgb[:, 1] + _LUMA[2] * rgb[:, 2]).unsqueeze(1)
        half = BLUR_EFFECT_SIZE // 2
        effects = []
        for along in (grey, grey.transpose(-1, -2)):  # x, then y as the transpose's x
            pad = F.pad(along, (half, half, 0, 0), mode="replicate")
            reblurred = F.avg_pool2d(pad, (1, BLUR_EFFECT_SIZE), stride=1)
            sharp, blurred = (_x_gradient(g)[..., 2:-1, 2:-1] for g in (along, reblurred))
            total = sharp.flatten(1).sum(dim=1)
            kept = (sharp - blurred).clamp_min(0).flatten(1).sum(dim=1)
            effects.append((total - kept).abs() / total.clamp_min(1e-12))
        return torch.stack(effects).amax(dim=0)
