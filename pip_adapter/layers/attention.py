"""Transposed (channel-to-channel) cross-attention, dense or top-m sparse."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from pip_adapter.functional import channel_attention, topm_channel_attention

__all__ = ["ChannelCrossAttention"]


def _conv_dw(dim_in: int, dim_out: int) -> nn.Sequential:
    """1×1 point-wise projection followed by a 3×3 depth-wise convolution (Restormer's q/k/v)."""
    return nn.Sequential(
        nn.Conv2d(dim_in, dim_out, kernel_size=1, bias=False),
        nn.Conv2d(dim_out, dim_out, kernel_size=3, padding=1, groups=dim_out, bias=False),
    )


class ChannelCrossAttention(nn.Module):
    """Queries from one feature map, keys and values from another, attention across channels.

    Both inputs are ``B×dim×H×W`` with the same ``H×W`` (the query input may have batch 1 and is
    then broadcast). Logits are cosine similarities scaled by a learned per-head temperature.
    With ``topm_ratios`` the softmax is PIP's top-m sparse mixture (``topm_channel_attention``)
    whose per-ratio weights are learned scalars initialised to 0.2; without, it is dense.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        topm_ratios: Sequence[float] | None = None,
        zero_init_output: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.to_q = _conv_dw(dim, dim)
        self.to_kv = _conv_dw(dim, 2 * dim)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.topm_ratios = tuple(topm_ratios) if topm_ratios is not None else None
        if self.topm_ratios is not None:
            self.topm_weights = nn.Parameter(torch.full((len(self.topm_ratios),), 0.2))
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=False)
        if zero_init_output:
            nn.init.zeros_(self.project_out.weight)

    def forward(self, query_source: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        height, width = context.shape[-2:]
        q = rearrange(self.to_q(query_source), "b (h c) x y -> b h c (x y)", h=self.heads)
        kv = rearrange(
            self.to_kv(context), "b (two h c) x y -> b two h c (x y)", two=2, h=self.heads
        )
        k, v = kv[:, 0], kv[:, 1]
        q = q.expand(context.shape[0], -1, -1, -1)
        if torch.compiler.is_compiling():
            # traced (torch.export), products of views of the batch make the tracer guard on
            # the batch size, and an exported graph would refuse batch 1
            q, k, v = (t.clone(memory_format=torch.contiguous_format) for t in (q, k, v))
        if self.topm_ratios is None:
            out = channel_attention(q, k, v, self.temperature)
        else:
            out = topm_channel_attention(
                q, k, v, self.temperature, self.topm_ratios, self.topm_weights
            )
        out = rearrange(out, "b h c (x y) -> b (h c) x y", x=height, y=width)
        return self.project_out(out)
