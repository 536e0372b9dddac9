"""Reuse of values that do not depend on the input: constants and functions of parameters.

* ``constant``: small tensors that depend on sizes only (resampling matrices, rank masks),
  built once per size, device and dtype.
* ``ParameterCache``: values computed from parameters alone (e.g. the prompt-to-prompt
  queries of the learned basic prompt), reused at inference while those parameters keep their
  values.
* ``CacheGroup``: several such caches (a model's units') checked together, once per forward
  pass instead of once per value.
* ``InferenceCached``: a module holding such a cache, emptied when its mode is set.

Neither caches while a graph is traced (``torch.compile``, ``torch.export``: the graph must
compute the value from its inputs) or captured (CUDA graphs: the value would live in the
graph's memory pool).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
from torch import nn
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

__all__ = ["CacheGroup", "InferenceCached", "ParameterCache", "constant"]

T = TypeVar("T")
M = TypeVar("M", bound="InferenceCached")
_PLAIN = (torch.Tensor, nn.Parameter)  # not fake or otherwise wrapped tensors


class _Block:
    """One ``CacheGroup.checked()`` block: whether the group found every kept value current,
    and the caches asked for a value within it (the group's members from then on)."""

    def __init__(self, current: bool) -> None:
        self.current = current
        self.caches: dict[int, ParameterCache] = {}


# the CacheGroup.checked() block in progress in this thread / task
_BLOCK: ContextVar[_Block | None] = ContextVar("parameter_cache_block", default=None)


def eager() -> bool:
    """Not compiled, exported or traced: where a branch on a size or a value holds for this
    call only (a traced graph would keep it for every call)."""
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing())


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


@dataclass
class _Entry:
    # what the value was computed from, held weakly: a source made per call is freed with it
    sources: tuple[weakref.ref[torch.Tensor], ...]
    layout: tuple
    bits: dict[int, torch.Tensor]
    value: Any
    checked: _Block | None  # the CacheGroup block that found the sources holding ``bits``

    def tensors(self) -> list[torch.Tensor] | None:
        """The sources, or ``None`` once one of them is freed."""
        tensors = [source() for source in self.sources]
        return None if any(t is None for t in tensors) else cast(list[torch.Tensor], tensors)

    def same_sources(self, tensors: Sequence[torch.Tensor]) -> bool:
        """Whether ``tensors`` are the very objects the value was computed from."""
        return len(self.sources) == len(tensors) and all(
            source() is t for source, t in zip(self.sources, tensors, strict=True)
        )


class ParameterCache:
    """Values computed from parameters (and other tensors) only, reused while gradients are off.

    ``get(key, tensors, compute)`` returns ``compute()``, a function of ``tensors`` alone.
    With gradients off (``torch.no_grad``, ``torch.inference_mode``), on the CPU, outside
    tracing, the result is kept together with a copy of ``tensors``' bits, and returned again
    for as long as ``tensors`` hold the same bits (compared at every call, or once per forward
    pass for all the caches of a ``CacheGroup``): an optimiser step, ``load_state_dict``, an
    edit through ``.data`` (which no version counter sees), a dtype move or a different
    autocast setting all make it compute afresh. With gradients on it always computes, so
    training sees the graph of the computation.

    The comparison reads the tensors (one concatenation and one comparison per call), which
    is cheap on the CPU; on other devices it would wait for the device at every call, so
    there the cache is not used. The cache holds no state of the model: it is left out of
    ``state_dict`` and rebuilt on demand, and it holds its sources weakly (a source made per
    call, such as a parameter cast to the feature's dtype, is freed with the call).
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict[str, Any]:
        return {}  # kept values are no state: a copy or a pickle computes them afresh

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._entries = {}

    def clear(self) -> None:
        """Drop every kept value (frees their memory; the next call computes afresh)."""
        self._entries.clear()

    @staticmethod
    def usable(tensors: Sequence[torch.Tensor]) -> bool:
        """Whether values of ``tensors`` may be kept in this call's context."""
        return (
            not torch.is_grad_enabled()
            and eager()
            and not torch._C._are_functorch_transforms_active()  # vmap, grad: wrapped tensors
            and not is_in_torch_dispatch_mode()  # fake tensors, FLOP counting: compute it all
            and all(type(t) in _PLAIN and t.device.type == "cpu" for t in tensors)
        )

    def get(self, key: Hashable, tensors: Sequence[torch.Tensor], compute: Callable[[], T]) -> T:
        """``compute()``, or the value it returned for the same ``key`` and bits of
        ``tensors`` (with gradients off; see the class)."""
        if not self.usable(tensors):  # first: a traced graph must not read the context
            return compute()  # variable (torch.compile would guard on it at every call)
        block = _BLOCK.get()
        if block is not None:
            block.caches.setdefault(id(self), self)  # a member of the group from now on
        key = (key, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        checked = block if block is not None and block.current else None
        entry = self._entries.get(key)
        if (
            entry is not None
            and checked is not None
            and entry.checked is checked
            and entry.same_sources(tensors)
        ):
            return entry.value  # the group found its sources holding its bits
        layout = tuple((t.dtype, t.shape) for t in tensors)
        bits = _fingerprint(tensors)
        sources = tuple(weakref.ref(t) for t in tensors)
        if entry is not None and entry.layout == layout and _equal(entry.bits, bits):
            entry.sources = sources  # the same bits, maybe in other tensors
            return entry.value
        value = compute()
        self._entries[key] = _Entry(sources, layout, bits, value, checked)
        return value


class InferenceCached(nn.Module):
    """A module whose values of its parameters alone live in ``inference_cache`` (a
    ``ParameterCache``), emptied whenever its mode is set (``train()``, ``eval()``): a model put
    back in training frees them at once instead of at the next inference call."""

    def __init__(self) -> None:
        super().__init__()
        self.inference_cache = ParameterCache()

    def train(self: M, mode: bool = True) -> M:
        self.inference_cache.clear()
        return super().train(mode)


class CacheGroup:
    """Several ``ParameterCache`` (a model's units') checked together, once per forward pass.

    Within ``with group.checked():`` the tensors every kept value was computed from are
    compared with the bits kept beside the values, all at once (one concatenation and one
    comparison); where all still hold them, each cache returns its values within the block
    without a comparison of its own: one check per forward pass instead of one per unit.
    Where any differs, each cache compares its own (and computes afresh what changed). A
    value kept during the block is trusted from the next block on.

    The group's members are the caches asked for a value in its last block, so a unit
    replaced or added after the group was made joins it in the next forward pass, and one
    removed leaves it. A value whose sources were freed (made per call) is left to its cache.
    """

    def __init__(self) -> None:
        self.caches: list[ParameterCache] = []
        # the bits kept beside the values, concatenated: rebuilt when the values change
        self._kept: tuple[list[dict[int, torch.Tensor]], dict[int, torch.Tensor]] | None = None

    def checked(self) -> AbstractContextManager[None]:
        """A block in which the caches rely on one comparison of their bits (nothing while
        traced, where no cache keeps values and no context variable may be set)."""
        if torch.compiler.is_compiling():
            return contextlib.nullcontext()
        return self._checked()

    @contextlib.contextmanager
    def _checked(self) -> Iterator[None]:
        block = _Block(current=False)
        entries, tensors = [], []
        for cache in self.caches:
            for entry in cache._entries.values():
                sources = entry.tensors()
                if sources is not None:
                    entries.append(entry)
                    tensors += sources
        if tensors and ParameterCache.usable(tensors):
            layout = tuple((t.dtype, t.shape) for t in tensors)
            if layout == tuple(x for e in entries for x in e.layout) and _equal(
                _fingerprint(tensors), self._kept_bits(entries)
            ):
                block.current = True  # every kept value is current within this block
                for entry in entries:
                    entry.checked = block
        token = _BLOCK.set(block)
        try:
            yield
        finally:
            _BLOCK.reset(token)
            self.caches = list(block.caches.values())

    def _kept_bits(self, entries: list[_Entry]) -> dict[int, torch.Tensor]:
        """The entries' kept bits concatenated per element width, in the order of
        ``_fingerprint`` over their tensors."""
        bits = [entry.bits for entry in entries]
        kept = self._kept
        if kept is None or not _same_objects(kept[0], bits):
            widths = sorted({w for b in bits for w in b})
            joined = {w: torch.cat([b[w] for b in bits if w in b]) for w in widths}
            self._kept = kept = (bits, joined)
        return kept[1]


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


def _same_objects(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
