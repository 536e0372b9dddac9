"""Export an adapted network to ONNX or ``torch.export``, to run it without pip-adapter.

PIP cannot be merged into the backbone's weights: its units are modules conditioned at run time
through hooks. Export therefore traces the whole forward pass into one graph: padding to the
backbone's size multiple, the backbone with its PIP units, the crop back, and, for blind
restoration, the ``pip_adapter.DegradationSensor``. Batch, height and width stay dynamic.

Three ways to steer the exported graph:

* weights as an input (default): ``image`` (``B×3×H×W``) and ``weights`` (``B×T``, one column
  per degradation, rows normalised inside) -> ``restored``;
* baked (``degradation=``): the weights are constants, ``image`` -> ``restored``;
* blind (``sensor=True``): the sensor is in the graph, ``image`` -> ``restored`` and
  ``weights`` (what the sensor chose).

Every file is checked before it is kept: it is loaded back and run (onnxruntime, or the saved
``ExportedProgram``) on several sizes, odd ones included, and compared with the eager model.
What cannot be exported, or does not match, raises ``ExportError`` naming the operator
or the size; no file is left behind, and an existing file is replaced only with
``overwrite=True``. The graph's description (degradations, size multiple, smallest side,
steering) travels inside the file (``read_metadata``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pip_adapter._version import __version__
from pip_adapter.architectures import architecture_id
from pip_adapter.conditioning import DegradationSpec, degradation_weights
from pip_adapter.files import atomic_write
from pip_adapter.injection import PIPModel
from pip_adapter.injection.presets import required_multiple
from pip_adapter.onnx_graph import GRAPH_FORMAT, METADATA_KEY, OnnxGraph, import_onnxruntime
from pip_adapter.pooling import has_local_pooling
from pip_adapter.sensor import DegradationSensor

__all__ = [
    "METADATA_KEY",
    "ExportError",
    "read_metadata",
    "to_onnx",
    "to_torch_export",
]

GRAPH_FORMAT_VERSION = 1
DEFAULT_ATOL = 1e-4


class ExportError(ValueError):
    """The model cannot be exported, or the exported file does not match the eager model."""


# --------------------------------------------------------------------------------------------
# What is traced


class _GridSensor(nn.Module):
    """``DegradationSensor.forward`` in a form with a fixed graph for every image size.

    The eager sensor classifies up to ``n×n`` native-resolution crops (``n = crops_per_side``),
    fewer along a side shorter than ``n`` crops, mirrored out to the crop size when shorter
    than one crop, and averages their logits. Here every side always has ``n`` crop slots;
    the ``c <= n`` crops a side really has are spread over the slots, and each slot's weight
    is ``1 / (c · slots sharing its crop)``, so the weighted sum is the eager mean. Crops are
    gathered by index: positions past a short side fold back as the eager mirroring does.
    """

    def __init__(self, sensor: DegradationSensor) -> None:
        super().__init__()
        self.sensor = sensor
        self.slots = sensor.crops_per_side
        self.crop = sensor.crop_size

    def _axis(self, length: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Source indices (``slots×crop``) and slot weights (``slots``) along one side."""
        n, crop = self.slots, self.crop
        mirrored = length.clamp(min=crop)  # the eager sensor mirrors a short side out to a crop
        count = torch.minimum((mirrored + crop - 1) // crop, torch.full_like(length, n))
        slot = torch.arange(n, device=device)
        index = slot * count // n  # which of the side's crops each slot takes
        shared = (index[:, None] == index[None, :]).sum(dim=1)
        weights = 1.0 / (count * shared).float()
        span = mirrored - crop
        # round(index * span / (count - 1)) with Python's round-half-to-even, in integers
        denominator = (count - 1).clamp(min=1)
        quotient = index * span // denominator
        twice_rest = 2 * (index * span - quotient * denominator)
        round_up = (twice_rest > denominator) | ((twice_rest == denominator) & (quotient % 2 == 1))
        offsets = torch.where(count == 1, span // 2, quotient + round_up.long())
        positions = offsets[:, None] + torch.arange(crop, device=device)
        period = (2 * (length - 1)).clamp(min=1)  # mirroring folds positions back and forth
        folded = positions % period
        return torch.minimum(folded, period - folded), weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``B×T``, as ``DegradationSensor.forward``."""
        n, crop = self.slots, self.crop
        height = torch.scalar_tensor(x.shape[-2], dtype=torch.long, device=x.device)
        width = torch.scalar_tensor(x.shape[-1], dtype=torch.long, device=x.device)
        rows, row_weights = self._axis(height, x.device)
        cols, col_weights = self._axis(width, x.device)
        crops = x.index_select(2, rows.flatten()).index_select(3, cols.flatten())
        crops = crops.unflatten(2, (n, crop)).unflatten(4, (n, crop))  # B×C×n×s×n×s
        crops = crops.permute(0, 2, 4, 1, 3, 5).flatten(0, 2)  # (B·n·n)×C×s×s
        logits = self.sensor.classify_views(crops).unflatten(0, (x.shape[0], n, n))
        weights = row_weights[:, None] * col_weights[None, :]
        return (logits * weights[None, :, :, None].to(logits.dtype)).sum(dim=(1, 2))


class _Graph(nn.Module):
    """What is traced: ``model`` (and its steering) as a function of tensors only."""

    input_names: tuple[str, ...] = ("image",)
    output_names: tuple[str, ...] = ("restored",)
    steering = ""

    def __init__(self, model: PIPModel) -> None:
        super().__init__()
        self.model = model

    def example_inputs(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (image,)

    def reference(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What the eager model gives for ``inputs``, to compare the exported file with."""
        outputs = self(*inputs)
        return outputs if isinstance(outputs, tuple) else (outputs,)

    def description(self) -> dict[str, Any]:
        return {}


class _WeightsGraph(_Graph):
    """``image``, ``weights`` (``B×T``) -> ``restored``."""

    input_names = ("image", "weights")
    steering = "weights"

    def forward(self, image: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.model(image, degradation=weights)

    def example_inputs(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(image.shape[-1])
        weights = torch.rand(image.shape[0], len(self.model.degradations), generator=generator)
        return image, weights.add(0.01).to(image.device)


class _BakedGraph(_Graph):
    """``image`` -> ``restored``, steered by constant weights."""

    steering = "baked"
    weights: torch.Tensor  # a buffer: the baked 1×T weights

    def __init__(self, model: PIPModel, degradation: DegradationSpec) -> None:
        super().__init__(model)
        if (
            isinstance(degradation, Sequence)
            and not isinstance(degradation, str)
            and len(degradation) != 1
        ):
            raise ValueError(
                "degradation= bakes one steering into the graph, for every image: give a "
                f"name, a {{name: weight}} mixture or 1×T weights, not {len(degradation)} "
                f"names; valid names: {list(model.degradations)}"
            )
        device = next(model.parameters()).device
        weights = degradation_weights(degradation, model.degradations, 1, device)
        self.register_buffer("weights", weights, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image, degradation=self.weights.expand(image.shape[0], -1))

    def description(self) -> dict[str, Any]:
        row = self.weights[0].tolist()
        return {"baked": {n: w for n, w in zip(self.model.degradations, row, strict=True) if w}}


class _BlindGraph(_Graph):
    """``image`` -> ``restored``, ``weights``: the sensor in the graph steers the model."""

    output_names = ("restored", "weights")
    steering = "sensor"

    def __init__(self, model: PIPModel, sensor: DegradationSensor) -> None:
        super().__init__(model)
        self.sensor = sensor
        self.grid_sensor = _GridSensor(sensor)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.sensor.weights_from_logits(self.grid_sensor(image))
        return self.model(image, degradation=weights), weights

    def reference(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (image,) = inputs
        weights = self.sensor.predict_weights(image)
        return self.model(image, degradation=weights), weights

    def description(self) -> dict[str, Any]:
        return {"sensor": self.sensor.config()}


def _graph_for(
    model: PIPModel, degradation: DegradationSpec | None, sensor: bool | nn.Module
) -> _Graph:
    """The graph to trace for the steering the caller asked for (validated)."""
    if not isinstance(model, PIPModel):
        raise TypeError(
            f"export takes a PIPModel (from inject_pip or load_adapter), got {type(model).__name__}"
        )
    if has_local_pooling(model):
        raise ValueError(
            "local pooling is applied to the model: its windows follow each input's size, "
            "which a traced graph does not; remove() its handle before exporting"
        )
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        raise ValueError(
            f"export runs in float32 (the file is checked against the eager model to 1e-4); "
            f"the model has {sorted(map(str, dtypes))} parameters: call model.float() first"
        )
    if sensor is False or sensor is None:
        if degradation is None:
            return _WeightsGraph(model)
        return _BakedGraph(model, degradation)
    if degradation is not None:
        raise ValueError(
            "give degradation= (weights baked into the graph) or sensor= (the sensor in the "
            "graph chooses them), not both"
        )
    if sensor is True:
        if model.sensor is None:
            raise ValueError(
                "sensor=True exports model.sensor, but the model has none; train one "
                "(pip_adapter.training.train_sensor) or pass sensor=a DegradationSensor"
            )
        sensor = model.sensor
    if not isinstance(sensor, DegradationSensor):
        raise TypeError(
            "a blind graph needs a pip_adapter.DegradationSensor (its fixed crops can be "
            f"traced for every image size), got {type(sensor).__name__}"
        )
    if tuple(sensor.degradations) != tuple(model.degradations):
        raise ValueError(
            f"the sensor predicts {list(sensor.degradations)} but the model's degradations are "
            f"{list(model.degradations)}"
        )
    if set(sensor.scale_weights) != {1.0}:
        raise ValueError(
            "a blind graph traces the sensor's native-scale crops only; this sensor also judges "
            f"zoomed copies (scale_weights={sensor.scale_weights}): set its scale_weights to "
            "{1.0: 1.0} to export it, or export with degradation= or without a sensor"
        )
    return _BlindGraph(model, sensor)


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode inside, and every submodule's own mode restored after: each flag is set on
    its module alone, since ``train()`` recurses and a wrapper restored after a module it
    shares (the blind graph holds the sensor twice) would put that module in training mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


# --------------------------------------------------------------------------------------------
# Tracing


_OPERATOR = re.compile(r"\b(?:aten|prims|torch\.ops\.[\w]+|[\w]+::)[.:]*[\w.]+")


def _failure(stage: str, err: Exception) -> ExportError:
    """An ExportError that names the operator the exporter choked on, where it says."""
    text = str(err)
    operators = sorted({m.group(0).rstrip(".") for m in _OPERATOR.finditer(text)})
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    summary = lines[0] if lines else type(err).__name__
    where = f"operator {', '.join(operators[:3])}: " if operators else ""
    return ExportError(f"{stage} failed at {where}{summary}"[:600])


@dataclass
class _Traced:
    """A traced graph and the image sizes it takes: every side from ``min_side`` on, and any
    batch size, or only ``batch`` where the model's code fixes it."""

    program: torch.export.ExportedProgram
    min_side: int
    batch: int | None


def _sample(graph: _Graph, multiple: int, batch: int) -> torch.Tensor:
    """A traced image: odd sides, large enough for every level of a U-Net."""
    side = 4 * max(multiple, 16) + 3
    device = next(graph.parameters()).device
    return torch.rand(batch, 3, side, side + 2 * multiple + 22, device=device)


def _dynamic_shapes(graph: _Graph, multiple: int, dynamic_batch: bool) -> dict[str, Any]:
    auto = torch.export.Dim.AUTO
    image: dict[int, Any] = {2: auto(min=multiple), 3: auto(min=multiple)}
    if dynamic_batch:
        image[0] = auto
    shapes: dict[str, Any] = {"image": image}
    if "weights" in graph.input_names:
        shapes["weights"] = {0: auto} if dynamic_batch else {}
    return shapes


def _window_reverse(
    windows: torch.Tensor, window_size: int, height: int, width: int
) -> torch.Tensor:
    """Swin's ``window_reverse`` (``(B·n)×s×s×C`` windows back to ``B×H×W×C``) with the batch
    left to the reshape: the networks compute it with ``int()``, which fixes a traced batch."""
    rows, cols, channels = height // window_size, width // window_size, windows.shape[-1]
    grid = windows.view(-1, rows, cols, window_size, window_size, channels)
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


@contextlib.contextmanager
def _traceable_swin(network: nn.Module) -> Iterator[None]:
    """A Swin network (SwinIR, Swin2SR, HAT) while it is traced: each transformer block that
    keeps the mask of its training size computes its attention mask for the size at hand
    (eager, it reuses the stored one when the sizes are equal, and the mask is the same; the
    size comparison would fix the graph to one of its outcomes), and windows are merged back
    without ``int()`` (``_window_reverse``). Everything is put back after."""
    code: Any = sys.modules[type(network).__module__]  # the network's source module
    blocks: list[Any] = [
        m
        for m in network.modules()
        if hasattr(m, "calculate_mask") and hasattr(m, "input_resolution")
    ]
    sizes = [block.input_resolution for block in blocks]
    merge = getattr(code, "window_reverse", None)
    try:
        for block in blocks:
            block.input_resolution = None
        if merge is not None:
            code.window_reverse = _window_reverse
        yield
    finally:
        if merge is not None:
            code.window_reverse = merge
        for block, size in zip(blocks, sizes, strict=True):
            block.input_resolution = size


# spandrel networks whose code tracing would fix to one image size or batch, keyed by
# spandrel's architecture id: how to trace them in an equivalent form
TRACEABLE_FORMS: dict[str, Callable[[nn.Module], contextlib.AbstractContextManager]] = {
    "SwinIR": _traceable_swin,
    "Swin2SR": _traceable_swin,
    "HAT": _traceable_swin,
}


def _traceable(backbone: nn.Module) -> contextlib.AbstractContextManager:
    """The backbone's traceable form while tracing (``TRACEABLE_FORMS``), if it needs one."""
    form = TRACEABLE_FORMS.get(architecture_id(backbone) or "")
    return form(backbone) if form is not None else contextlib.nullcontext()


def _size_oblivious() -> contextlib.AbstractContextManager:
    """Trace without guarding on sizes being 0 or 1 (memory-format and contiguity checks would
    otherwise restrict the program to the sizes' classes seen in tracing). A private switch of
    ``torch.fx.experimental``, documented as meant for export."""
    from torch.fx.experimental import _config

    return _config.patch(backed_size_oblivious=True)  # type: ignore[attr-defined]


def _export(graph: _Graph, multiple: int, dynamic_batch: bool) -> torch.export.ExportedProgram:
    inputs = graph.example_inputs(_sample(graph, multiple, 2 if dynamic_batch else 1))
    shapes = _dynamic_shapes(graph, multiple, dynamic_batch)
    try:
        with torch.no_grad(), _size_oblivious(), _traceable(graph.model.backbone):
            program = torch.export.export(graph, inputs, dynamic_shapes=shapes)
    except Exception as err:
        raise _failure("torch.export", err) from err
    image = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == image)
    for axis, name in ((2, "height"), (3, "width")):
        size = node.meta["val"].shape[axis]
        if not isinstance(size, torch.SymInt) or size.node.expr.is_number:
            raise ExportError(
                f"tracing fixed the image {name} to {int(size)}: the model's code turns that "
                "size into a Python number (e.g. int(x.shape[2])), so the graph would only take "
                "that size"
            )
    return program


def _accepts(module: nn.Module, graph: _Graph, batch: int, height: int, width: int) -> bool:
    """Whether the exported program's guards (the sizes its tracing assumed) admit a size."""
    device = next(graph.parameters()).device
    inputs = graph.example_inputs(torch.rand(batch, 3, height, width, device=device))
    try:
        with torch.no_grad():
            module(*inputs)
    except AssertionError as err:  # torch.export reports a failed guard so
        if str(err).startswith("Guard failed"):
            return False
        raise
    except RuntimeError:  # an operator that cannot take so small an input
        return False
    return True


_SIZE_SOURCE = re.compile(r"L\['\w+'\]\.size\(\)\[\d+\]")


def _admit_single_image(
    program: torch.export.ExportedProgram, graph: _Graph, size: tuple[int, int], atol: float
) -> nn.Module | None:
    """``program``, traced on a batch of two, made to take a single image too where only
    guards on the batch size alone refuse one, if it then gives the eager model's result;
    else None.

    Such guards (``batch != 1``, ``batch > 1``) record memory layout, not values: whether a
    tensor is contiguous (a chunk of channels, as in Restormer's attention, is contiguous for
    one image only) or which memory format a convolution's input has (torch infers it from
    strides, ambiguous for one image: SwinIR's transposed feature maps), so tracing notes the
    case it saw. The operations are the same for one image: the program's batch range is
    widened to 1 and those guards are dropped, then its result on one image is compared with
    the eager model (as the file check does again).
    """
    image = graph.input_names[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == image)
    batch = node.meta["val"].shape[0]
    if not isinstance(batch, torch.SymInt) or batch.node.expr not in program.range_constraints:
        return None
    symbol = batch.node.expr
    from torch.utils._sympy.value_ranges import ValueRanges

    program.range_constraints[symbol] = ValueRanges(1, program.range_constraints[symbol].upper)
    batch_size = f"L['{image}'].size()[0]"
    guards = getattr(program, "_guards_code", None)  # checked by program.module()
    if guards is not None:
        program._guards_code = [g for g in guards if set(_SIZE_SOURCE.findall(g)) != {batch_size}]
    module = program.module()
    if not _accepts(module, graph, 1, *size):
        return None
    device = next(graph.parameters()).device
    inputs = graph.example_inputs(torch.rand(1, 3, *size, device=device))
    with torch.no_grad():
        expected = graph.reference(*inputs)
        got = _as_tuple(module(*inputs))
    if any((a - b).abs().max().item() > atol for a, b in zip(got, expected, strict=True)):
        return None
    return module


def _trace(graph: _Graph, multiple: int, atol: float) -> _Traced:
    """``torch.export`` of ``graph`` with dynamic batch, height and width, and the sizes the
    program really takes, probed on its guards: the smallest side, and the batch. A program
    refused a single image by layout guards alone is widened to take it
    (``_admit_single_image``); where the model's code turns the batch size into a number,
    the graph is traced again for a fixed batch of 1."""
    program = _export(graph, multiple, dynamic_batch=True)
    module: nn.Module = program.module()
    size = (2 * max(multiple, 16) + 1, 2 * max(multiple, 16) + 1 + multiple)
    if not _accepts(module, graph, 1, *size) and _accepts(module, graph, 3, *size):
        module = _admit_single_image(program, graph, size, atol) or module
    batch: int | None = None
    if not all(_accepts(module, graph, b, *size) for b in (1, 3)):
        program, batch = _export(graph, multiple, dynamic_batch=False), 1
        module = program.module()
    lower = max(multiple, 1)
    min_side = next(
        (s for s in range(lower, lower + 256) if _accepts(module, graph, 1, s, s)), None
    )
    if min_side is None:
        raise ExportError(f"the exported program takes no image from {lower} to {lower + 255} px")
    step = max(multiple, 1)
    for height, width in [(min_side + k, min_side + 3 * k + 1) for k in range(0, 8 * step, step)]:
        if not _accepts(module, graph, batch or 1, height, width):
            raise ExportError(
                f"the exported program refuses a {height}×{width} image (its tracing assumed "
                "something about the image size that does not hold there: the model's code "
                "branches on the size)"
            )
    return _Traced(program, min_side, batch)


# --------------------------------------------------------------------------------------------
# Checking the written file against the eager model


def _check_sizes(graph: _Graph, traced: _Traced) -> list[tuple[int, int, int]]:
    """``(batch, height, width)`` to compare on: odd sides, a batch of 2 (where the batch is
    free), and for a sensor a side shorter than one crop and one longer than its grid."""
    side = max(traced.min_side, 16)
    pair = traced.batch or 2
    sizes = [(1, side + 7, side + 18), (pair, side + 16, side + 1), (1, 2 * side + 3, side + 9)]
    if isinstance(graph, _BlindGraph):
        crop, count = graph.sensor.crop_size, graph.sensor.crops_per_side
        short = max(traced.min_side, crop - 5)
        sizes += [(1, short, crop * count + 11), (1, crop + 1, short + 2)]
    return sizes


def _compare(
    graph: _Graph,
    run: Callable[[tuple[torch.Tensor, ...]], Sequence[Any]],
    traced: _Traced,
    atol: float,
    what: str,
) -> None:
    """Run the exported graph (``run``) and the eager model on every check size."""
    device = next(graph.parameters()).device
    generator = torch.Generator().manual_seed(0)
    for batch, height, width in _check_sizes(graph, traced):
        image = torch.rand(batch, 3, height, width, generator=generator).to(device)
        inputs = graph.example_inputs(image)
        with torch.no_grad():
            expected = graph.reference(*inputs)
            try:
                got = run(inputs)
            except Exception as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                raise ExportError(
                    f"{what} fails on a {batch}×3×{height}×{width} image: {first}"[:600]
                ) from err
        for name, want, have in zip(graph.output_names, expected, got, strict=True):
            have = torch.as_tensor(have).to(want.device)
            if have.shape != want.shape:
                raise ExportError(
                    f"{what} gives {name} of shape {tuple(have.shape)} for a "
                    f"{batch}×3×{height}×{width} image, the eager model {tuple(want.shape)}"
                )
            error = (have.float() - want.float()).abs().max().item()
            if not error <= atol:
                raise ExportError(
                    f"{what} differs from the eager model by {error:.3g} (> {atol:g}) in {name} "
                    f"for a {batch}×3×{height}×{width} image"
                )


# --------------------------------------------------------------------------------------------
# Files


def _target(path: str | os.PathLike, overwrite: bool, suffix: str) -> Path:
    """The output path, checked before any work: its folder exists and it is new (or may be
    replaced)."""
    target = Path(path)
    if target.suffix.lower() != suffix:
        raise ValueError(f"the output file must end in {suffix}, got {str(target)!r}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(target.parent)!r} does not exist")
    if target.is_dir():
        raise ValueError(f"{str(target)!r} is a folder; give a file name ending in {suffix}")
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{str(target)!r} already exists; pass overwrite=True (--overwrite) to replace it"
        )
    return target


def _write_into(target: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temporary file next to ``target`` (checking it there), then move it onto
    ``target``; on any failure nothing is left (``pip_adapter.files.atomic_write``)."""
    try:
        atomic_write(target, write)
    except PermissionError as err:
        if err.filename is None or Path(err.filename).parent != target.parent:
            raise
        raise PermissionError(
            f"cannot write to folder {str(target.parent)!r}: {err.strerror}"
        ) from None


def _metadata(graph: _Graph, multiple: int, traced: _Traced) -> dict[str, Any]:
    return {
        "format": GRAPH_FORMAT,
        "format_version": GRAPH_FORMAT_VERSION,
        "library_version": __version__,
        "degradations": list(graph.model.degradations),
        # baked into the graph: what it blends of the network's output, per degradation
        "output_strength": dict(graph.model.config.output_strength),
        "blur_strength": graph.model.config.blur_strength,
        "steering": graph.steering,
        "inputs": list(graph.input_names),
        "outputs": list(graph.output_names),
        "size_multiple": multiple,
        "min_side": traced.min_side,
        "batch": traced.batch,
        **graph.description(),
    }


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The description ``to_onnx`` or ``to_torch_export`` stored in ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix.lower() == ".pt2":
        return _pt2_metadata(path)
    return OnnxGraph(path).metadata


def _pt2_metadata(path: Path) -> dict[str, Any]:
    """The description saved as the extra file ``pip_adapter.json`` of a ``.pt2`` archive
    (a zip holding it as ``*/extra/pip_adapter.json``), read without loading the program."""
    member = f"/extra/{METADATA_KEY}.json"
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(member)]
            text = archive.read(names[0]).decode() if names else ""
    except zipfile.BadZipFile:
        raise ValueError(
            f"{path} is not a .pt2 archive (torch.export.save writes zip files)"
        ) from None
    if not text:
        raise ValueError(f"{path} was not written by pip_adapter.export.to_torch_export")
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# The two formats


def _prepare(
    model: PIPModel, degradation: DegradationSpec | None, sensor: bool | nn.Module
) -> tuple[_Graph, int]:
    graph = _graph_for(model, degradation, sensor)
    return graph, required_multiple(model)


def to_torch_export(
    model: PIPModel,
    path: str | os.PathLike | None = None,
    *,
    degradation: DegradationSpec | None = None,
    sensor: bool | nn.Module = False,
    check: bool = True,
    atol: float = DEFAULT_ATOL,
    overwrite: bool = False,
) -> torch.export.ExportedProgram:
    """Export ``model`` with ``torch.export``: an ``ExportedProgram`` with dynamic shapes.

    Steering as in ``to_onnx``. With ``path`` (``.pt2``) the program is also saved, with the
    graph's description as the extra file ``pip_adapter.json``; load it with
    ``torch.export.load(path).module()``. ``check`` compares the program (the saved file, when
    there is one) with the eager model on several image sizes, odd ones included. Raises
    ExportError when tracing fails or the outputs differ by more than ``atol``; the model is
    left as it was and no file is written.
    """
    graph, multiple = _prepare(model, degradation, sensor)
    target = _target(path, overwrite, ".pt2") if path is not None else None
    programs: list[torch.export.ExportedProgram] = []

    def build(temporary: Path | None) -> None:
        traced = _trace(graph, multiple, atol)
        programs.append(traced.program)
        program = traced.program
        if temporary is not None:
            description = json.dumps(_metadata(graph, multiple, traced))
            with open(temporary, "wb") as file:
                torch.export.save(program, file, extra_files={f"{METADATA_KEY}.json": description})
            with open(temporary, "rb") as file:
                program = torch.export.load(file)
        if check:
            module = program.module()
            _compare(graph, lambda x: _as_tuple(module(*x)), traced, atol, "the exported program")

    with _evaluating(graph):
        if target is None:
            build(None)
        else:
            _write_into(target, build)
    return programs[0]


def _as_tuple(outputs: Any) -> tuple[Any, ...]:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def _onnx_program(graph: _Graph, traced: _Traced, opset: int | None, optimize: bool) -> Any:
    """The ONNX translation of a traced graph."""
    inputs = graph.example_inputs(_sample(graph, 1, traced.batch or 2))
    try:
        with contextlib.redirect_stdout(open(os.devnull, "w")):  # the exporter's progress lines
            return torch.onnx.export(
                traced.program,
                inputs,
                dynamo=True,
                input_names=list(graph.input_names),
                output_names=list(graph.output_names),
                opset_version=opset,
                verbose=False,
                optimize=optimize,
            )
    except Exception as err:
        raise _failure("ONNX conversion", err) from err


def _name_dimensions(onnx_program: Any, traced: _Traced) -> None:
    """Call the image's dynamic dimensions batch, height and width in the ONNX graph (the
    exporter names them after its internal symbols)."""
    import onnx_ir as ir

    image = traced.program.graph_signature.user_inputs[0]
    node = next(n for n in traced.program.graph.nodes if n.op == "placeholder" and n.name == image)
    shape = node.meta["val"].shape
    names = {
        str(shape[axis].node.expr): name
        for axis, name in ((0, "batch"), (2, "height"), (3, "width"))
        if isinstance(shape[axis], torch.SymInt)
    }
    graph = onnx_program.model.graph
    values = [*graph.inputs, *graph.outputs]
    values += [value for node in graph.all_nodes() for value in node.outputs]
    for value in values:
        if value.shape is None:
            continue
        dims = [
            names.get(dim.value or "", dim) if isinstance(dim, ir.SymbolicDim) else dim
            for dim in value.shape.dims
        ]
        value.shape = ir.Shape(dims)


def to_onnx(
    model: PIPModel,
    path: str | os.PathLike,
    *,
    degradation: DegradationSpec | None = None,
    sensor: bool | nn.Module = False,
    opset: int | None = None,
    check: bool = True,
    atol: float = DEFAULT_ATOL,
    overwrite: bool = False,
    optimize: bool = True,
) -> Path:
    """Export ``model`` (a PIPModel) to one ONNX file with dynamic batch, height and width.

    Steering:

    * default: inputs ``image`` (``B×3×H×W``, float32 in [0, 1]) and ``weights`` (``B×T``, one
      column per ``model.degradations``; rows are normalised in the graph);
    * ``degradation=``: a name, a ``{name: weight}`` mixture, an id or ``1×T`` weights, baked
      into the graph, whose only input is ``image``;
    * ``sensor=True`` (``model.sensor``) or ``sensor=`` a ``DegradationSensor``: blind
      restoration, input ``image``, outputs ``restored`` and the sensor's ``weights``.

    Padding to the backbone's size multiple and the crop back are in the graph. The file
    carries its description (``read_metadata``). ``check`` runs the written file with
    onnxruntime on several image sizes, odd ones included, and compares it with the eager
    model (``atol``). ``optimize`` runs onnxscript's graph optimizer (constant folding, shape
    arithmetic simplified, fusions): a smaller graph; ``False`` halves the export time of a
    large network. Raises ExportError (a ValueError) naming the operator when a part cannot
    be exported, or the size where the file disagrees; FileExistsError for an existing
    ``path`` without ``overwrite``. On any failure no file is left and the model is unchanged.
    Returns the path written.
    """
    graph, multiple = _prepare(model, degradation, sensor)
    if check:
        import_onnxruntime()
    target = _target(path, overwrite, ".onnx")

    def build(temporary: Path) -> None:
        traced = _trace(graph, multiple, atol)
        onnx_program = _onnx_program(graph, traced, opset, optimize)
        _name_dimensions(onnx_program, traced)
        description = _metadata(graph, multiple, traced)
        onnx_program.model.metadata_props[METADATA_KEY] = json.dumps(description)
        try:
            onnx_program.save(temporary, external_data=False)
        except Exception as err:
            raise _failure("writing the ONNX file", err) from err
        if check:
            runner = OnnxGraph(temporary)
            run = lambda x: runner(*(t.cpu().numpy() for t in x))  # noqa: E731
            _compare(graph, run, traced, atol, "the ONNX file")

    with _evaluating(graph):
        _write_into(target, build)
    return target
