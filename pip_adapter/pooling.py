"""Local pooling at inference: a network's global average pools made box means over a window.

A restoration network trained on small crops and run on a whole photo sees, in every global
average pool (NAFNet's simplified channel attention, a squeeze-excitation), the statistics of
the whole photo instead of those of a crop: the train/test inconsistency of Chu et al. 2022,
"Improving Image Restoration by Revisiting Global Information Aggregation" (TLC). Their remedy,
without retraining: at test time each pool becomes a mean over a local window around every
pixel, of about the training crop's size.

``local_pooling(model, window)`` does this by handle: it swaps every
``nn.AdaptiveAvgPool2d(1)`` of the network for a ``LocalAveragePool`` and returns a handle
whose ``remove()`` puts the original modules back (the weights are never touched). The window
is given in input pixels and scaled to each pool's resolution; where it covers the feature the
pool is the original global one, bit for bit.
"""

from __future__ import annotations

import operator
from types import TracebackType
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["EDGES", "LocalAveragePool", "LocalPooling", "local_pooling"]


def _is_global_pool(module: nn.Module) -> bool:
    """An average pool onto one value per channel."""
    size = getattr(module, "output_size", None)
    return isinstance(module, nn.AdaptiveAvgPool2d) and size in (1, (1, 1), [1, 1])


class LocalAveragePool(nn.Module):
    """A box mean over ``window`` input pixels in place of the global ``pool``.

    The window is scaled to this feature's resolution by the ratio of its size to the input's
    (``input_size``, read from the handle at each call); each output pixel is the mean of the
    window around it (``edges`` says how at the borders). Where the window covers the feature,
    ``pool`` itself runs.
    """

    def __init__(self, pool: nn.Module, handle: LocalPooling) -> None:
        super().__init__()
        self.pool = pool
        self._handle = (handle,)  # a tuple: not a submodule, so not in the network's modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        handle = self._handle[0]
        if handle.input_size is None:
            raise RuntimeError(
                "local pooling scales its window by the network's input size: call the network "
                "local_pooling() was applied to, not one of its modules alone"
            )
        height, width = x.shape[-2:]
        input_height, input_width = handle.input_size
        rows = min(height, max(1, round(handle.window * height / input_height)))
        cols = min(width, max(1, round(handle.window * width / input_width)))
        if (rows, cols) == (height, width):
            return self.pool(x)
        return _box_means(x, rows, cols, handle.edges)


def _box_means(x: torch.Tensor, rows: int, cols: int, edges: str) -> torch.Tensor:
    """The mean of the ``rows×cols`` window around every pixel of ``x``, from running sums
    along each axis in turn: the cost does not grow with the window, and sums over one line
    taken about the feature's mean keep even small windows exact in float32. At the borders,
    ``"shift"`` moves the window inside the feature (TLC: the valid means, replicate-padded
    back to ``x``'s size); ``"replicate"`` keeps it centred over the border pixels, repeated."""
    top, left = (rows - 1) // 2, (cols - 1) // 2
    padding = (left, cols - 1 - left, top, rows - 1 - top)
    dtype = x.dtype
    if edges == "replicate":
        x = F.pad(x, padding, mode="replicate")
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    level = x.mean(dim=(-2, -1), keepdim=True)  # summed about it, the sums stay small
    sums = x - level
    for dim, size in ((-2, rows), (-1, cols)):
        running = F.pad(sums.cumsum(dim), (1, 0) if dim == -1 else (0, 0, 1, 0))
        length = running.shape[dim]
        sums = running.narrow(dim, size, length - size) - running.narrow(dim, 0, length - size)
    means = sums / (rows * cols) + level
    if edges == "shift":
        means = F.pad(means, padding, mode="replicate")
    return means.to(dtype)


class LocalPooling:
    """The handle of ``local_pooling``: ``remove()`` restores the network's global pools; also a
    context manager (removed on exit). ``window`` may be changed while applied."""

    def __init__(self, network: nn.Module, window: int, edges: str, pools: list[str]) -> None:
        self.network = network
        self.window = window  # checked by the setter
        self.edges = edges
        self.pools = pools  # qualified names of the swapped pools
        self.input_size: tuple[int, int] | None = None
        self._hook: RemovableHandle | None = None

    @property
    def window(self) -> int:
        """The window's side in input pixels."""
        return self._window

    @window.setter
    def window(self, window: int) -> None:
        try:  # any integer type (numpy's too), not a float or a bool
            pixels = None if isinstance(window, bool) else operator.index(window)
        except TypeError:
            pixels = None
        if pixels is None or pixels < 1:
            raise ValueError(f"window must be a positive number of input pixels, got {window!r}")
        self._window = pixels

    def _record_input(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Keep the size of the network's input image (its first 4-D tensor argument)."""
        values = (*args, *kwargs.values())
        image = next((a for a in values if isinstance(a, torch.Tensor) and a.dim() == 4), None)
        if image is not None:
            self.input_size = (image.shape[-2], image.shape[-1])

    def remove(self) -> None:
        """Put the original global pools back; a second call does nothing."""
        if self._hook is None:
            return
        for name in self.pools:
            local = cast(LocalAveragePool, self.network.get_submodule(name))
            self.network.set_submodule(name, local.pool)
        self._hook.remove()
        self._hook = None

    def __enter__(self) -> LocalPooling:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.remove()


def has_local_pooling(module: nn.Module) -> bool:
    """Whether local pooling is applied somewhere in ``module`` (a ``LocalAveragePool`` in it)."""
    return any(isinstance(m, LocalAveragePool) for m in module.modules())


def _restoration_network(model: nn.Module) -> nn.Module:
    """The network whose pools are made local: the backbone of the PIPModel that ``model`` is
    or wraps (``torch.compile``, a container), since its sensor classifies the whole image by
    design; else ``model``."""
    from pip_adapter.injection import PIPModel

    pip = next((m for m in model.modules() if isinstance(m, PIPModel)), None)
    return model if pip is None else pip.backbone


EDGES = ("replicate", "shift")  # the first is the default: chosen on validation photos


def local_pooling(model: nn.Module, window: int, edges: str = EDGES[0]) -> LocalPooling:
    """Make every global average pool (``nn.AdaptiveAvgPool2d(1)``) of ``model`` a mean over
    ``window`` input pixels around each pixel, for inference on images larger than the
    training crops (TLC, Chu et al. 2022); returns the handle that undoes it (``remove()``).
    ``edges``: where the window meets the border, ``"replicate"`` keeps it centred over the
    border pixels repeated, ``"shift"`` moves it inside (TLC's choice; the validation photos
    of docs/benchmarks/local_pooling.md preferred the first).

    For a PIPModel, or a module wrapping one, the pools of its backbone (not of its sensor).
    A pool must feed a per-pixel consumer (a 1×1 convolution, a product with the feature), as
    channel attention does; one that feeds a classifier (flatten, linear) cannot be made local.
    The handle (``LocalPooling``) lists the swapped pools (``pools``), takes a new ``window``
    while applied, and is a context manager; the weights and ``state_dict`` keys are unchanged.
    For PyTorch inference: export refuses a model with it applied (``remove()`` it first).
    Raises without changing ``model`` if ``window`` is not a positive number of pixels, if
    ``model`` has no such pool, or if local pooling is already applied. Measured on the
    quality benchmark's network: docs/benchmarks/local_pooling.md.
    """
    if edges not in EDGES:
        raise ValueError(f"edges must be one of {EDGES}, got {edges!r}")
    network = _restoration_network(model)
    if has_local_pooling(network):
        raise ValueError("local pooling is already applied to this network: remove() its handle")
    # every place a pool is registered (one module may sit at several): each is swapped
    pools = [
        name for name, m in network.named_modules(remove_duplicate=False) if _is_global_pool(m)
    ]
    if not pools:
        raise ValueError(
            f"{type(network).__name__} has no global average pool (nn.AdaptiveAvgPool2d(1)) "
            "to make local"
        )
    handle = LocalPooling(network, window, edges, pools)  # checks the window
    for name in pools:
        network.set_submodule(name, LocalAveragePool(network.get_submodule(name), handle))
    handle._hook = network.register_forward_pre_hook(handle._record_input, with_kwargs=True)
    return handle
