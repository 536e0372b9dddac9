"""Reuse of values that do not depend on the input: constants and functions of parameters.

* ``constant``: small tensors that depend on sizes only (resampling matrices, rank masks),
  built once per size, device and dtype.
* ``ParameterCache``: values computed from parameters alone (e.g. the prompt-to-prompt
  queries of the learned basic prompt), reused at inference while those parameters keep their
  values.

Neither caches while a graph is traced (``torch.compile``, ``torch.export``: the graph must
compute the value from its inputs) or captured (CUDA graphs: the value would live in the
graph's memory pool).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

__all__ = ["ParameterCache", "constant"]

T = TypeVar("T")
_PLAIN = (torch.Tensor, nn.Parameter)  # not fake or otherwise wrapped tensors


def _tracing(like: torch.Tensor) -> bool:
    return torch.compiler.is_compiling() or (
        like.is_cuda and torch.cuda.is_current_stream_capturing()
    )


@functools.lru_cache(maxsize=256)
def _cached_constant(
    build: Callable[..., torch.Tensor], key: tuple, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    with torch.inference_mode(False):  # usable later with autograd too
        return build(*key, torch.empty(0, device=device, dtype=dtype))


def constant(
    build: Callable[..., torch.Tensor], *key: Hashable, like: torch.Tensor
) -> torch.Tensor:
    """``build(*key, like)``: a tensor on ``like``'s device and dtype that depends on ``key``
    only, built once per key, device and dtype (rebuilt every call while tracing)."""
    if _tracing(like):
        return build(*key, like)
    return _cached_constant(build, key, like.device, like.dtype)


class ParameterCache:
    """Values computed from parameters (and other tensors) only, reused while gradients are off.

    ``get(key, tensors, compute)`` returns ``compute()``, a function of ``tensors`` alone.
    With gradients off (``torch.no_grad``, ``torch.inference_mode``), on the CPU, outside
    tracing, the result is kept together with a copy of ``tensors``' bits, and returned again
    for as long as ``tensors`` hold the same bits (compared at every call): an optimiser step,
    ``load_state_dict``, an edit through ``.data`` (which no version counter sees), a dtype
    move or a different autocast setting all make it compute afresh. With gradients on it
    always computes, so training sees the graph of the computation.

    The comparison reads the tensors (one concatenation and one comparison per call), which
    is cheap on the CPU; on other devices it would wait for the device at every call, so
    there the cache is not used. The cache holds no state of the model: it is left out of
    ``state_dict`` and rebuilt on demand.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[tuple, dict[int, torch.Tensor], Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every kept value (frees their memory; the next call computes afresh)."""
        self._entries.clear()

    @staticmethod
    def usable(tensors: Sequence[torch.Tensor]) -> bool:
        """Whether values of ``tensors`` may be kept in this call's context."""
        return (
            not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing()
            and not torch._C._are_functorch_transforms_active()  # vmap, grad: wrapped tensors
            and not is_in_torch_dispatch_mode()  # fake tensors, FLOP counting: compute it all
            and all(type(t) in _PLAIN and t.device.type == "cpu" for t in tensors)
        )

    def get(self, key: Hashable, tensors: Sequence[torch.Tensor], compute: Callable[[], T]) -> T:
        """``compute()``, or the value it returned for the same ``key`` and bits of
        ``tensors`` (with gradients off; see the class)."""
        if not self.usable(tensors):
            return compute()
        key = (key, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        layout = tuple((t.dtype, t.shape) for t in tensors)
        bits = _fingerprint(tensors)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == layout and _equal(entry[1], bits):
            return entry[2]
        value = compute()
        self._entries[key] = (layout, bits, value)
        return value


_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(t: torch.Tensor) -> torch.Tensor:
    """``t``'s elements as integers of the same width: equal exactly when the bits are (unlike
    floats, where ``-0.0 == 0.0`` and ``nan != nan``)."""
    bits = _BITS.get(t.element_size())
    return t.view(bits) if bits is not None and t.dtype != bits else t


def _fingerprint(tensors: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
    """A copy of the bits of ``tensors``, concatenated per element width."""
    groups: dict[int, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.element_size(), []).append(_bits(t.detach()).reshape(-1))
    return {width: torch.cat(group) for width, group in groups.items()}


def _equal(a: dict[int, torch.Tensor], b: dict[int, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[w], b[w]) for w in a)
