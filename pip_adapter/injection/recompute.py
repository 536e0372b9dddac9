"""A unit run again in the backward pass (``PIPModel.recompute_units``), with little Python
work per tensor."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, suppress
from typing import Any, cast

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.utils.checkpoint import checkpoint

__all__ = ["recomputed"]


def recomputed(run: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:
    """``run(*args)``, keeping none of the tensors it saves for the backward pass, which runs
    it again to rebuild them (activation checkpointing, as torch.utils.checkpoint's
    non-reentrant form does).

    The forward pass records ``run``'s graph as usual, but each tensor an operator saves is
    replaced by its index; the first of them the backward pass needs runs ``run`` again on the
    same inputs, under the forward's autocast and random state, and stops as soon as the last
    saved tensor is rebuilt (operators after it saved nothing: the forward's nodes serve); each
    rebuilt tensor is handed over once and released (a second backward pass through the same
    graph, ``retain_graph``, runs it again). So the operators and the gradients are
    those of torch's checkpoint, bit for bit, but each saved tensor costs one small Python call
    per pass instead of torch's bookkeeping (holders, weak references, metadata checks), which
    on a GPU, where the host's work sets an adapter step's time, cost the units' saved tensors
    more than their arithmetic (docs/benchmarks/adapter_step.md). While traced or compiled:
    torch's checkpoint."""
    if torch.compiler.is_compiling():
        return checkpoint(run, *args, use_reentrant=False)
    call = _Recomputation(run, args)
    with saved_tensors_hooks(call.pack, call.unpack):
        return run(*args)


class _Rebuilt(Exception):
    """The recomputation has rebuilt every tensor the forward pass saved."""


class _Recomputation:
    """One recomputed call: how many tensors its forward pass saved, and their rebuilt values
    once the backward pass asks for one."""

    def __init__(self, run: Callable[..., torch.Tensor], args: tuple) -> None:
        self.run, self.args = run, args
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        self.versions = [t._version for t in tensors]
        self.devices = sorted({t.device for t in tensors if t.device.type != "cpu"}, key=str)
        # the autocast and random state the forward ran under, restored for the recomputation
        self.autocast = [
            (kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))
            for kind in sorted({"cpu", *(d.type for d in self.devices)})
        ]
        self.rng = torch.get_rng_state()
        self.cuda_rng = [torch.cuda.get_rng_state(d) for d in self.devices if d.type == "cuda"]
        self.saved = 0
        self.rebuilt: list[torch.Tensor | None] | None = None

    def pack(self, _: torch.Tensor) -> int:
        self.saved += 1
        return self.saved - 1

    def unpack(self, index: int) -> torch.Tensor:
        if self.rebuilt is None or self.rebuilt[index] is None:  # handed over: another pass
            self.rebuilt = self._recompute()  # (``retain_graph``) runs the unit again
        tensor, self.rebuilt[index] = self.rebuilt[index], None
        return cast(torch.Tensor, tensor)

    def _recompute(self) -> list[torch.Tensor | None]:
        tensors = [a for a in self.args if isinstance(a, torch.Tensor)]
        if [t._version for t in tensors] != self.versions:
            raise RuntimeError(
                "an input of a recomputed unit was modified in place after the forward pass; "
                "the unit cannot be run again on it (set model.recompute_units = False)"
            )
        rebuilt: list[torch.Tensor | None] = []

        def keep(tensor: torch.Tensor) -> None:
            rebuilt.append(tensor.detach() if tensor.requires_grad else tensor)
            if len(rebuilt) == self.saved:
                raise _Rebuilt

        cuda = [d for d in self.devices if d.type == "cuda"]
        with ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=cuda))
            torch.set_rng_state(self.rng)
            for device, state in zip(cuda, self.cuda_rng, strict=True):
                torch.cuda.set_rng_state(state, device)
            for kind, enabled, dtype in self.autocast:
                stack.enter_context(torch.autocast(kind, dtype=dtype, enabled=enabled))
            stack.enter_context(torch.enable_grad())
            stack.enter_context(saved_tensors_hooks(keep, _never))
            with suppress(_Rebuilt):
                self.run(*self.args)
        if len(rebuilt) != self.saved:
            raise RuntimeError(
                f"a recomputed unit saved {len(rebuilt)} tensors when run again, "
                f"{self.saved} the first time: it must compute the same way each time"
            )
        return rebuilt


def _never(_: None) -> torch.Tensor:
    raise RuntimeError("the recomputation's own graph is never run backward")
