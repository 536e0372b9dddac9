"""Transposed (channel-to-channel) cross-attention, dense or top-m sparse."""

from __future__ import annotations

import typing
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pip_adapter.caching import eager
from pip_adapter.functional import (
    cast,
    check_topm_ratios,
    cosine_logits,
    query_scales,
    scaled_logits,
    stacked_logits,
    topm_probabilities,
)

__all__ = ["ChannelCrossAttention", "Queries"]

# queries (B×heads×c×N) and the temperature of their logits, or None where the queries hold
# their logits' scales (``scaled_queries``)
Queries = tuple[torch.Tensor, torch.Tensor | None]


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

    The two halves are available alone: ``queries(query_source)`` and
    ``attend(queries, context)``, so that queries of a fixed source (a learned prompt) can be
    computed once and reused (``scaled_queries``: with the logits' query scale folded in).
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
        self.topm_ratios = check_topm_ratios(topm_ratios) if topm_ratios is not None else None
        if self.topm_ratios is not None:
            self.topm_weights = nn.Parameter(torch.full((len(self.topm_ratios),), 0.2))
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=False)
        if zero_init_output:
            nn.init.zeros_(self.project_out.weight)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """``B×(heads·c)×H×W`` → ``B×heads×c×(H·W)``."""
        return t.reshape(t.shape[0], self.heads, -1, t.shape[-2] * t.shape[-1])

    def queries(self, query_source: torch.Tensor) -> Queries:
        """The queries of ``query_source`` (``B×heads×c×N``) and the temperature of their
        logits (``cosine_logits``)."""
        return self._heads(self.to_q(query_source)), self.temperature

    def scaled_queries(self, query_source: torch.Tensor) -> Queries:
        """The queries with their ``query_scales`` multiplied in (at least float32), for
        queries computed once and reused: each use then spares the scales and their product
        (``scaled_logits``)."""
        q = self._heads(self.to_q(query_source))
        return q * query_scales(q, self.temperature), None

    def attend(self, queries: Queries, context: torch.Tensor) -> torch.Tensor:
        """The attention's output (``B×dim×H×W``) for ``queries`` (from ``queries()``) over
        the keys and values of ``context``: ``project_out(mix(queries, context))``."""
        return self.project_out(self.mix(queries, context))

    def mix(self, queries: Queries, context: torch.Tensor) -> torch.Tensor:
        """The heads' attention-weighted values of ``context`` (``B×dim×H×W``), before the
        output projection (which a caller may fuse with its residual, ``project_add``)."""
        q, temperature = queries
        batch, _, height, width = context.shape
        k, v = (self._heads(t) for t in self.to_kv(context).chunk(2, dim=1))
        if torch.compiler.is_compiling():
            # traced (torch.export), products of views of the batch make the tracer guard on
            # the batch size, and an exported graph would refuse batch 1
            q = q.expand(batch, -1, -1, -1)
            q, k, v = (t.clone(memory_format=torch.contiguous_format) for t in (q, k, v))
        if temperature is None:
            logits = scaled_logits(q, None, k)
        else:
            logits = cosine_logits(q, k, temperature)
        return self._values(logits, v).reshape(batch, -1, height, width)

    def _values(self, logits: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The values ``v`` (``B×heads×c×N``) weighted by the attention of ``logits``."""
        if self.topm_ratios is None:
            probs = logits.softmax(dim=-1)
        else:
            probs = topm_probabilities(logits, self.topm_ratios, self.topm_weights)
        return cast(probs, v.dtype) @ v

    def attend_small(self, query_source: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``forward(query_source, context)`` for two inputs of one shape on a small grid (the
        compact design's ``s×s``). At inference (gradients off, eager) the queries and keys are
        stacked, one copy of both, so that their norms take one reduction and one clamp
        (``stacked_logits``: an operator fewer per call than ``forward``, whose inputs may be
        large maps that a copy would cost more than the operator), and the bias-free
        convolutions are called as functions on their weights (as the unit's other fused
        projections are: a hook or wrapper on ``to_q``, ``to_kv`` or ``project_out`` acts in
        training only); otherwise ``forward``."""
        if torch.is_grad_enabled() or not eager() or query_source.shape != context.shape:
            return self(query_source, context)
        batch, dim, height, width = context.shape
        q = _conv_dw_call(self.to_q, query_source)
        kv = _conv_dw_call(self.to_kv, context)
        qkv = torch.cat([q, kv], dim=1)  # q, k, v: one tensor, k and v in place already
        qkv = qkv.reshape(batch, 3, self.heads, -1, height * width)
        logits = stacked_logits(qkv[:, :2], self.temperature)
        out = self._values(logits, qkv[:, 2]).reshape(batch, dim, height, width)
        return F.conv2d(out, self.project_out.weight)

    def forward(self, query_source: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.attend(self.queries(query_source), context)


def _conv_dw_call(conv_dw: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``conv_dw(x)`` for a ``_conv_dw`` pair, as two convolution calls."""
    point, depth = typing.cast(nn.Conv2d, conv_dw[0]), typing.cast(nn.Conv2d, conv_dw[1])
    hidden = F.conv2d(x, point.weight)
    return F.conv2d(hidden, depth.weight, padding=1, groups=hidden.shape[1])
