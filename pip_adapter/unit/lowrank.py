"""Each degradation's own low-rank update of a weight matrix, mixed per sample like the prompt."""

from __future__ import annotations

import math

import torch
from torch import nn

from pip_adapter.caching import InferenceCached
from pip_adapter.functional import cast

__all__ = ["DegradationLowRank"]


class DegradationLowRank(InferenceCached):
    """Rank-``r`` updates ``B_t A_t`` of an ``out×in`` weight matrix, one per degradation ``t``.

    ``forward(weights)`` (``B×T``, rows summing to 1) returns every sample's update
    ``ΔW_b = Σ_t w_bt B_t A_t`` (``B×out×in``): a one-hot row selects one degradation's update,
    a soft row (a mixture, or a sensor's output in blind mode) blends them, as the
    degradation-aware prompt blends its rows. It gives each degradation weights of its own in a
    layer that the prompts otherwise only steer, as one LoRA per degradation does.

    ``B`` starts at zero (no update: a layer built with it computes what it computes without)
    and ``A`` as a linear layer's weight, as LoRA starts.

    ``add_rows`` grows it by new degradations, as ``DegradationAwarePrompt.add_rows`` grows
    the prompt table: their factors are separate parameters (``added_up_0``,
    ``added_down_0``, ...), each block's share of ``ΔW`` is its own product, so weights that
    are zero on the new degradations give bit-exactly the update of the table before growth,
    and ``state_dict`` holds whole ``up`` / ``down`` tables (those of a module built with every
    degradation), which ``load_state_dict`` splits back into the blocks. A module built with
    every degradation and loaded from that file computes ``ΔW`` in one product: the same update
    bit for bit for weights within the old or within the new degradations, and to rounding
    (another order of the same sum) for a mixture across both.

    ``ΔW_b`` is the weights' mix of every degradation's own ``B_t A_t``, which depend on the
    parameters alone: at inference on the CPU those products are computed once and reused
    while the factors keep their values (``InferenceCached``), so that a forward pass costs one
    small product per sample instead of ``T`` rank-``r`` products.
    """

    def __init__(self, num_degradations: int, out_features: int, in_features: int, rank: int):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank}")
        self.down = nn.Parameter(torch.empty(num_degradations, rank, in_features))  # A
        self.up = nn.Parameter(torch.zeros(num_degradations, out_features, rank))  # B
        for matrix in self.down:
            nn.init.kaiming_uniform_(matrix, a=math.sqrt(5))
        self.added: list[str] = []  # suffixes of the blocks add_rows registered, in order

    @property
    def blocks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(up, down)`` of the original degradations, then of each block ``add_rows`` added."""
        added = [(getattr(self, f"up_{n}"), getattr(self, f"down_{n}")) for n in self.added]
        return [(self.up, self.down), *added]

    @property
    def num_degradations(self) -> int:
        return sum(up.shape[0] for up, _ in self.blocks)

    def extra_repr(self) -> str:
        _, rank, in_features = self.down.shape
        return (
            f"num_degradations={self.num_degradations}, out_features={self.up.shape[1]}, "
            f"in_features={in_features}, rank={rank}"
        )

    def add_rows(self, start: torch.Tensor) -> list[nn.Parameter]:
        """Updates for ``k`` new degradations; returns their two new parameters (up, down).

        Row ``j`` of ``start`` (``k×T``, the mixture of the existing degradations at which the
        new one's prompt starts) gives the update the new degradation starts at: the rank-``r``
        update nearest to that mixture's ``Σ_t w_t B_t A_t`` (its truncated SVD, Eckart-Young),
        so the new degradation starts from weights the model already uses for that mixture:
        exactly (to rounding) the old degradation's own when ``start`` names one, the closest
        rank ``r`` can hold to a blend of several. The factors are ``B = U_r Σ_r`` and
        ``A = V_rᵀ``: ``A``'s rows stay orthonormal, so both factors receive gradients even
        where the mixture is zero (updates not trained yet), as LoRA's start does. Directions
        beyond the matrix's smaller side (``r > min(out, in)``) start as a fresh module's."""
        if start.dim() != 2 or start.shape[1] != self.num_degradations or start.shape[0] < 1:
            raise ValueError(
                f"start must be k×{self.num_degradations} weights with k >= 1, got "
                f"{tuple(start.shape)}"
            )
        _, out_features, rank = self.up.shape
        with torch.no_grad():
            tables = [torch.cat(t).detach().cpu().double() for t in zip(*self.blocks, strict=True)]
            mixtures = torch.einsum("kt,tor,tri->koi", start.detach().cpu().double(), *tables)
            u, s, vh = torch.linalg.svd(mixtures, full_matrices=False)
            kept = min(rank, s.shape[1])
            up = torch.zeros(start.shape[0], out_features, rank, dtype=torch.float64)
            down = torch.empty(start.shape[0], rank, self.down.shape[2], dtype=torch.float64)
            up[:, :, :kept] = u[:, :, :kept] * s[:, None, :kept]
            down[:, :kept] = vh[:, :kept]
            if kept < rank:
                for matrix in down[:, kept:]:
                    nn.init.kaiming_uniform_(matrix, a=math.sqrt(5))
        name = str(len(self.added))
        params = []
        for factor, value in (("up", up), ("down", down)):
            param = nn.Parameter(value.to(self.up))
            self.register_parameter(f"{factor}_{name}", param)
            params.append(param)
        self.added.append(name)
        return params

    def products(self) -> list[torch.Tensor]:
        """Every degradation's update ``B_t A_t`` (``T_k×out×in``), one tensor per block of
        ``blocks``; with gradients off, on the CPU, kept by the inference cache."""
        factors = [factor for block in self.blocks for factor in block]
        return self.inference_cache.get(
            "products", factors, lambda: [up @ down for up, down in self.blocks]
        )

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        weights = cast(weights, self.up.dtype)
        first, *added = self.products()
        _, out_features, in_features = first.shape
        update = weights[:, : first.shape[0]] @ first.flatten(1)
        start = first.shape[0]
        for products in added:
            update = update + weights[:, start : start + products.shape[0]] @ products.flatten(1)
            start += products.shape[0]
        return update.view(-1, out_features, in_features)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        for factor, table in zip(("up", "down"), zip(*self.blocks, strict=True), strict=True):
            whole = torch.cat(table) if self.added else table[0]
            destination[prefix + factor] = whole if keep_vars else whole.detach()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        sizes = [up.shape[0] for up, _ in self.blocks]
        for factor in ("up", "down"):
            table = state_dict.get(prefix + factor)
            if self.added and table is not None and table.shape[0] == sum(sizes):
                parts = table.split(sizes)
                state_dict[prefix + factor] = parts[0]
                for name, part in zip(self.added, parts[1:], strict=True):
                    state_dict[f"{prefix}{factor}_{name}"] = part
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
