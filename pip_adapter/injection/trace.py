"""Dry runs of a backbone, seen from every module: what each module receives and returns, in
which layout, how often, and which inputs merge a skip connection.

The backbone runs on two inputs of different sizes. A tensor is a feature when its spatial
dimensions follow the input's by one fixed factor in both runs while its channels stay put;
where they sit tells the layout: ``B×C×H×W`` (``"image"``), ``B×H×W×C``
(``"channels_last"``) or ``B×L×C`` with ``L = H·W`` (``"tokens"``). Attention maps, windows
and pooled vectors do not follow the input that way and are not features. During the first
run a ``TorchFunctionMode`` records when every tensor was made and which concatenations and
sums merge a feature map that began before the resolution dropped (a skip connection of a
U-shaped network) with one made after.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "Feature",
    "Layout",
    "ModuleTrace",
    "Trace",
    "find_feature",
    "find_spatial_size",
    "token_grid",
    "trace_backbone",
]

Layout = Literal["image", "channels_last", "tokens"]
LAYOUTS: tuple[Layout, ...] = ("image", "channels_last", "tokens")

# a skip connection merges features that were made before at least this share of the
# network's parameters ran at a lower resolution (a U-Net's deeper levels), not a block's
# own small multi-scale branch
SKIP_DEPTH = 0.05


def find_feature(args: tuple, kwargs: Mapping[str, Any]) -> tuple[str | int, torch.Tensor] | None:
    """The feature a module receives: its first tensor argument (positional, then keyword)."""
    for index, value in enumerate(args):
        if isinstance(value, torch.Tensor):
            return index, value
    for key, value in kwargs.items():
        if isinstance(value, torch.Tensor):
            return key, value
    return None


def find_spatial_size(
    length: int, args: tuple, kwargs: Mapping[str, Any]
) -> tuple[int, int] | None:
    """``(H, W)`` of a ``B×L×C`` token sequence from a 2-int argument with ``H·W = L``."""
    for value in (*args, *kwargs.values()):
        if (
            isinstance(value, tuple | list | torch.Size)
            and len(value) == 2
            and all(isinstance(v, int | torch.SymInt) for v in value)
            and value[0] * value[1] == length
        ):
            return value[0], value[1]  # kept symbolic under torch.export (no specialising)
    return None


def token_grid(length: int, image_size: tuple[int, int]) -> tuple[int, int] | None:
    """``(h, w)`` of ``length`` tokens that tile an image of ``image_size`` at one scale in
    both directions (``h / w = H / W``), or None if no such grid exists."""
    height, width = image_size
    h = math.isqrt(length * height // width)
    for candidate in (h, h + 1):
        if (
            candidate
            and length % candidate == 0
            and candidate * width == height * (length // candidate)
        ):
            return candidate, length // candidate
    return None


@dataclass(frozen=True)
class Feature:
    """A tensor a module received or returned, as the dry runs saw it.

    ``shape`` is from the first run. ``layout``, ``channels`` and ``size`` (``(h, w)`` in the
    first run) are set when the tensor is a feature of one layout; ``problem`` says why a
    tensor that looks like a feature cannot hold a unit (layout ambiguous, token grid
    unknown). ``size_from`` says where a token sequence's ``(H, W)`` comes from when the
    model runs: a 2-int ``"argument"`` of the module, or the ``"input"`` image's shape.
    """

    shape: tuple[int, ...]
    layout: Layout | None = None
    channels: int | None = None
    size: tuple[int, int] | None = None
    size_from: Literal["argument", "input"] | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.layout is not None and self.problem is None


@dataclass
class ModuleTrace:
    """One module in the dry runs: its first call's input and output features, how often it
    ran, its parameter counts (its own, and with its submodules'), the clock at its first
    call, and (``skip``) the channel span ``(start, stop)`` of its input that a skip
    connection brought, when that input merges one."""

    name: str
    type: str
    calls: int = 0
    input: Feature | None = None
    output: Feature | None = None
    own_parameters: int = 0
    parameters: int = 0
    skip: tuple[int, int] | None = None
    time: int = -1


@dataclass
class Trace:
    """The dry runs of a backbone: its modules in call order, what it returned (first run)
    and the input sizes used."""

    modules: dict[str, ModuleTrace]
    output: Any
    input_sizes: list[tuple[int, int]]
    parameters: int = 0
    runs: int = 2


@dataclass
class _Merge:
    """A concatenation (along ``dim``) or a sum made at ``time`` from parts whose feature
    maps began at ``roots`` (``sizes`` along ``dim``, for concatenations)."""

    kind: Literal["cat", "add"]
    dim: int | None
    sizes: list[int]
    roots: list[int]
    time: int


_CATS = {"cat", "concat", "concatenate"}
_ADDS = {"add", "add_", "__add__", "__radd__", "__iadd__"}
# calls that act on each element alone: a merge passes through them unchanged
_ELEMENTWISE = {
    "relu",
    "relu_",
    "gelu",
    "silu",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "mish",
    "sigmoid",
    "tanh",
    "hardtanh",
    "relu6",
    "dropout",
    "contiguous",
    "clone",
    "float",
    "to",
}


class _Provenance(TorchFunctionMode):
    """Records where every tensor's feature map began and the concatenations and same-shape
    sums, following a merge through elementwise calls (an activation, ``contiguous``) to the
    module that receives it.

    A clock ticks once per torch call. A tensor's ``root`` is the time its feature map began:
    a call that keeps the grid of its input (all dimensions but at most one, the channels,
    unchanged: a convolution, a norm, a skip path's 1×1 conv) passes the input's root on; a
    call that merges several such inputs (a concatenation, a sum) takes the latest of their
    roots, so a merged feature is as new as its newest part; a call that changes the grid
    (down- and upsampling, reshapes) starts a new one. The network's input has root -1;
    parameters are not features.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = 0
        self.roots: dict[int, int] = {}
        self.merges: dict[int, _Merge] = {}
        self._alive: list[torch.Tensor] = []  # keeps ids unique for the run

    def root_of(self, tensor: torch.Tensor) -> int:
        if isinstance(tensor, nn.Parameter):
            return self.clock
        return self.roots.get(id(tensor), -1)

    @staticmethod
    def _same_grid(a: torch.Tensor, b: torch.Tensor) -> bool:
        return (
            a.dim() == b.dim() and sum(x != y for x, y in zip(a.shape, b.shape, strict=True)) <= 1
        )

    def _made(self, out: Any, inputs: list[torch.Tensor]) -> None:
        for tensor in out if isinstance(out, tuple | list) else (out,):
            if not isinstance(tensor, torch.Tensor):
                continue
            roots = [self.root_of(t) for t in inputs if self._same_grid(t, tensor)]
            root = max(roots) if roots else self.clock
            if id(tensor) not in self.roots:
                self._alive.append(tensor)
            self.roots[id(tensor)] = min(root, self.roots.get(id(tensor), root))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.clock += 1
        inputs = [
            t
            for value in (*args, *kwargs.values())
            for t in (value if isinstance(value, list | tuple) else (value,))
            if isinstance(t, torch.Tensor) and not isinstance(t, nn.Parameter)
        ]
        self._made(out, inputs)
        if not isinstance(out, torch.Tensor):
            return out
        name = getattr(func, "__name__", "")
        merge = None
        if name in _CATS:
            parts = args[0] if args else kwargs.get("tensors", ())
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            tensors = [t for t in parts if isinstance(t, torch.Tensor)]
            if len(tensors) > 1:
                dim = dim % out.dim()
                sizes = [t.shape[dim] for t in tensors]
                merge = _Merge("cat", dim, sizes, [self.root_of(t) for t in tensors], self.clock)
        elif name in _ADDS and len(args) >= 2:
            a, b = args[0], args[1]
            if (
                isinstance(a, torch.Tensor)
                and isinstance(b, torch.Tensor)
                and (a.shape == b.shape == out.shape)
            ):
                merge = _Merge("add", None, [], [self.root_of(a), self.root_of(b)], self.clock)
        elif (
            name in _ELEMENTWISE
            and len(inputs) == 1
            and inputs[0].shape == out.shape
            and id(inputs[0]) in self.merges
        ):
            merge = self.merges[id(inputs[0])]
        if merge is not None:
            self.merges[id(out)] = merge
        return out


@dataclass
class _Call:
    """What one module's first call received and returned in one run."""

    input_shape: tuple[int, ...] | None = None
    input_grid: tuple[int, int] | None = None
    output_shape: tuple[int, ...] | None = None
    output_grid: tuple[int, int] | None = None
    calls: int = 0
    order: int = -1


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def _run(
    backbone: nn.Module,
    call: Callable[[nn.Module, torch.Tensor], Any],
    sample: torch.Tensor,
    provenance: _Provenance | None,
    names: Sequence[str] | None,
) -> tuple[dict[str, _Call], Any, dict[str, dict[str, Any]]]:
    """One dry run (eval mode, no grad) seen from ``names`` (default: every module): per
    module, its first call's shapes; the output; and, with ``provenance``, per module the
    clock at its first call and its input's merge."""
    everything = dict(backbone.named_modules())
    modules = {n: everything[n] for n in names} if names is not None else everything
    modules.pop("", None)
    calls: dict[str, _Call] = {name: _Call() for name in modules}
    pending: dict[str, list[tuple]] = {name: [] for name in modules}
    seen: dict[str, dict[str, Any]] = {}
    claimed: set[int] = set()
    started = [0]

    def before(name):
        def hook(module, args, kwargs):
            pending[name].append((args, kwargs))
            record = calls[name]
            if record.order >= 0:
                return
            record.order = started[0]
            started[0] += 1
            found = find_feature(args, kwargs)
            if found is None:
                return
            tensor = found[1]
            record.input_shape = tuple(tensor.shape)
            if tensor.dim() == 3:
                record.input_grid = find_spatial_size(tensor.shape[1], args, kwargs)
            if provenance is not None:
                merge = provenance.merges.get(id(tensor))
                if merge is not None and id(tensor) in claimed:
                    merge = None  # an outer module received it first
                if merge is not None:
                    claimed.add(id(tensor))
                seen[name] = {"time": provenance.clock, "merge": merge}

        return hook

    def after(name):
        def hook(module, args, kwargs, output):
            in_args, in_kwargs = pending[name].pop()
            record = calls[name]
            if record.calls == 0:
                out = _first_tensor(output)
                if out is not None:
                    record.output_shape = tuple(out.shape)
                    if out.dim() == 3:
                        record.output_grid = find_spatial_size(out.shape[1], in_args, in_kwargs)
            record.calls += 1

        return hook

    handles = []
    training = {name: m.training for name, m in backbone.named_modules()}
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(before(name), with_kwargs=True))
            handles.append(module.register_forward_hook(after(name), with_kwargs=True))
        backbone.eval()
        with torch.no_grad():
            if provenance is None:
                output = call(backbone, sample)
            else:
                with provenance:
                    output = call(backbone, sample)
    finally:
        for handle in handles:
            handle.remove()
        for name, module in backbone.named_modules():
            module.training = training[name]
    return calls, output, seen


def _follows(grids: Sequence[tuple[int, int]], sizes: Sequence[tuple[int, int]]) -> bool:
    """Whether feature grids follow the input sizes: across two runs, by one factor in both
    directions, up to a constant margin (networks that pad or crop inside, e.g. RealCUGAN's
    unpadded convolutions); from one run, exactly proportionally."""
    if any(h <= 0 or w <= 0 for h, w in grids):
        return False
    if len(grids) == 1:
        (h, w), (height, width) = grids[0], sizes[0]
        return Fraction(height, h) == Fraction(width, w)
    (h1, w1), (h2, w2) = grids[0], grids[-1]
    (height1, width1), (height2, width2) = sizes[0], sizes[-1]
    if h1 == h2 or w1 == w2:
        return False
    fh, fw = Fraction(height2 - height1, h2 - h1), Fraction(width2 - width1, w2 - w1)
    return fh == fw > 0


def _candidates(
    shapes: Sequence[tuple[int, ...]],
    grids: Sequence[tuple[int, int] | None],
    sizes: Sequence[tuple[int, int]],
    batch: int,
) -> list[tuple[Layout, int, tuple[int, int], str]]:
    """The layouts under which ``shapes`` (one per run) are a feature that follows the input:
    ``(layout, channels, grid in the first run, size source)``."""
    found: list[tuple[Layout, int, tuple[int, int], str]] = []
    if any(len(s) != len(shapes[0]) or s[0] != batch for s in shapes):
        return found
    if len(shapes[0]) == 4:
        layouts: tuple[tuple[Layout, tuple[int, int], int], ...] = (
            ("image", (2, 3), 1),
            ("channels_last", (1, 2), 3),
        )
        for layout, grid_dims, channel_dim in layouts:
            channels = {s[channel_dim] for s in shapes}
            spatial = [(s[grid_dims[0]], s[grid_dims[1]]) for s in shapes]
            if len(channels) == 1 and _follows(spatial, sizes):
                found.append((layout, channels.pop(), spatial[0], "image"))
    elif len(shapes[0]) == 3 and len({s[2] for s in shapes}) == 1:
        source = "argument"
        token_grids = list(grids)
        if any(g is None for g in grids):
            source = "input"
            token_grids = [token_grid(s[1], size) for s, size in zip(shapes, sizes, strict=True)]
        known = [g for g in token_grids if g is not None]
        if len(known) == len(token_grids) and _follows(known, sizes):
            found.append(("tokens", shapes[0][2], known[0], source))
    return found


def _feature(
    shapes: Sequence[tuple[int, ...] | None],
    grids: Sequence[tuple[int, int] | None],
    sizes: Sequence[tuple[int, int]],
    batch: int,
) -> Feature | None:
    """The feature seen across runs (``shapes[i]`` for input size ``sizes[i]``), or None
    when the tensor does not follow the input (or was missing in a run)."""
    if not shapes or shapes[0] is None:
        return None
    seen = [s for s in shapes if s is not None]
    if len(seen) < len(shapes):
        return Feature(shapes[0])
    candidates = _candidates(seen, grids, sizes, batch)
    if not candidates:
        return Feature(shapes[0])
    if len(candidates) > 1:
        names = " or ".join(c[0] for c in candidates)
        return Feature(
            shapes[0],
            problem=f"layout ambiguous ({names}); give a sample_input whose height and width "
            "differ from the channel count",
        )
    layout, channels, grid, source = candidates[0]
    size_from: Literal["argument", "input"] | None = None
    if layout == "tokens":
        size_from = "argument" if source == "argument" else "input"
    return Feature(shapes[0], layout, channels, grid, size_from)


def _area(feature: Feature | None) -> int | None:
    if feature is None or feature.layout is None or feature.size is None:
        return None
    return feature.size[0] * feature.size[1]


def _skip_span(
    record: ModuleTrace,
    merge: _Merge,
    timeline: Sequence[tuple[int, int, int]],
    threshold: float,
) -> tuple[int, int] | None:
    """The channel span of ``record``'s input that a skip connection brought: a part whose
    feature map began before at least ``threshold`` parameters ran at a lower resolution,
    merged after them."""
    feature = record.input
    area = _area(feature)
    if feature is None or not feature.usable or area is None or feature.channels is None:
        return None
    if feature.layout is None:
        return None
    channel_dim = {"image": 1, "channels_last": 3, "tokens": 2}[feature.layout]
    if merge.kind == "cat" and merge.dim != channel_dim:
        return None

    def deep(root: int) -> bool:
        below = sum(p for time, a, p in timeline if root < time < merge.time and a < area)
        return below >= threshold

    skips = [index for index, root in enumerate(merge.roots) if deep(root)]
    if not skips or len(skips) == len(merge.roots):
        return None
    if merge.kind == "add":
        return 0, feature.channels
    offsets = [0]
    for size in merge.sizes:
        offsets.append(offsets[-1] + size)
    start, stop = offsets[min(skips)], offsets[max(skips) + 1]
    return (start, stop) if stop - start < feature.channels else None


def _second_sample(sample: torch.Tensor, step: int) -> torch.Tensor:
    """A sample ``step`` pixels larger both ways (a square stays square), made by padding
    ``sample``; ``step`` is a multiple of the size multiple the network needs."""
    from pip_adapter.padding import pad_to_size

    height, width = sample.shape[-2:]
    return pad_to_size(sample, height + step, width + step)


def _describe(
    backbone: nn.Module,
    runs: list[dict[str, _Call]],
    sizes: list[tuple[int, int]],
    batch: int,
    seen: dict[str, dict[str, Any]],
) -> dict[str, ModuleTrace]:
    """The modules that ran, in call order, as the runs saw them."""
    modules = dict(backbone.named_modules())
    first = runs[0]
    order = sorted((name for name in first if first[name].calls), key=lambda n: first[n].order)
    traced = {}
    for name in order:
        per_run = [run[name] for run in runs]
        module = modules[name]
        traced[name] = ModuleTrace(
            name,
            type(module).__name__,
            calls=first[name].calls,
            input=_feature(
                [c.input_shape for c in per_run], [c.input_grid for c in per_run], sizes, batch
            ),
            output=_feature(
                [c.output_shape for c in per_run], [c.output_grid for c in per_run], sizes, batch
            ),
            own_parameters=sum(p.numel() for p in module.parameters(recurse=False)),
            parameters=sum(p.numel() for p in module.parameters()),
            time=seen.get(name, {}).get("time", -1),
        )
    return traced


def trace_backbone(
    backbone: nn.Module,
    call: Callable[[nn.Module, torch.Tensor], Any],
    sample: torch.Tensor,
    step: int,
    stages: Sequence[tuple[str, str]] | None = None,
) -> Trace:
    """Describe how ``call(backbone, x)`` runs (see the module docstring).

    Without ``stages``, every module is described from two runs (``sample``, and a copy
    ``step`` pixels larger both ways), and the first run records skip connections (every
    torch call is seen). With ``stages`` (``(module name, "input" | "output")`` pairs), only
    those modules are watched, and the second run happens only if one run leaves one of
    their features undecided. A backbone that fails on the second size is described from
    the first run alone (layouts that one run cannot tell apart are then reported as
    ambiguous). The backbone's train / eval flags are restored and no hook is left behind.
    """
    names = None if stages is None else list(dict.fromkeys(name for name, _ in stages))
    provenance = _Provenance() if stages is None else None
    first, output, seen = _run(backbone, call, sample, provenance, names)
    runs, sizes = [first], [(sample.shape[-2], sample.shape[-1])]
    batch = sample.shape[0]
    modules = _describe(backbone, runs, sizes, batch, seen)

    def decided(name: str, at: str) -> bool:
        record = modules.get(name)
        feature = None if record is None else (record.input if at == "input" else record.output)
        return record is None or (feature is not None and feature.usable)

    if stages is None or not all(decided(name, at) for name, at in stages):
        second = _second_sample(sample, step)
        try:
            runs.append(_run(backbone, call, second, None, names)[0])
            sizes.append((second.shape[-2], second.shape[-1]))
        except Exception:  # a network that only runs at one size: one run must do
            pass
        modules = _describe(backbone, runs, sizes, batch, seen)
    total = sum(p.numel() for p in backbone.parameters())
    if provenance is not None:
        timeline = [
            (record.time, area, record.own_parameters)
            for record in modules.values()
            if (area := _area(record.input)) is not None
        ]
        for name, record in modules.items():
            merge = seen.get(name, {}).get("merge")
            if merge is not None:
                record.skip = _skip_span(record, merge, timeline, SKIP_DEPTH * total)
    return Trace(modules, output, sizes, total, len(runs))
