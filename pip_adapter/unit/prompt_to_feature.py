"""Selective prompt-to-feature interaction: the stage feature queries the universal prompt."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pip_adapter.caching import eager
from pip_adapter.functional import DEFAULT_TOPM_RATIOS
from pip_adapter.layers import (
    FFN_EXPANSION,
    ChannelCrossAttention,
    DualGatedFeedForward,
    LayerNorm2d,
    add_product,
)
from pip_adapter.unit.lowrank import DegradationLowRank
from pip_adapter.unit.resampling import resize, resize_add, stride_pool, upsample_add

__all__ = ["SelectivePromptToFeature"]


class SelectivePromptToFeature(nn.Module):
    """Modulate a ``B×C×H×W`` feature with a ``B×d×H×W`` universal prompt.

    Queries come from the feature, keys and values from the prompt, through top-m sparse
    transposed attention, then a dual-gated feed-forward; both residual.

    * ``C > d``: only the first ``d`` channels take part; the other ``C−d`` pass through.
    * ``C < d``: the feature is zero-padded to ``d`` channels and a 1×1 conv maps back to ``C``.

    The steps are also available alone (``select``, ``attend``, ``feed_forward``,
    ``merge``, and ``add_resized``: the feed-forward on the feature plus a resized update),
    so that the attention can run on a smaller grid than the feature.

    Identity at initialisation: both output projections start at zero and the map back to
    ``C`` starts as the identity slice, so a freshly built block returns its input unchanged.
    ``topm_ratios=None`` uses dense attention instead (for ablations).

    ``degradation_rank`` ``r > 0`` gives each of ``num_degradations`` degradations its own
    rank-``r`` update of the feed-forward's two 1×1 projections (``DegradationLowRank``), mixed
    per sample by the degradation weights that the feed-forward steps then take; 0 (default):
    the feed-forward is shared by every degradation, which only the prompt tells apart.
    """

    def __init__(
        self,
        channels: int,
        dim: int,
        heads: int,
        topm_ratios: Sequence[float] | None = DEFAULT_TOPM_RATIOS,
        ffn_expansion: float = FFN_EXPANSION,
        ffn_stride: int = 1,
        num_degradations: int = 0,
        degradation_rank: int = 0,
    ) -> None:
        super().__init__()
        if ffn_stride < 1:
            raise ValueError(f"ffn_stride must be a positive integer, got {ffn_stride}")
        if degradation_rank < 0 or (degradation_rank and num_degradations < 1):
            raise ValueError(
                f"degradation_rank must be 0, or positive with num_degradations >= 1; got "
                f"{degradation_rank} with num_degradations={num_degradations}"
            )
        self.channels = channels
        self.dim = dim
        self.ffn_expansion = ffn_expansion
        self.ffn_stride = ffn_stride
        self.norm_feature = LayerNorm2d(dim)
        self.norm_prompt = LayerNorm2d(dim)
        self.attention = ChannelCrossAttention(
            dim, heads, topm_ratios=topm_ratios, zero_init_output=True
        )
        self.norm_ffn = LayerNorm2d(dim)
        self.ffn = DualGatedFeedForward(dim, ffn_expansion, zero_init_output=True)
        self.ffn_in_update: DegradationLowRank | None = None
        self.ffn_out_update: DegradationLowRank | None = None
        if degradation_rank:
            hidden = self.ffn.project_out.in_channels
            self.ffn_in_update = DegradationLowRank(
                num_degradations, 2 * hidden, dim, degradation_rank
            )
            self.ffn_out_update = DegradationLowRank(
                num_degradations, dim, hidden, degradation_rank
            )
        self.to_channels: nn.Conv2d | None = None
        if channels < dim:
            self.to_channels = nn.Conv2d(dim, channels, kernel_size=1, bias=False)
            with torch.no_grad():
                self.to_channels.weight.zero_()
                self.to_channels.weight[:, :channels, 0, 0].copy_(torch.eye(channels))

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The ``d`` channels of ``x`` that take part: the first ``d``, or ``x`` zero-padded."""
        if self.channels > self.dim:
            return x[:, : self.dim]
        if self.channels < self.dim:
            return F.pad(x, (0, 0, 0, 0, 0, self.dim - self.channels))
        return x

    def attend(
        self, selected: torch.Tensor, prompt: torch.Tensor, small: bool = False
    ) -> torch.Tensor:
        """What the attention adds to the selected channels (zero at initialisation);
        ``small=True`` for inputs on the prompt's ``s×s`` grid, as the compact design's are
        (``ChannelCrossAttention.attend_small``: the same values, an operator fewer)."""
        query_source, context = self.norm_feature(selected), self.norm_prompt(prompt)
        if small:
            return self.attention.attend_small(query_source, context)
        return self.attention(query_source, context)

    def feed_forward(self, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """``y`` plus the dual-gated feed-forward of its normalised self (``y`` at init);
        ``weights`` (``B×T``) pick the degradations' updates when there are any."""
        if self.ffn_in_update is not None:
            return self.feed_forward_fast(y, y, weights=weights)
        return y + self.ffn(self.norm_ffn(y))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` average-pooled by ``ffn_stride`` (``ceil_mode``; ``x`` itself at stride 1)."""
        return stride_pool(x, self.ffn_stride)

    def add_resized(
        self,
        x: torch.Tensor,
        attended: torch.Tensor,
        weights: torch.Tensor | None = None,
        pooled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``merge(x, feed_forward(select(x) + resize(attended), weights))``, with ``attended``
        on a smaller grid resized (bilinear) to ``x``'s: the compact design's per-pixel step.

        With ``ffn_stride`` ``k > 1`` that step runs on ``select(x)`` average-pooled by ``k``
        (``ceil_mode``; ``pooled``, ``pool(x)``, when the caller has it), and what it adds
        there is resized (bilinear) back and added to ``select(x)``: the feed-forward then
        costs ``1/k²`` of its per-pixel price.
        """
        selected = self.select(x)
        if self.ffn_stride == 1:
            modulated = resize_add(selected, attended)
            return self.merge(
                x, self.feed_forward_fast(modulated, modulated, in_place=True, weights=weights)
            )
        pooled = self.pool(selected) if pooled is None else self.select(pooled)
        resized = resize(attended, *pooled.shape[-2:])
        update = self.feed_forward_fast(pooled + resized, resized, in_place=True, weights=weights)
        return self.merge(x, upsample_add(selected, update))

    def feed_forward_fast(
        self,
        y: torch.Tensor,
        residual: torch.Tensor,
        in_place: bool = False,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``residual + ffn(norm_ffn(y))`` (``feed_forward(y)`` for ``residual=y``, to rounding)
        in fewer passes over ``y``: the feed-forward runs channels-last, where the layer norm and
        the depth-wise convolution read contiguous channels; its output projection adds the
        residual and writes its layout back within one matrix product (``add_product``, whose
        ``in_place=True``, for a contiguous ``residual`` of the caller's own, as the unit's
        intermediates are, adds into ``residual`` itself at inference).

        With per-degradation updates, ``weights`` (``B×T``) mix them into each sample's own
        projection matrices, so the feed-forward costs per pixel what the shared one does."""
        ffn, norm = self.ffn, self.norm_ffn
        batch, dim, height, width = y.shape
        normed = F.layer_norm(_tokens(y), (dim,), norm.weight, norm.bias, norm.eps)
        project_in = ffn.project_in.weight.flatten(1)
        project_out = ffn.project_out.weight.flatten(1)
        if self.ffn_in_update is None or self.ffn_out_update is None:
            hidden = F.linear(normed, project_in)
            weight = project_out.expand(batch, -1, -1)
        else:
            if weights is None:
                raise ValueError(
                    "this feed-forward has per-degradation updates: pass the degradation weights"
                )
            project_in = project_in + self.ffn_in_update(weights)  # B×2h×d
            weight = project_out + self.ffn_out_update(weights)  # B×d×h
            hidden = torch.matmul(normed.flatten(1, 2), project_in.transpose(1, 2))
            hidden = hidden.view(batch, height, width, -1)
        hidden = ffn.dwconv(hidden.permute(0, 3, 1, 2))
        gated = ffn.gate(hidden.permute(0, 2, 3, 1), dim=-1)  # B×H×W×hidden
        residual = residual.reshape(batch, dim, height * width)
        tokens = gated.reshape(batch, height * width, -1).transpose(1, 2)
        out = add_product(residual, weight, tokens, in_place=in_place)
        return out.view(batch, dim, height, width)

    def merge(self, x: torch.Tensor, modulated: torch.Tensor) -> torch.Tensor:
        """Back to ``C`` channels: the pass-through channels of ``x`` appended, or the 1×1 map."""
        if self.channels > self.dim:
            return torch.cat([modulated, x[:, self.dim :]], dim=1)
        if self.to_channels is not None:
            return self.to_channels(modulated)
        return modulated

    def forward(
        self, x: torch.Tensor, prompt: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        selected = self.select(x)
        return self.merge(x, self.feed_forward(selected + self.attend(selected, prompt), weights))


def _tokens(y: torch.Tensor) -> torch.Tensor:
    """``y`` (``B×d×H×W``) as ``B×H×W×d`` tokens, which the layer norm reads in contiguous
    memory. A contiguous channels-first ``y`` of batch 1 on the CPU, eager, is copied by
    torch's 2-D blocked transpose (``y.view(d, -1).t()``): several times faster than the 4-D
    copy the layer norm makes of the permuted view, whose every vector gathers its channels
    from as many cache lines (benchmarks/overhead.py ``--transpose``). Otherwise the permuted
    view (no copy where ``y`` is channels-last; traced graphs keep the batch size dynamic)."""
    batch, dim, height, width = y.shape
    if eager() and batch == 1 and y.device.type == "cpu" and y.is_contiguous():
        return y.view(dim, -1).t().contiguous().view(1, height, width, dim)
    return y.permute(0, 2, 3, 1)
