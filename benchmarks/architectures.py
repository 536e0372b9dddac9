"""Where PIP goes in every preset architecture, and what it adds, at the released sizes.

Builds each spandrel architecture that has a preset in its released configuration (random
weights: only the shapes matter), injects PIP with the defaults (``inject_pip(net)``), and
records the stages, their layouts and channel spans, the parameters the units add, and the
input sizes spandrel says the network accepts. Writes docs/benchmarks/architectures.json, from
which ``python tools/gen_architectures_page.py`` writes docs/architectures.md.

Run:  slot python benchmarks/architectures.py        (a few minutes on one CPU thread)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

import pip_adapter as pa
from pip_adapter.architectures import registered_architectures, spandrel_info
from pip_adapter.backbones import BACKBONES
from pip_adapter.files import write_json

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "architectures.json"

# architecture id -> (class name, constructor arguments, which release). Empty arguments:
# spandrel's defaults, which are the released configuration named.
RELEASED: dict[str, tuple[str, dict[str, Any], str]] = {
    "NAFNet": ("NAFNet", BACKBONES["nafnet"].configs["official"], "NAFNet-SIDD-width32"),
    "KBNet": ("KBNet_s", {}, "KBNet-s (spandrel's defaults)"),
    "M3SNet": ("M3SNet", {}, "M3SNet-32 (spandrel's defaults)"),
    "Restormer": ("Restormer", {}, "Restormer (spandrel's defaults)"),
    "FFTformer": ("FFTformer", {}, "FFTformer, GoPro (spandrel's defaults)"),
    "Uformer": ("Uformer", {}, "Uformer-S (spandrel's defaults)"),
    "RetinexFormer": ("RetinexFormer", dict(n_feat=40, stage=1, num_blocks=[1, 2, 2]), "LOL"),
    "HVICIDNet": ("CIDNet", {}, "HVI-CIDNet (spandrel's defaults)"),
    "SCUNet": ("SCUNet", {}, "scunet_color_real_psnr (spandrel's defaults)"),
    "DRUNet": ("DRUNet", dict(in_nc=4, out_nc=3, nc=[64, 128, 256, 512], nb=4), "drunet_color"),
    "FBCNN": ("FBCNN", {}, "fbcnn_color (spandrel's defaults)"),
    "MixDehazeNet": (
        "MixDehazeNet",
        dict(embed_dims=[24, 48, 96, 48, 24], depths=[2, 2, 4, 2, 2]),
        "MixDehazeNet-S",
    ),
    "RealCUGAN": ("UpCunet2x", {}, "up2x"),
    "MPRNet": ("MPRNet", {}, "MPRNet deraining (spandrel's defaults)"),
    "MIRNet2": ("MIRNet_v2", {}, "MIRNetv2 (spandrel's defaults)"),
    "SwinIR": ("SwinIR", BACKBONES["swinir"].configs["official"], "colour denoising, SwinIR-M"),
    "Swin2SR": (
        "Swin2SR",
        dict(
            img_size=64,
            window_size=8,
            depths=[6] * 6,
            embed_dim=180,
            num_heads=[6] * 6,
            mlp_ratio=2.0,
            upscale=2,
            upsampler="pixelshuffle",
        ),
        "classical SR ×2",
    ),
    "HAT": (
        "HAT",
        dict(
            window_size=16,
            depths=[6] * 6,
            embed_dim=180,
            num_heads=[6] * 6,
            mlp_ratio=2.0,
            upscale=4,
        ),
        "HAT-SRx4",
    ),
    "GRL": ("GRL", {}, "spandrel's defaults"),
    "RGT": (
        "RGT",
        dict(embed_dim=180, depth=[6] * 8, num_heads=[6] * 8, split_size=[8, 32], upscale=2),
        "RGT ×2",
    ),
    "DAT": (
        "DAT",
        dict(embed_dim=180, split_size=[8, 32], depth=[6] * 6, num_heads=[6] * 6, upscale=2),
        "DAT ×2",
    ),
    "CRAFT": ("CRAFT", {}, "CRAFT ×4 (spandrel's defaults)"),
    "ATD": ("ATD", {}, "spandrel's defaults"),
    "DRCT": (
        "DRCT",
        dict(upscale=4, upsampler="pixelshuffle"),
        "DRCT ×4 (spandrel's defaults, ×4 pixel-shuffle)",
    ),
    "SRFormer": (
        "SRFormer",
        dict(
            window_size=22,
            depths=[6] * 6,
            embed_dim=180,
            num_heads=[6] * 6,
            mlp_ratio=2.0,
            upscale=2,
            upsampler="pixelshuffle",
        ),
        "SRFormer ×2",
    ),
    "OmniSR": ("OmniSR", dict(res_num=5), "Omni-SR ×4"),
    "DITN": ("DITN_Real", {}, "DITN ×4 (spandrel's defaults)"),
    "MMRealSR": (
        "MMRRDBNet_test",
        dict(num_in_ch=3, num_out_ch=3),
        "MM-RealSR ×4 (spandrel's defaults)",
    ),
    "SPAN": ("SPAN", dict(num_in_ch=3, num_out_ch=3), "SPAN ×4 (48 channels)"),
    "SAFMN": ("SAFMN", dict(dim=36), "SAFMN ×4"),
    "SAFMNBCIE": ("SAFMN_BCIE", dict(dim=64), "SAFMN-BCIE (64 channels)"),
    "DCTLSA": ("DCTLSA", {}, "DCTLSA ×4 (spandrel's defaults)"),
    "PLKSR": ("PLKSR", {}, "PLKSR ×4 (spandrel's defaults)"),
    "SeemoRe": ("SeemoRe", {}, "spandrel's defaults"),
    "MoSR": ("MoSR", {}, "spandrel's defaults"),
    "MoESR": ("MoESR", {}, "spandrel's defaults"),
    "RCAN": ("RCAN", {}, "RCAN ×4 (spandrel's defaults)"),
    "FDAT": ("FDAT", {}, "spandrel's defaults"),
    "ESRGAN": ("RRDBNet", {}, "ESRGAN / Real-ESRGAN ×4 RRDBNet (spandrel's defaults)"),
    "Compact": ("SRVGGNetCompact", {}, "realesr-general-x4v3 (spandrel's defaults)"),
    "SwiftSRGAN": ("Generator", {}, "Swift-SRGAN ×4 (spandrel's defaults)"),
    "DnCNN": ("DnCNN", dict(in_nc=3, out_nc=3, nc=64, nb=20), "colour blind DnCNN"),
}


def build(identity: str) -> torch.nn.Module:
    class_name, kwargs, _ = RELEASED[identity]
    architecture = {a.id: a for a in registered_architectures()}[identity]
    package = importlib.import_module(type(architecture).__module__)
    classes = {getattr(package, n).__name__: getattr(package, n) for n in package.__all__}
    torch.manual_seed(0)
    return classes[class_name](**kwargs).eval()


def measure(identity: str) -> dict[str, Any]:
    backbone = build(identity)
    info = spandrel_info(backbone)
    model = pa.inject_pip(backbone)
    units = sum(p.numel() for p in model.pip_units.parameters())
    network = sum(p.numel() for p in backbone.parameters())
    requirements = model.size_requirements
    return {
        "class": type(backbone).__name__,
        "release": RELEASED[identity][2],
        "config": RELEASED[identity][1],
        "scale": info.scale if info is not None else 1,
        "backbone_parameters": network,
        "pip_parameters": units,
        "stages": [
            {"name": s.name, "layout": s.layout, "channels": list(s.channels)} for s in model.plan
        ],
        "size": {
            "minimum": requirements.minimum,
            "multiple_of": requirements.multiple_of,
            "square": requirements.square,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="architecture ids to (re)measure; default: all")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    missing = sorted(set(pa.PRESETS) - set(RELEASED))
    if missing:
        sys.exit(f"no released configuration for {missing}: add them to RELEASED")
    results = json.loads(OUT.read_text())["architectures"] if OUT.is_file() else {}
    for identity in args.ids or sorted(RELEASED):
        start = time.perf_counter()
        results[identity] = measure(identity)
        print(f"{identity}: {time.perf_counter() - start:.1f} s", flush=True)
    results = {k: results[k] for k in sorted(results) if k in pa.PRESETS}
    write_json(OUT, {"command": "python benchmarks/architectures.py", "architectures": results})


if __name__ == "__main__":
    main()
