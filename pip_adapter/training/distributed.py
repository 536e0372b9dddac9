"""Process-group set-up under ``torchrun`` (NCCL on GPUs, gloo on CPUs)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pip_adapter.devices import resolve_device

__all__ = ["DistributedContext", "setup_distributed"]


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Single-process runs get ``world_size=1`` and no process group. Under torchrun each rank
    uses ``cuda:LOCAL_RANK`` when CUDA is available (NCCL), else the CPU (gloo).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    chosen = resolve_device(device)  # None: CUDA when available; refuses a device not here
    use_cuda = chosen.type == "cuda"
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
        target = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(target)
        return DistributedContext(dist.get_rank(), world_size, target)
    return DistributedContext(0, 1, chosen)
