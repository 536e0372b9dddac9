"""Prompt-to-prompt interaction: the basic prompt queries the degradation-modulated content."""

from __future__ import annotations

import torch
from torch import nn

from pip_adapter.layers import (
    FFN_EXPANSION,
    ChannelCrossAttention,
    GatedDconvFeedForward,
    LayerNorm2d,
)

__all__ = ["PromptToPromptInteraction"]


class PromptToPromptInteraction(nn.Module):
    """One transformer block fusing the two prompts into the ``s×s`` universal prompt ``U0``.

    Queries come from the basic restoration prompt ``P`` (``1×d×s×s``, shared by the batch);
    keys and values from the content ``S = p ⊙ x_aligned`` (``B×d×s×s``), where ``p`` is the
    sample's degradation-aware prompt. Transposed attention and a gated depth-wise feed-forward,
    each pre-normalised and residual.
    """

    def __init__(self, dim: int, heads: int, ffn_expansion: float = FFN_EXPANSION) -> None:
        super().__init__()
        self.norm_query = LayerNorm2d(dim)
        self.norm_context = LayerNorm2d(dim)
        self.attention = ChannelCrossAttention(dim, heads)
        self.norm_ffn = LayerNorm2d(dim)
        self.ffn = GatedDconvFeedForward(dim, ffn_expansion)

    def forward(self, basic_prompt: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        prompt = basic_prompt + self.attention(
            self.norm_query(basic_prompt), self.norm_context(content)
        )
        return prompt + self.ffn(self.norm_ffn(prompt))
