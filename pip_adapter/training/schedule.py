"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (torch's schedulers)."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

__all__ = ["warmup_cosine"]


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_ratio: float = 0.01
) -> LRScheduler:
    """Linear warm-up over ``warmup_steps`` then cosine decay to ``min_ratio`` times the base
    learning rate at ``total_steps``: ``LinearLR`` followed by ``CosineAnnealingLR``.

    Step ``t`` (counting ``scheduler.step()`` calls) has the base rate times ``(t + 1) /
    warmup_steps`` during the warm-up, then ``min_ratio + (1 - min_ratio) · (1 + cos(π p)) / 2``
    with ``p = (t - warmup_steps) / max(1, total_steps - warmup_steps)``.
    """
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
            f"{total_steps} and {warmup_steps}"
        )
    rates = {group["lr"] for group in optimizer.param_groups}
    if len(rates) != 1:
        raise ValueError(
            f"warmup_cosine needs one learning rate for all parameter groups, got {sorted(rates)}"
        )
    floor = min_ratio * rates.pop()
    decay = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=floor)
    if warmup_steps == 0:
        return decay
    warmup = LinearLR(optimizer, 1 / warmup_steps, 1.0, total_iters=warmup_steps - 1)
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])
