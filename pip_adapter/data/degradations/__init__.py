"""Synthetic degradations (functional and nn.Module forms) for training without downloads.

Every function takes a B×3×H×W (or 3×H×W) float image in [0, 1], an optional
``torch.Generator`` and keyword parameters (``None`` = drawn per image from the documented range),
and returns an image of the same shape, dtype and device, clipped to [0, 1].
"""

from pip_adapter.data.degradations.blur import MotionBlur, motion_blur, motion_kernels
from pip_adapter.data.degradations.clean import NoDegradation, no_degradation
from pip_adapter.data.degradations.compose import (
    DEGRADATION_MODULES,
    DEGRADATIONS,
    SYNTHETIC_DEGRADATIONS,
    Compose,
    build_degradation,
    degrade,
    parse_degradations,
)
from pip_adapter.data.degradations.haze import AtmosphericHaze, atmospheric_haze, synthetic_depth
from pip_adapter.data.degradations.jpeg import JpegCompression, jpeg_compression
from pip_adapter.data.degradations.lowlight import LowLight, low_light
from pip_adapter.data.degradations.noise import NOISE_SIGMAS, GaussianNoise, gaussian_noise
from pip_adapter.data.degradations.rain import RainStreaks, rain_streaks
from pip_adapter.data.degradations.snow import SnowFall, snowfall

__all__ = [
    "DEGRADATIONS",
    "DEGRADATION_MODULES",
    "NOISE_SIGMAS",
    "SYNTHETIC_DEGRADATIONS",
    "AtmosphericHaze",
    "Compose",
    "GaussianNoise",
    "JpegCompression",
    "LowLight",
    "MotionBlur",
    "NoDegradation",
    "RainStreaks",
    "SnowFall",
    "atmospheric_haze",
    "build_degradation",
    "degrade",
    "gaussian_noise",
    "jpeg_compression",
    "low_light",
    "motion_blur",
    "motion_kernels",
    "no_degradation",
    "parse_degradations",
    "rain_streaks",
    "snowfall",
    "synthetic_depth",
]
