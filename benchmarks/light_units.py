"""The lighter PIP units tried on NAFNet for issue 14, as ``inject_pip`` keywords: one home for
the quality benchmark's variants that train them and the overhead benchmark's designs that time
them (neither module imports the other for these)."""

from __future__ import annotations

# the light units (quality.py's `light`): 8×8 basic prompts, per-pixel feed-forward of half width
LIGHT_UNITS = {"prompt_size": 8, "feature_ffn_expansion": 0.5}
# the light units with the full-resolution unit's feed-forward on the 2×-pooled feature, where
# it costs the most (`light_full_stride2`, NAFNet's preset since session 19): NAFNet's decoder
# levels but the last quarter, then the last quarter (the full-resolution level of the official
# 4-level NAFNet and of NAFNet-small's 3 levels)
LIGHT_FULL_STRIDE2 = {
    "stages": [
        {"pattern": r"decoders\.\d+", "portion": [0, 0.75]},
        {"pattern": r"decoders\.\d+", "portion": [0.75, 1.0], "feature_ffn_stride": 2},
    ],
    **LIGHT_UNITS,
}
