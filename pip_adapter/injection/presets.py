"""Where PIP goes in spandrel's restoration architectures: plain data, keyed by spandrel's
architecture id (``pip_adapter.architectures.architecture_id``).

The paper places PIP on the features the decoder receives from the encoder's skip
connections, at every level but the bottleneck. Each preset names the modules that receive
those features (``stages``, as ``Stage`` fields), says why (``reason``), and, where the
network needs it, how to call it (``output``, ``noise_level_map``, ``value_range``: see
``PIPConfig``), and, where lighter units keep the quality at a lower cost, the unit sizes of
each stage (``UNIT_FIELDS``: see ``preset_stages``). Networks without an encoder-decoder get
units on the second half of their body (``most_units``: at most that many, spread evenly over
it; see ``auto.spread``). The input sizes come from spandrel (``size_requirements``), not from
here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from pip_adapter.architectures import architecture_id, size_requirements
from pip_adapter.config import PIPConfig, Stage, check_stage_entries
from pip_adapter.injection.auto import BODY_UNITS
from pip_adapter.unit import DEFAULT_PROMPT_SIZE

__all__ = [
    "CALL_FIELDS",
    "FULL_UNITS",
    "PRESETS",
    "UNIT_FIELDS",
    "WITHOUT_PRESET",
    "preset_for",
    "preset_stages",
    "required_multiple",
]

# the PIPConfig fields a preset may fill (where the user left them None)
CALL_FIELDS = ("output", "noise_level_map", "value_range")
# the unit sizes a preset's stages may set (compact design), and the config fields that, set,
# replace them: with any of them in the config, every stage gets the config's sizes
UNIT_FIELDS = ("prompt_size", "feature_ffn_expansion", "feature_ffn_stride")
# PIPConfig fields for the compact design's full units at every stage (16×16 basic prompts, a
# per-pixel feed-forward of width d at every pixel) whatever a preset sets: the units the
# transfer benchmark measured as a frozen-backbone adapter
FULL_UNITS: dict[str, Any] = {"prompt_size": DEFAULT_PROMPT_SIZE, "feature_ffn_stride": 1}


def _body(pattern: str, reason: str, module_type: str | None = None) -> dict[str, Any]:
    """A preset for a network without skip connections: the inputs of up to ``BODY_UNITS``
    blocks spread over the second half of its body (``pattern``, optionally only modules of
    class ``module_type``)."""
    stage: dict[str, Any] = {"pattern": pattern, "portion": [0.5, 1.0]}
    if module_type is not None:
        stage["module_type"] = module_type
    return {"stages": [stage], "most_units": BODY_UNITS, "reason": reason}


def _skip_halves(*patterns: str, reason: str) -> dict[str, Any]:
    """A preset for modules that receive ``cat([upsampled, skip])``: the skip half."""
    stages = [{"pattern": p, "channel_fraction": [0.5, 1.0]} for p in patterns]
    return {"stages": stages, "reason": reason}


def _sums(*patterns: str, reason: str) -> dict[str, Any]:
    """A preset for modules that receive ``upsampled + skip``: the whole sum."""
    return {"stages": [{"pattern": p} for p in patterns], "reason": reason}


_LIGHT = {"prompt_size": 8, "feature_ffn_expansion": 0.5}  # light units (NAFNet's preset)

_SECOND_HALF = (
    f"one resolution throughout: the inputs of up to {BODY_UNITS} of its {{what}}, spread "
    "evenly over the second half and ending at the last"
)

PRESETS: dict[str, dict[str, Any]] = {
    # U-shaped networks: the features the decoder receives through its skip connections
    # light units (8×8 basic prompts, per-pixel feed-forward of half width), the
    # full-resolution one's feed-forward on the 2×-pooled feature: within issue 14's cost goals
    # on the official NAFNet-32 and the quality benchmark's bar (docs/benchmarks/overhead.md,
    # `light_full_stride2`); the last quarter of the levels is the full-resolution one of the
    # official 4-level NAFNet and of 3-level ones
    "NAFNet": {
        "stages": [
            {"pattern": r"decoders\.\d+", "portion": [0, 0.75], **_LIGHT},
            {
                "pattern": r"decoders\.\d+",
                "portion": [0.75, 1.0],
                **_LIGHT,
                "feature_ffn_stride": 2,
            },
        ],
        "reason": "the decoder adds upsampled + skip before each decoders.i: the units modulate "
        "that sum at every decoder level (light units; the full-resolution one's feed-forward "
        "on the 2×-pooled feature)",
    },
    "KBNet": {
        "variants": {
            "KBNet_s": _sums(
                r"decoders\.\d+",
                reason="NAFNet-style decoder: decoders.i receive upsampled + skip",
            ),
            "KBNet_l": _skip_halves(
                "reduce_chan_level3",
                "reduce_chan_level2",
                "decoder_level1",
                reason="Restormer-style decoder: the skip half of each [upsampled, skip] "
                "concatenation",
            ),
        }
    },
    "M3SNet": _sums(
        r"decoders\.\d+",
        reason="NAFNet-style decoder (decoders.i receive upsampled + skip); the nested "
        "multi-scale middle path feeds those skips",
    ),
    "Restormer": _skip_halves(
        "reduce_chan_level3",
        "reduce_chan_level2",
        "decoder_level1",
        reason="the decoder concatenates [upsampled, skip] (reduced by a 1×1 conv at levels 3 "
        "and 2): the units modulate exactly the skip half",
    ),
    "FFTformer": _skip_halves(
        r"fuse2\.conv",
        r"fuse1\.conv",
        reason="each decoder level fuses cat([upsampled, skip]) with a 1×1 conv: the skip half",
    ),
    "Uformer": _skip_halves(
        r"decoderlayer_\d+",
        reason="each decoder layer receives cat([upsampled, skip]) as tokens (their grid comes "
        "from the image size): the skip half",
    ),
    "RetinexFormer": _skip_halves(
        r"body\.\d+\.denoiser\.decoder_layers\.\d+\.1",
        reason="the denoiser's decoder fuses cat([upsampled, skip]) with a 1×1 conv at each "
        "level: the skip half",
    ),
    "HVICIDNet": _skip_halves(
        r"(HVD|ID)_block[1-3]\.up",
        reason="both branches' decoders (HV and intensity) fuse cat([upsampled, skip]) in "
        "NormUpsample: the skip half",
    ),
    "SCUNet": _sums(
        "m_up2",
        "m_up1",
        "m_tail",
        reason="the decoder adds x + skip before m_up2, m_up1 and m_tail (m_up3's is at the "
        "bottleneck): the units modulate those sums",
    ),
    "DRUNet": {
        **_sums(
            "m_up2",
            "m_up1",
            "m_tail",
            reason="the decoder adds x + skip before m_up2, m_up1 and m_tail (m_up3's is at "
            "the bottleneck); the noise-level map spandrel appends (15/255) is kept",
        ),
        "noise_level_map": 15 / 255,
    },
    "FBCNN": {
        **_sums(
            r"m_up2\.0",
            r"m_up1\.0",
            "m_tail",
            reason="the decoder adds x + skip before each upsampling level (m_up3's is at the "
            "bottleneck); the restored image is the first output (the second is the "
            "predicted JPEG quality)",
        ),
        "output": 0,
    },
    "MixDehazeNet": {
        **_sums(
            "skip2",
            "skip1",
            reason="the encoder features reach the decoder through the 1×1 convs skip2 and "
            "skip1 (then SK fusion): the units modulate those skip features; the network works "
            "in [-1, 1], as the authors' code feeds it",
        ),
        "value_range": [-1.0, 1.0],
    },
    "RealCUGAN": _sums(
        r"unet1\.conv3",
        r"unet2\.conv4",
        r"unet2\.conv5",
        reason="two cascaded U-Nets whose decoders add the (cropped) skip: the units modulate "
        "those sums",
    ),
    "MPRNet": {
        **_sums(
            r"stage2_decoder\.decoder_level[12]",
            r"stage3_orsnet\.orb[23]",
            reason="stage 1 runs on four patches (its modules run several times per pass); "
            "stage 2's U-Net decoder receives upsampled + skip at levels 2 and 1, and stage 3's "
            "ORBs 2 and 3 receive stage 2's encoder and decoder features; the restored image "
            "is the first output (stage 3's)",
        ),
        "output": 0,
    },
    "MIRNet2": _body(
        r"body\.\d+",
        _SECOND_HALF.format(what="recursive residual groups (each one multi-scale inside)"),
    ),
    # one resolution throughout: the second half of the body
    **{
        identity: _body(
            r"layers\.\d+",
            _SECOND_HALF.format(what="residual transformer groups (layers.i)"),
        )
        for identity in (
            "SwinIR",
            "Swin2SR",
            "HAT",
            "GRL",
            "RGT",
            "DAT",
            "CRAFT",
            "ATD",
            "DRCT",
            "SRFormer",
        )
    },
    "OmniSR": _body(r"residual_layer\.\d+", _SECOND_HALF.format(what="OSAG groups")),
    "DITN": _body(r"UFONE\.\d+", _SECOND_HALF.format(what="UFONE groups")),
    "SPAN": _body(r"block_\d+", _SECOND_HALF.format(what="SPAB blocks")),
    "SAFMN": _body(r"feats\.\d+", _SECOND_HALF.format(what="attention blocks")),
    "SAFMNBCIE": _body(r"feats\.\d+", _SECOND_HALF.format(what="feature layers")),
    "DCTLSA": _body(r"B\d+", _SECOND_HALF.format(what="LSAB blocks")),
    "PLKSR": _body(r"feats\.\d+", _SECOND_HALF.format(what="PLK blocks"), "PLKBlock"),
    "SeemoRe": _body(r"body\.\d+", _SECOND_HALF.format(what="residual groups")),
    "MoSR": _body(r"gblocks\.\d+", _SECOND_HALF.format(what="gated CNN blocks"), "GatedCNNBlock"),
    "MoESR": _body(r"blocks\.\d+", _SECOND_HALF.format(what="block groups")),
    "RCAN": _body(r"body\.\d+", _SECOND_HALF.format(what="residual groups"), "ResidualGroup"),
    "FDAT": _body(r"groups\.\d+", _SECOND_HALF.format(what="residual groups")),
    "ESRGAN": _body(r"model\.1\.sub\.\d+", _SECOND_HALF.format(what="RRDB trunk"), "RRDB"),
    "MMRealSR": {
        **_body(r"body\.\d+", _SECOND_HALF.format(what="RRDB trunk")),
        "output": 0,
    },
    "Compact": _body(r"body\.\d+", _SECOND_HALF.format(what="convolutions"), "Conv2d"),
    "SwiftSRGAN": _body(r"residual\.\d+", _SECOND_HALF.format(what="residual blocks")),
    "DnCNN": _body(r"model\.\d+", _SECOND_HALF.format(what="convolutions"), "Conv2d"),
}

# spandrel architectures without a preset, and why (inject_pip still accepts stages=)
WITHOUT_PRESET: dict[str, str] = {
    "FeMaSR": "a VQ codebook prior: the encoder's features are replaced by codebook entries and "
    "no skip connection reaches the decoder, so the paper's location does not exist; pass "
    r"stages=[r'decoder_group\.\d+'] to prompt the decoder",
    "AdaCode": "a VQ codebook prior (FeMaSR with several codebooks): no skip connection reaches "
    r"the decoder; pass stages=[r'decoder_group\.\d+'] to prompt the decoder",
    "LaMa": "inpainting: takes an image and a mask",
    "MAT": "inpainting: takes an image and a mask",
    "DDColor": "colourisation of grayscale images, not the removal of a degradation",
    "GFPGAN": "face restoration of aligned 512×512 face crops by a generative StyleGAN2 prior",
    "RestoreFormer": "face restoration of aligned face crops from a learned face codebook",
    "CodeFormer": "face restoration of aligned 512×512 face crops from a learned face codebook",
    "AuraSR": "a GAN upsampler that draws random noise on every call (not deterministic)",
    "IPT": "a multi-task pre-trained transformer run on 48×48 patches with a head and tail "
    "chosen per call (spandrel wraps it in its own patch-by-patch caller)",
}


def preset_for(backbone: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """``(architecture id, preset)`` for a network of a spandrel architecture with a preset
    (for architectures with several classes, the preset of the backbone's class)."""
    identity = architecture_id(backbone)
    if identity is None:
        return None
    preset = PRESETS.get(identity)
    if preset is not None and "variants" in preset:
        preset = preset["variants"].get(type(backbone).__name__)
    return (identity, preset) if preset is not None else None


def preset_stages(preset: dict[str, Any], config: PIPConfig) -> tuple[Stage, ...]:
    """A preset's stage entries for ``config``: with their unit sizes (``UNIT_FIELDS``) where
    the config uses the compact design and leaves them all None (its defaults), else without
    them, so that every stage gets the config's sizes (the paper design's, or the user's)."""
    given = [f for f in UNIT_FIELDS if getattr(config, f) is not None]
    stages = check_stage_entries(preset["stages"])
    if config.design == "compact" and not given:
        return stages
    unsized: dict[str, Any] = dict.fromkeys(UNIT_FIELDS)
    return tuple(dataclasses.replace(stage, **unsized) for stage in stages)


def required_multiple(model: Any) -> int:
    """The side multiple ``model``'s input needs: ``size_requirements(model).multiple_of``
    (spandrel's rule, or a ``PIPModel``'s); see ``size_requirements`` for the minimum side
    and squareness too."""
    return size_requirements(model).multiple_of
