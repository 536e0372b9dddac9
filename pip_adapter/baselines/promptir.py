"""A PromptIR-style prompt block (Potlapalli et al., NeurIPS 2023), written from the paper's
description, for comparisons with PIP under the same placement.

Prompt generation: a set of learned prompt components, mixed with weights predicted from the
feature itself (softmax of a linear map of its global average), resized to the feature's size
and refined by a 3×3 convolution. Prompt interaction: the prompt is concatenated to the feature
and fused by one transformer block (transposed attention + gated feed-forward), then mapped
back to the feature's channels by a 1×1 convolution. PromptIR is blind by design: the
degradation weights a PIPModel hands to its units are ignored.

Unlike the paper (where the block's output replaces the feature), the output is added to the
feature through that 1×1 projection, initialised to zero as PIP's units are, so that both start
from the same network and a comparison measures the prompts, not the initialisation.

To compare with PIP at the same stages, host the blocks in a ``pip_adapter.PIPModel`` (it
passes degradation weights, which these blocks ignore)::

    reference = pip_adapter.inject_pip(copy.deepcopy(backbone))
    blocks = [PromptIRBlock(stop - start) for start, stop in (s.channels for s in reference.plan)]
    model = PIPModel(backbone, reference.plan, blocks, reference.config)

``benchmarks/quality.py`` does this, with the blocks sized to PIP's parameter count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pip_adapter.layers import (
    FFN_EXPANSION,
    ChannelCrossAttention,
    GatedDconvFeedForward,
    LayerNorm2d,
)
from pip_adapter.unit.prompt_in_prompt import DEFAULT_PROMPT_SIZE, default_heads, default_prompt_dim

__all__ = ["PromptIRBlock"]


class PromptIRBlock(nn.Module):
    """PromptIR's prompt generation and interaction for a ``B×C×H×W`` feature.

    Args:
        channels: ``C``.
        num_components: number of learned prompt components (PromptIR uses 5).
        prompt_dim: channels of the prompt; default as PIP's (``C`` within ``[2, 64]``).
        prompt_size: side of the learned components.
        heads: attention heads of the fusing transformer block (over ``C + prompt_dim``).
        ffn_expansion: hidden width of its feed-forward, as a multiple of ``C + prompt_dim``.
    """

    def __init__(
        self,
        channels: int,
        num_components: int = 5,
        prompt_dim: int | None = None,
        prompt_size: int = DEFAULT_PROMPT_SIZE,
        heads: int | None = None,
        ffn_expansion: float = FFN_EXPANSION,
    ) -> None:
        super().__init__()
        dim = default_prompt_dim(channels) if prompt_dim is None else prompt_dim
        width = channels + dim
        self.channels = channels
        self.components = nn.Parameter(torch.randn(num_components, dim, prompt_size, prompt_size))
        self.to_weights = nn.Linear(channels, num_components)
        self.refine = nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False)
        self.norm_attention = LayerNorm2d(width)
        self.attention = ChannelCrossAttention(width, heads or default_heads(width))
        self.norm_ffn = LayerNorm2d(width)
        self.ffn = GatedDconvFeedForward(width, ffn_expansion)
        self.fuse = nn.Conv2d(width, channels, kernel_size=1, bias=False)
        nn.init.zeros_(self.fuse.weight)

    def prompt(self, x: torch.Tensor) -> torch.Tensor:
        """The generated prompt, ``B×prompt_dim×H×W``."""
        mix = self.to_weights(x.mean(dim=(2, 3))).softmax(dim=-1)
        compact = torch.einsum("bn,ndhw->bdhw", mix, self.components.to(x.dtype))
        resized = F.interpolate(compact, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(resized)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"x must be B×{self.channels}×H×W for this PromptIRBlock, got {tuple(x.shape)}"
            )
        y = torch.cat([x, self.prompt(x)], dim=1)
        normed = self.norm_attention(y)
        y = y + self.attention(normed, normed)
        y = y + self.ffn(self.norm_ffn(y))
        return x + self.fuse(y)

    def modulate(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """What a hosting ``PIPModel`` calls: ``forward``, which ignores
        the degradation weights."""
        return self(x)

    def prompt_regularization(self, angle_degrees: float = 90.0) -> torch.Tensor:
        """Zero: there are no per-degradation prompts to keep apart. Present so that a
        ``PIPModel`` hosting these blocks trains with any ``TrainConfig``."""
        return self.components.new_zeros(())
