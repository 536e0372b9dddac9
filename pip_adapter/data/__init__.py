"""Data for training and evaluating restoration: bundled photos, synthetic degradations,
synthetic and standard datasets, image I/O.

Images are float32 RGB tensors in [0, 1], B×3×H×W (single images 3×H×W).
"""

from pip_adapter.data.degradations import (
    DEGRADATION_KINDS,
    AtmosphericHaze,
    Compose,
    GaussianNoise,
    LowLight,
    MotionBlur,
    RainStreaks,
    atmospheric_haze,
    build_degradation,
    degrade,
    gaussian_noise,
    low_light,
    motion_blur,
    rain_streaks,
    synthetic_depth,
)
from pip_adapter.data.io import list_images, read_image, write_image
from pip_adapter.data.photos import (
    OOD_PHOTOS,
    SAMPLE_PHOTOS,
    sample_image_names,
    sample_images,
    split_train_test,
)
from pip_adapter.data.standard import STANDARD_TEST_SETS, StandardTestSet, StandardTrainSet
from pip_adapter.data.synthetic import PairedImages, SyntheticAllInOne, build_eval_set

__all__ = [
    "DEGRADATION_KINDS",
    "OOD_PHOTOS",
    "SAMPLE_PHOTOS",
    "STANDARD_TEST_SETS",
    "AtmosphericHaze",
    "Compose",
    "GaussianNoise",
    "LowLight",
    "MotionBlur",
    "PairedImages",
    "RainStreaks",
    "StandardTestSet",
    "StandardTrainSet",
    "SyntheticAllInOne",
    "atmospheric_haze",
    "build_degradation",
    "build_eval_set",
    "degrade",
    "gaussian_noise",
    "list_images",
    "low_light",
    "motion_blur",
    "rain_streaks",
    "read_image",
    "sample_image_names",
    "sample_images",
    "split_train_test",
    "synthetic_depth",
    "write_image",
]
