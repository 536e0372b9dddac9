"""Where PIP goes in known architectures: plain data, keyed by the backbone's class name.

The paper places PIP on the features the decoder receives from the encoder's skip connections,
at every level but the bottleneck. Each preset says which modules receive those features, and
how large an input the backbone needs (``size_multiple``; PIPModel pads to it).

* **Restormer** (spandrel_extra_arches): the decoder concatenates ``[upsampled, skip]`` and, at
  levels 3 and 2, reduces it with a 1×1 conv; at level 1 the concatenation goes straight into
  ``decoder_level1``. The units modulate exactly the skip half of those inputs. With the
  default prompt width ``min(C, 64)`` the units add about 1.7% to the full-size model's 26.1M
  parameters.
* **NAFNet** (spandrel): the decoder adds ``upsampled + skip`` before each ``decoders.i``; the
  units modulate that sum, at every decoder level.
* **SwinIR** (spandrel) has no encoder-decoder: a stack of residual Swin groups (``layers.i``,
  token sequences) at one resolution feeds the reconstruction head. The units modulate the
  input of the second half of the groups, the stretch nearest to reconstruction that still
  leaves several transformer blocks after each prompt for it to act through; the first half
  extracts degradation-agnostic features, as an encoder does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "required_multiple"]

PRESETS: dict[str, dict[str, Any]] = {
    "Restormer": {
        "stages": [
            {"pattern": "reduce_chan_level3", "channel_fraction": [0.5, 1.0]},
            {"pattern": "reduce_chan_level2", "channel_fraction": [0.5, 1.0]},
            {"pattern": "decoder_level1", "channel_fraction": [0.5, 1.0]},
        ],
        "size_multiple": 8,
    },
    "NAFNet": {
        "stages": [{"pattern": r"decoders\.\d+"}],
        "size_multiple": 1,
    },
    "SwinIR": {
        "stages": [{"pattern": r"layers\.\d+", "portion": [0.5, 1.0]}],
        "size_multiple": 1,
    },
}


def required_multiple(model) -> int:
    """Side multiple the model's input needs: its own ``size_multiple`` (a PIPModel's), else its
    class's preset, else 1."""
    multiple = getattr(model, "size_multiple", None)
    if multiple is None:
        multiple = PRESETS.get(type(model).__name__, {}).get("size_multiple", 1)
    return int(multiple)
