"""PIP's two learned prompts: one vector per degradation, and one shared spatial prompt."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pip_adapter.functional import cast

__all__ = ["BasicRestorationPrompt", "DegradationAwarePrompt"]


class DegradationAwarePrompt(nn.Module):
    """High-level prompt: a ``T×d`` table ``D``, one vector per degradation type.

    ``forward(weights)`` mixes the vectors with per-sample weights (``B×T``, rows summing to 1):
    a one-hot row selects one degradation, a soft row blends several. Vectors start orthogonal
    (scaled to unit-variance entries) so that degradations begin as far apart as possible.

    ``add_rows`` grows the table by new degradations. Their rows are separate parameters
    (``added_0``, ``added_1``, ... after ``prompts``), so that an optimiser given only the new
    rows cannot touch the old ones, weight decay included; and each block's share of ``p`` is
    its own product, so that weights which are zero on the new rows give bit-exactly the ``p`` of
    the table before growth. ``state_dict`` holds the whole table as one ``prompts`` tensor (the
    adapter file of a grown model is that of a model built with every degradation), which
    ``load_state_dict`` splits back into the blocks.
    """

    def __init__(self, num_degradations: int, dim: int) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.empty(num_degradations, dim))
        nn.init.orthogonal_(self.prompts)
        with torch.no_grad():
            self.prompts.mul_(math.sqrt(dim))
        self.added: list[str] = []  # names of the parameters add_rows registered, in order

    @property
    def blocks(self) -> list[torch.Tensor]:
        """The table's row blocks: the original rows, then each block ``add_rows`` added."""
        return [self.prompts, *(getattr(self, name) for name in self.added)]

    @property
    def table(self) -> torch.Tensor:
        """The whole ``T×d`` table ``D``."""
        return torch.cat(self.blocks) if self.added else self.prompts

    @property
    def num_degradations(self) -> int:
        return sum(block.shape[0] for block in self.blocks)

    def add_rows(self, rows: torch.Tensor) -> nn.Parameter:
        """Append ``rows`` (``k×d``) as the prompts of ``k`` new degradations; returns the new
        parameter (a copy of ``rows``, on this table's device and dtype)."""
        if rows.dim() != 2 or rows.shape[1] != self.prompts.shape[1] or rows.shape[0] < 1:
            raise ValueError(
                f"new prompt rows must be k×{self.prompts.shape[1]} with k >= 1, got "
                f"{tuple(rows.shape)}"
            )
        block = nn.Parameter(rows.detach().to(self.prompts).clone())
        name = f"added_{len(self.added)}"
        self.register_parameter(name, block)
        self.added.append(name)
        return block

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        weights = cast(weights, self.prompts.dtype)
        if not self.added:
            return weights @ self.prompts
        start = self.prompts.shape[0]
        prompt = weights[:, :start] @ self.prompts
        for block in self.blocks[1:]:
            prompt = prompt + weights[:, start : start + block.shape[0]] @ block
            start += block.shape[0]
        return prompt

    def regularization(self, angle_degrees: float = 90.0) -> torch.Tensor:
        """``sum_{i<j} relu(cos(D_i, D_j) - cos(angle))``: keeps degradation prompts apart."""
        unit = F.normalize(self.table, dim=-1)
        cosine = unit @ unit.t()
        upper = torch.triu(torch.ones_like(cosine, dtype=torch.bool), diagonal=1)
        return F.relu(cosine[upper] - math.cos(math.radians(angle_degrees))).sum()

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        table = self.table
        destination[prefix + "prompts"] = table if keep_vars else table.detach()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        key = prefix + "prompts"
        table = state_dict.get(key)
        if self.added and table is not None and table.shape[0] == self.num_degradations:
            parts = table.split([block.shape[0] for block in self.blocks])
            state_dict[key] = parts[0]
            for name, part in zip(self.added, parts[1:], strict=True):
                state_dict[prefix + name] = part
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class BasicRestorationPrompt(nn.Module):
    """Low-level prompt: a ``d×s×s`` map shared by every degradation.

    It carries what restoring any degradation has in common and provides the queries of the
    prompt-to-prompt interaction; ``forward()`` returns it as a ``1×d×s×s`` batch.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.prompt = nn.Parameter(torch.randn(1, dim, size, size))

    def forward(self) -> torch.Tensor:
        return self.prompt
