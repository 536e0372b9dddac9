"""Prompt-to-prompt interaction: the basic prompt queries the degradation-modulated content."""

from __future__ import annotations

import torch

from pip_adapter.caching import InferenceCached
from pip_adapter.layers import (
    FFN_EXPANSION,
    ChannelCrossAttention,
    GatedDconvFeedForward,
    LayerNorm2d,
    Queries,
    project_add,
)

__all__ = ["PromptToPromptInteraction"]


class PromptToPromptInteraction(InferenceCached):
    """One transformer block fusing the two prompts into the ``s×s`` universal prompt ``U0``.

    Queries come from the basic restoration prompt ``P`` (``1×d×s×s``, shared by the batch);
    keys and values from the content ``S = p ⊙ x_aligned`` (``B×d×s×s``), where ``p`` is the
    sample's degradation-aware prompt. Transposed attention and a gated depth-wise feed-forward,
    each pre-normalised and residual.

    The queries depend on ``P`` and parameters only: with gradients off (inference) they are
    computed once and reused while those keep their values (``ParameterCache``).
    """

    def __init__(self, dim: int, heads: int, ffn_expansion: float = FFN_EXPANSION) -> None:
        super().__init__()
        self.norm_query = LayerNorm2d(dim)
        self.norm_context = LayerNorm2d(dim)
        self.attention = ChannelCrossAttention(dim, heads)
        self.norm_ffn = LayerNorm2d(dim)
        self.ffn = GatedDconvFeedForward(dim, ffn_expansion)

    def queries(self, basic_prompt: torch.Tensor) -> Queries:
        """The attention's queries from ``P``. With gradients on, as they come: the logits
        take their scales (``cosine_logits``, whose backward is one node). With gradients
        off, with their scales multiplied in (``scaled_queries``), kept by the inference
        cache."""
        attention, norm = self.attention, self.norm_query
        if torch.is_grad_enabled():
            return attention.queries(norm(basic_prompt))
        sources = [
            basic_prompt,
            norm.weight,
            norm.bias,
            *attention.to_q.parameters(),
            attention.temperature,
        ]
        return self.inference_cache.get(
            "queries", sources, lambda: attention.scaled_queries(norm(basic_prompt))
        )

    def forward(self, basic_prompt: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """``U0``: ``P + attention``, then ``+ ffn``; each output projection adds its residual in
        its own product (``project_add``), so ``U0`` and the intermediate come channels-last."""
        attention, ffn = self.attention, self.ffn
        mixed = attention.mix(self.queries(basic_prompt), self.norm_context(content))
        prompt = project_add(attention.project_out, mixed, basic_prompt)
        return project_add(ffn.project_out, ffn.gated(self.norm_ffn(prompt)), prompt)
