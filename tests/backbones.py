"""Tiny real backbones for tests: spandrel's classes in small configurations, and a U-Net; and
a few real training steps for a model injected into one."""

import torch
import torch.nn.functional as F
from spandrel.architectures.NAFNet import NAFNet
from spandrel.architectures.SwinIR import SwinIR
from spandrel_extra_arches.architectures.Restormer import Restormer
from torch import nn


class TinyUNet(nn.Module):
    """A two-level U-Net whose decoder concatenates ``[upsampled, skip]``, as users write them."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(3, width, 3, padding=1)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.middle = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decoder = nn.Conv2d(2 * width, width, 3, padding=1)
        self.head = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.gelu(self.encoder(x))
        deep = F.gelu(self.middle(self.down(skip)))
        decoded = F.gelu(self.decoder(torch.cat([self.up(deep), skip], dim=1)))
        return x + self.head(decoded)


def nafnet() -> nn.Module:
    return NAFNet(width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])


def restormer() -> nn.Module:
    return Restormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])


def swinir() -> nn.Module:
    return SwinIR(
        img_size=64,
        embed_dim=12,
        depths=[2, 2],
        num_heads=[2, 2],
        window_size=8,
        mlp_ratio=2.0,
        drop_path_rate=0.0,
    )


def unet() -> nn.Module:
    return TinyUNet()


BACKBONES = {"nafnet": nafnet, "restormer": restormer, "swinir": swinir, "unet": unet}
UNET_STAGES = [{"pattern": "decoder", "channel_fraction": [0.5, 1.0]}]

# leaner still, for the export tests, each keeping what its export handles specially: NAFNet
# with one level (one decoder unit; its middle block kept, by which spandrel knows a NAFNet
# checkpoint), Restormer without its refinement block (every level, its three units, the layout
# guards of a single image), SwinIR with one group (a plain and a shifted-window block, the mask
# kept for one size). Tracing and the ONNX conversion take time per graph node, not per pixel.
LEAN = {
    "nafnet": lambda: NAFNet(width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1]),
    "restormer": lambda: Restormer(
        dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, heads=[1, 1, 1, 1]
    ),
    "swinir": lambda: SwinIR(
        img_size=64,
        embed_dim=12,
        depths=[2],
        num_heads=[2],
        window_size=8,
        mlp_ratio=2.0,
        drop_path_rate=0.0,
    ),
}


def build(name: str, seed: int = 0, lean: bool = False) -> nn.Module:
    """``name``'s tiny network (``LEAN``'s when ``lean``), seeded."""
    torch.manual_seed(seed)
    return (LEAN if lean else BACKBONES)[name]().eval()


def injection_kwargs(name: str) -> dict:
    """``inject_pip`` arguments: the preset for spandrel's classes, explicit stages for the U-Net
    (whose decoder needs even sizes)."""
    if name == "unet":
        return {"stages": UNET_STAGES, "size_multiple": 2}
    return {"stages": "auto"}


def train_conditioning(model, steps=4, lr=1e-2):
    """Real optimisation steps pulling 'noise' and 'rain' towards different targets."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    targets = {"noise": torch.zeros_like(x), "rain": torch.ones_like(x)}
    for _ in range(steps):
        for name, target in targets.items():
            optimizer.zero_grad()
            loss = (model(x, degradation=name) - target).abs().mean()
            loss.backward()
            optimizer.step()
    return x
