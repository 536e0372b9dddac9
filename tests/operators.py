"""Counting the operators a backward pass runs, for tests that pin a fused autograd node to
fewer of them than its step-by-step formula."""

from collections.abc import Collection

import torch
from torch.profiler import ProfilerActivity, profile


def backward_operators(output: torch.Tensor, excluded: Collection[str] = ()) -> int:
    """The aten operators the backward pass of ``output`` runs (not those they call), those
    named in ``excluded`` (views, allocations) left out."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        output.backward(torch.ones_like(output))
    return sum(
        1
        for e in prof.events()
        if e.name.startswith("aten::")
        and e.name not in excluded
        and e.cpu_parent is not None
        and not e.cpu_parent.name.startswith("aten::")
    )
