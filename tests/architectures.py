"""Tiny configurations of every spandrel architecture that has a PIP preset, for tests: the
real classes (random weights), small enough that a dry run, a few training steps and a
save / load take well under a second or two each on one CPU thread."""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from pip_adapter.architectures import registered_architectures

# architecture id -> (class name in spandrel's package, constructor arguments)
TINY: dict[str, tuple[str, dict[str, Any]]] = {
    "Compact": ("SRVGGNetCompact", dict(num_feat=8, num_conv=4, upscale=2)),
    "SwiftSRGAN": ("Generator", dict(num_channels=8, num_blocks=2, upscale_factor=2)),
    "HAT": (
        "HAT",
        dict(
            img_size=16,
            embed_dim=12,
            depths=(1, 1),
            num_heads=(2, 2),
            window_size=4,
            compress_ratio=3,
            squeeze_factor=4,
            mlp_ratio=2.0,
            upscale=2,
            num_feat=8,
            drop_path_rate=0.0,
        ),
    ),
    "GRL": (
        "GRL",
        dict(
            img_size=16,
            embed_dim=16,
            depths=[1, 1],
            num_heads_window=[1, 1],
            num_heads_stripe=[1, 1],
            window_size=4,
            stripe_size=[4, 4],
            mlp_ratio=2.0,
            drop_path_rate=0.0,
        ),
    ),
    "Swin2SR": (
        "Swin2SR",
        dict(
            img_size=16,
            embed_dim=12,
            depths=[1, 1],
            num_heads=[2, 2],
            window_size=4,
            mlp_ratio=2.0,
            upscale=1,
            drop_path_rate=0.0,
        ),
    ),
    "SwinIR": (
        "SwinIR",
        dict(
            img_size=16,
            embed_dim=12,
            depths=[2, 2],
            num_heads=[2, 2],
            window_size=4,
            mlp_ratio=2.0,
            drop_path_rate=0.0,
        ),
    ),
    "OmniSR": ("OmniSR", dict(num_feat=16, block_num=1, window_size=4, res_num=1, up_scale=2)),
    "SCUNet": ("SCUNet", dict(config=[1] * 7, dim=64, input_resolution=64)),
    "FBCNN": ("FBCNN", dict(nc=[8, 16, 32, 512], nb=2)),  # qf_pred fixes nc[3] = 512
    "Uformer": (
        "Uformer",
        dict(
            img_size=64,
            embed_dim=8,
            depths=[1] * 9,
            num_heads=[1, 1, 1, 1, 1, 1, 1, 1, 1],
            win_size=4,
            mlp_ratio=2.0,
            drop_path_rate=0.0,
        ),
    ),
    "RGT": (
        "RGT",
        dict(
            img_size=16,
            embed_dim=12,
            depth=[1, 1],
            num_heads=[2, 2],
            split_size=[4, 4],
            mlp_ratio=2.0,
            drop_path_rate=0.0,
            upscale=2,
        ),
    ),
    "DAT": (
        "DAT",
        dict(
            img_size=64,
            embed_dim=16,
            split_size=[2, 4],
            depth=[1, 1],
            num_heads=[2, 2],
            expansion_factor=2.0,
            drop_path_rate=0.0,
            upscale=2,
        ),
    ),
    "CRAFT": (
        "CRAFT",
        dict(
            window_size=8,
            embed_dim=12,
            depths=[1, 1],
            num_heads=[2, 2],
            split_size_0=2,
            split_size_1=8,
            upscale=2,
        ),
    ),
    "KBNet": (
        "KBNet_s",
        dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]),
    ),
    "DITN": (
        "DITN_Real",
        dict(dim=12, ITL_blocks=2, SAL_blocks=1, UFONE_blocks=1, patch_size=4, upscale=2),
    ),
    "MMRealSR": (
        "MMRRDBNet_test",
        dict(
            num_in_ch=3,
            num_out_ch=3,
            scale=4,
            num_feat=8,
            num_block=2,
            num_grow_ch=4,
            num_feats=[8, 8, 8, 8],
            num_blocks=[1, 1, 1, 1],
        ),
    ),
    "SPAN": ("SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2)),
    "RealCUGAN": ("UpCunet2x", {}),
    "SAFMN": ("SAFMN", dict(dim=8, n_blocks=2, upscaling_factor=2)),
    "SAFMNBCIE": ("SAFMN_BCIE", dict(dim=8, n_blocks=2, num_layers=1, upscaling_factor=2)),
    "DCTLSA": ("DCTLSA", dict(nf=8, num_modules=6, upscale=2, num_head=2)),
    "FFTformer": (
        "FFTformer",
        dict(dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1, ffn_expansion_factor=2),
    ),
    "NAFNet": ("NAFNet", dict(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])),
    "ATD": (
        "ATD",
        dict(
            img_size=16,
            embed_dim=12,
            depths=(1, 1),
            num_heads=(2, 2),
            window_size=4,
            category_size=16,
            num_tokens=8,
            reducted_dim=4,
            convffn_kernel_size=3,
            mlp_ratio=2.0,
        ),
    ),
    "MixDehazeNet": ("MixDehazeNet", dict(embed_dims=[8, 16, 32, 16, 8], depths=[1, 1, 1, 1, 1])),
    "DRUNet": ("DRUNet", dict(in_nc=4, out_nc=3, nc=[8, 16, 32, 64], nb=2)),
    "DnCNN": ("DnCNN", dict(in_nc=3, out_nc=3, nc=8, nb=4)),
    "DRCT": (
        "DRCT",
        dict(
            img_size=16,
            embed_dim=12,
            depths=(1, 1),
            num_heads=(2, 2),
            window_size=4,
            mlp_ratio=2.0,
            gc=8,
            drop_path_rate=0.0,
            upscale=2,
            upsampler="pixelshuffle",  # DRCT's only upsampler; any other returns the input
        ),
    ),
    "ESRGAN": ("RRDBNet", dict(num_filters=8, num_blocks=2, scale=2)),
    "PLKSR": ("PLKSR", dict(dim=8, n_blocks=2, kernel_size=5, upscaling_factor=2)),
    "RetinexFormer": ("RetinexFormer", dict(n_feat=8, stage=1, num_blocks=[1, 1, 1])),
    "HVICIDNet": ("CIDNet", dict(channels=[8, 8, 16, 32], heads=[1, 1, 2, 4])),
    "SeemoRe": (
        "SeemoRe",
        dict(scale=2, num_experts=2, num_layers=2, embedding_dim=8, global_kernel_size=5),
    ),
    "MoSR": ("MoSR", dict(upscale=2, n_block=2, dim=8)),
    "MoESR": ("MoESR", dict(scale=2, dim=8, n_blocks=2, n_block=1, upsample_dim=8)),
    "RCAN": (
        "RCAN",
        dict(scale=2, n_resgroups=2, n_resblocks=1, n_feats=8, reduction=4, rgb_range=1),
    ),
    "FDAT": (
        "FDAT",
        dict(
            scale=2,
            embed_dim=12,
            num_groups=2,
            depth_per_group=1,
            num_heads=2,
            window_size=4,
            mid_dim=8,
            drop_path_rate=0.0,
        ),
    ),
    "SRFormer": (
        "SRFormer",
        dict(
            img_size=16,
            embed_dim=12,
            depths=(1, 1),
            num_heads=(2, 2),
            window_size=4,
            mlp_ratio=2.0,
            drop_path_rate=0.0,
        ),
    ),
    "M3SNet": (
        "M3SNet",
        dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1]),
    ),
    "Restormer": (
        "Restormer",
        dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1]),
    ),
    "MPRNet": (
        "MPRNet",
        dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1, reduction=4),
    ),
    "MIRNet2": ("MIRNet_v2", dict(n_feat=16, n_MRB=1)),
}


# how each network is called on [0, 1] images, written out here (not taken from the library)
# for the networks whose preset sets noise_level_map, value_range or output
CALLS = {
    "DRUNet": lambda net, x: net(torch.cat([x, torch.full_like(x[:, :1], 15 / 255)], dim=1)),
    "MixDehazeNet": lambda net, x: net(x * 2 - 1) * 0.5 + 0.5,
    "FBCNN": lambda net, x: net(x)[0],
    "MPRNet": lambda net, x: net(x)[0],
    "MMRealSR": lambda net, x: net(x)[0],
}


def call(identity: str, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The restored image of ``net`` (spandrel's ``identity``) for ``x``, called directly."""
    return CALLS.get(identity, lambda n, image: n(image))(net, x.clone())


def _architectures() -> dict[str, Any]:
    return {architecture.id: architecture for architecture in registered_architectures()}


def build_tiny(identity: str, seed: int = 0) -> nn.Module:
    """A tiny network of spandrel's architecture ``identity``, random weights, eval mode."""
    class_name, kwargs = TINY[identity]
    package = importlib.import_module(type(_architectures()[identity]).__module__)
    classes = {getattr(package, name).__name__: getattr(package, name) for name in package.__all__}
    torch.manual_seed(seed)
    return classes[class_name](**kwargs).eval()
