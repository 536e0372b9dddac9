"""The PIP unit: degradation-aware and basic prompts fused, then injected into a feature."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pip_adapter.conditioning import check_weights
from pip_adapter.functional import DEFAULT_TOPM_RATIOS, cast
from pip_adapter.layers import FFN_EXPANSION, project_scaled
from pip_adapter.unit.alignment import ContentAlignment
from pip_adapter.unit.prompt_to_feature import SelectivePromptToFeature
from pip_adapter.unit.prompt_to_prompt import PromptToPromptInteraction
from pip_adapter.unit.prompts import BasicRestorationPrompt, DegradationAwarePrompt
from pip_adapter.unit.resampling import pooled_tiles

__all__ = [
    "DEFAULT_PROMPT_SIZE",
    "DESIGNS",
    "PromptInPrompt",
    "default_heads",
    "default_prompt_dim",
]

DEFAULT_PROMPT_SIZE = 16  # s, the side of the basic restoration prompt
DESIGNS = ("compact", "paper")


def default_prompt_dim(channels: int) -> int:
    """Prompt width for a stage of ``channels``: the stage width, kept within ``[2, 64]``."""
    return max(2, min(channels, 64))


def default_heads(dim: int) -> int:
    """About 32 channels per attention head (at least one), dividing ``dim`` exactly."""
    heads = max(1, dim // 32)
    while dim % heads:
        heads -= 1
    return heads


class PromptInPrompt(nn.Module):
    """Prompt-In-Prompt unit (Li et al., arXiv 2312.05038) for a ``B×C×H×W`` stage feature.

    ``forward(x, weights)`` returns the feature modulated by the universal restoration prompt
    for the degradations described by ``weights`` (``B×T``, non-negative; rows are normalised to
    sum to 1). A freshly built unit is the identity: ``unit(x, w) == x``.

    Steps: the degradation-aware prompt ``p = w @ D`` scales the aligned content
    ``S = p ⊙ align(x)``; the basic prompt ``P`` queries ``S`` (prompt-to-prompt interaction)
    giving ``U0`` (``d×s×s``); ``U = conv3×3(resize(U0, H×W))`` is the universal prompt, which the
    feature queries through top-m sparse attention (selective prompt-to-feature interaction),
    followed by a dual-gated feed-forward.

    Two designs, with the same parts:

    * ``"paper"``: as above, as the authors do: the universal prompt's 3×3 conv, the
      prompt-to-feature attention and its feed-forward (expansion ``ffn_expansion``) all run at
      every pixel of the feature.
    * ``"compact"`` (default): the feature is averaged onto the prompt's ``s×s`` grid (also for
      the content alignment); the universal prompt ``conv3×3(U0)`` and the attention are
      computed on that grid, and the attention's output is resized (bilinear) and added to the
      feature; only the dual-gated feed-forward (expansion ``feature_ffn_expansion``, 1 by
      default) runs at every pixel. On light backbones this removes most of PIP's cost at high
      resolution (docs/benchmarks/overhead.md); the quality of the two designs: the ablation
      table of docs/benchmarks/quality.md.

    Args:
        channels: ``C``, channels of the feature this unit modulates.
        num_degradations: ``T``, number of degradation types.
        prompt_dim: ``d`` (at least 2); default ``default_prompt_dim`` (``C`` within
            ``[2, 64]``).
        prompt_size: ``s``, side of the basic prompt and of ``U0``.
        heads: attention heads of both interactions; default ``default_heads``
            (about 32 channels per head).
        ffn_expansion: hidden width of the prompt-to-prompt feed-forward as a multiple of ``d``.
        topm_ratios: ratios of the top-m attention; ``None`` makes it dense.
        design: ``"compact"`` or ``"paper"`` (see above).
        feature_ffn_expansion: hidden width of the prompt-to-feature feed-forward as a multiple
            of ``d``; default 1 for the compact design, ``ffn_expansion`` for the paper design.
        feature_ffn_stride: compact design: ``k > 1`` runs that feed-forward on the feature
            average-pooled by ``k`` and adds its update resized (bilinear) back, which divides
            its per-pixel cost by ``k²``; 1 runs it at every pixel.
        degradation_ffn_rank: ``r > 0`` gives every degradation its own rank-``r`` update of
            that feed-forward's two 1×1 projections, mixed per sample by the same weights that
            mix the degradation-aware prompt (a label picks one, a mixture or a sensor's
            output blends them); 0 (default): the feed-forward is shared, and only the prompt
            tells degradations apart. Its per-pixel cost does not change.

    Parameter count, with ``h = int(ffn_expansion · d)``, ``f = int(feature_ffn_expansion · d)``,
    ``k`` heads, ``R`` ratios and ``r = degradation_ffn_rank``::

        T·d + d·s² + C·d + 17·d² + 3·(h + f)·d + 66·d + 18·(h + f) + 2·k + R
            + T·r·(2·d + 3·f)   (+ C·d if C < d)

    e.g. 98,322 for ``(C, d, s, T) = (48, 48, 16, 5)`` with the paper design, 85,524 with the
    compact design.
    """

    def __init__(
        self,
        channels: int,
        num_degradations: int,
        prompt_dim: int | None = None,
        prompt_size: int = DEFAULT_PROMPT_SIZE,
        heads: int | None = None,
        ffn_expansion: float = FFN_EXPANSION,
        topm_ratios: Sequence[float] | None = DEFAULT_TOPM_RATIOS,
        design: str = "compact",
        feature_ffn_expansion: float | None = None,
        feature_ffn_stride: int = 1,
        degradation_ffn_rank: int = 0,
    ) -> None:
        super().__init__()
        if design not in DESIGNS:
            raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
        if feature_ffn_stride != 1 and design != "compact":
            raise ValueError(
                f"feature_ffn_stride needs the compact design (the paper design's feed-forward "
                f"takes its attention's output at every pixel), got {feature_ffn_stride} with "
                f"design {design!r}"
            )
        if feature_ffn_expansion is None:
            feature_ffn_expansion = 1.0 if design == "compact" else ffn_expansion
        for name, value in (
            ("channels", channels),
            ("num_degradations", num_degradations),
            ("prompt_size", prompt_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if degradation_ffn_rank < 0:
            raise ValueError(
                f"degradation_ffn_rank must be 0 (none) or a positive integer, got "
                f"{degradation_ffn_rank}"
            )
        dim = default_prompt_dim(channels) if prompt_dim is None else prompt_dim
        heads = default_heads(dim) if heads is None else heads
        if dim < 2:
            raise ValueError(
                f"prompt_dim must be at least 2 (a layer norm over one channel erases the "
                f"prompt), got {dim}"
            )
        if heads < 1 or dim % heads:
            raise ValueError(f"prompt_dim ({dim}) must be a positive multiple of heads ({heads})")
        self.channels = channels
        self.num_degradations = num_degradations
        self.prompt_dim = dim
        self.prompt_size = prompt_size
        self.heads = heads
        self.design = design
        self.degradation_prompt = DegradationAwarePrompt(num_degradations, dim)
        self.basic_prompt = BasicRestorationPrompt(dim, prompt_size)
        self.align = ContentAlignment(
            channels, dim, prompt_size, resample="area" if design == "compact" else "bilinear"
        )
        self.prompt_to_prompt = PromptToPromptInteraction(dim, heads, ffn_expansion)
        self.to_universal = nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False)
        self.prompt_to_feature = SelectivePromptToFeature(
            channels,
            dim,
            heads,
            topm_ratios,
            feature_ffn_expansion,
            feature_ffn_stride,
            num_degradations,
            degradation_ffn_rank,
        )

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, num_degradations={self.num_degradations}, "
            f"prompt_dim={self.prompt_dim}, prompt_size={self.prompt_size}, heads={self.heads}, "
            f"design={self.design!r}, feature_ffn_stride={self.prompt_to_feature.ffn_stride}, "
            f"degradation_ffn_rank={self.degradation_ffn_rank}"
        )

    @property
    def degradation_ffn_rank(self) -> int:
        """``r`` of the degradations' own feed-forward updates (0: none)."""
        update = self.prompt_to_feature.ffn_in_update
        return 0 if update is None else update.down.shape[1]

    def _check_feature(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a 4-D tensor (B, C, H, W), got {shape}")
        if x.shape[1] != self.channels:
            raise ValueError(
                f"x has {x.shape[1]} channels but this PromptInPrompt unit was built for "
                f"{self.channels}"
            )

    def _compact_prompt(self, small: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The universal prompt on the ``s×s`` grid, from the feature already on that grid."""
        prompt = cast(self.degradation_prompt(weights), small.dtype)
        content = project_scaled(self.align.project, small, prompt)
        compact = self.prompt_to_prompt(cast(self.basic_prompt(), small.dtype), content)
        return self.to_universal(compact)

    def _universal_prompt(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``U`` at the feature's ``H×W`` (``"paper"``) or the prompt's ``s×s`` (``"compact"``)."""
        if self.design == "compact":
            return self._compact_prompt(self.align.downsample(x), weights)
        prompt = cast(self.degradation_prompt(weights), x.dtype)
        content = prompt[:, :, None, None] * self.align(x)
        compact = self.prompt_to_prompt(cast(self.basic_prompt(), x.dtype), content)
        # U0 comes channels-last; at full resolution the convolutions and the attention's
        # head split read the usual layout
        return self.to_universal(_resize(compact.contiguous(), x.shape[-2:]))

    def universal_prompt(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The universal restoration prompt ``U`` (``B×d×H×W``) for ``x``, for inspection."""
        self._check_feature(x)
        weights = check_weights(weights, x.shape[0], self.num_degradations)
        return _resize(self._universal_prompt(x, weights), x.shape[-2:])

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Check ``x`` and ``weights`` (normalising the rows), then ``modulate``."""
        self._check_feature(x)
        return self.modulate(x, check_weights(weights, x.shape[0], self.num_degradations))

    def modulate(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The unit's computation on weights the caller has already checked (``B×T`` floats,
        rows summing to 1): a PIPModel checks them once per forward pass, not once per unit,
        which spares each unit the device-to-host synchronisations of the checks."""
        interaction = self.prompt_to_feature
        if self.design == "paper":
            return interaction(x, self._universal_prompt(x, weights), weights)
        # a strided feed-forward's feature pooled once for the grid (all C channels) and the
        # feed-forward, where its windows tile the grid's bins; else the feed-forward pools
        # the d channels it reads itself
        stride = interaction.ffn_stride
        tiles = stride > 1 and pooled_tiles(x, self.prompt_size, stride)
        pooled = interaction.pool(x) if tiles else None
        small = self.align.downsample(x, pooled, stride)
        attended = interaction.attend(
            interaction.select(small), self._compact_prompt(small, weights), small=True
        )
        return interaction.add_resized(x, attended, weights, pooled)

    def add_degradations(self, start: torch.Tensor) -> list[nn.Parameter]:
        """Learn ``k`` more degradations, each starting at a mixture of the existing ones (a row
        of ``start``, ``k×T`` weights): its prompt is that mixture of the prompt rows and, with
        ``degradation_ffn_rank``, its feed-forward updates the rank-``r`` updates nearest to that
        mixture of theirs (``DegradationLowRank.add_rows``). Returns the new parameters, held
        apart from the old ones, so that training them alone leaves every old degradation's
        output bit-exact."""
        weights = check_weights(start, start.shape[0], self.num_degradations)
        with torch.no_grad():
            prompts = self.degradation_prompt(weights)
        new = [self.degradation_prompt.add_rows(prompts)]
        interaction = self.prompt_to_feature
        for update in (interaction.ffn_in_update, interaction.ffn_out_update):
            if update is not None:
                new += update.add_rows(weights)
        self.num_degradations += len(weights)
        return new

    def prompt_regularization(self, angle_degrees: float = 90.0) -> torch.Tensor:
        """Penalty keeping the degradation prompts at least ``angle_degrees`` apart."""
        return self.degradation_prompt.regularization(angle_degrees)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of a ``B×d×h×w`` map to ``size`` (exact copy when already that size; no
    branch on shapes, so that exports keep the height and width dynamic)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
