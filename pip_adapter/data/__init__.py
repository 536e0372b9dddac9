"""Data for training and evaluating restoration: bundled photos, synthetic degradations,
synthetic and standard datasets, image I/O.

Images are float32 RGB tensors in [0, 1], B×3×H×W (single images 3×H×W).
"""

from pip_adapter._extras import needs_extra

with needs_extra("train", "pip_adapter.data"):
    from pip_adapter.data.degradations import (
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
        atmospheric_haze,
        build_degradation,
        degrade,
        gaussian_noise,
        jpeg_compression,
        low_light,
        motion_blur,
        no_degradation,
        rain_streaks,
        snowfall,
        synthetic_depth,
    )
    from pip_adapter.data.io import check_images, list_images, read_image, write_image
    from pip_adapter.data.pages import synthetic_pages
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
    "OOD_PHOTOS",
    "SAMPLE_PHOTOS",
    "STANDARD_TEST_SETS",
    "SYNTHETIC_DEGRADATIONS",
    "AtmosphericHaze",
    "Compose",
    "GaussianNoise",
    "JpegCompression",
    "LowLight",
    "MotionBlur",
    "NoDegradation",
    "PairedImages",
    "RainStreaks",
    "SnowFall",
    "StandardTestSet",
    "StandardTrainSet",
    "SyntheticAllInOne",
    "atmospheric_haze",
    "build_degradation",
    "build_eval_set",
    "check_images",
    "degrade",
    "gaussian_noise",
    "jpeg_compression",
    "list_images",
    "low_light",
    "motion_blur",
    "no_degradation",
    "rain_streaks",
    "read_image",
    "sample_image_names",
    "sample_images",
    "snowfall",
    "split_train_test",
    "synthetic_depth",
    "synthetic_pages",
    "write_image",
]
