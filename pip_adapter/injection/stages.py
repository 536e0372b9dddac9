"""Choosing where PIP units go: stage specs, name/regex matching, and a dry run for shapes."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from pip_adapter.config import Stage, StageEntry, check_stage_entries

__all__ = [
    "Layout",
    "Stage",
    "StageInfo",
    "default_sample_input",
    "find_feature",
    "find_spatial_size",
    "list_stages",
    "match_stages",
    "probe_stages",
]

Layout = Literal["image", "tokens"]


def _closest(pattern: str, names: Sequence[str]) -> list[str]:
    close = difflib.get_close_matches(pattern, names, n=5, cutoff=0.5)
    return close or [n for n in names if "." not in n][:8]


def match_stages(model: nn.Module, stages: Sequence[StageEntry]) -> list[tuple[str, Stage]]:
    """Resolve stage entries to ``(module name, Stage)`` pairs, in model order.

    Every entry must match at least one module (exactly by name, or by ``re.fullmatch``), and
    no module may be matched twice. Raises ValueError naming the entry and the closest names.
    """
    names = [name for name, _ in model.named_modules() if name]
    owner: dict[str, Stage] = {}
    for stage in check_stage_entries(stages):
        if stage.pattern in names:
            matched = [stage.pattern]
        else:
            try:
                regex = re.compile(stage.pattern)
            except re.error as err:
                raise ValueError(
                    f"stage {stage.pattern!r} is neither a module name nor a valid regular "
                    f"expression ({err}); closest names: {_closest(stage.pattern, names)}"
                ) from None
            matched = [name for name in names if regex.fullmatch(name)]
        if not matched:
            raise ValueError(
                f"stage {stage.pattern!r} matches no module of {type(model).__name__}; "
                f"closest names: {_closest(stage.pattern, names)}. "
                "Use pip_adapter.list_stages(model, sample_input) to see the candidates."
            )
        if stage.portion is not None:
            start, stop = stage.portion
            matched = matched[math.floor(start * len(matched)) : math.floor(stop * len(matched))]
            if not matched:
                raise ValueError(
                    f"stage {stage.pattern!r}: portion {stage.portion} keeps no module"
                )
        for name in matched:
            if name in owner:
                raise ValueError(
                    f"module {name!r} is matched by both {owner[name].pattern!r} and "
                    f"{stage.pattern!r}; each module can hold one PIP unit"
                )
            owner[name] = stage
    return [(name, owner[name]) for name in names if name in owner]


def find_feature(args: tuple, kwargs: Mapping[str, Any]) -> tuple[str | int, torch.Tensor] | None:
    """The feature a module receives: its first tensor argument (positional, then keyword)."""
    for index, value in enumerate(args):
        if isinstance(value, torch.Tensor):
            return index, value
    for key, value in kwargs.items():
        if isinstance(value, torch.Tensor):
            return key, value
    return None


def find_spatial_size(length: int, args: tuple, kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """``(H, W)`` of a ``B×L×C`` token sequence, read from a 2-int argument with ``H·W = L``."""
    for value in (*args, *kwargs.values()):
        if (
            isinstance(value, tuple | list | torch.Size)
            and len(value) == 2
            and all(isinstance(v, int | torch.SymInt) for v in value)
            and value[0] * value[1] == length
        ):
            return int(value[0]), int(value[1])
    raise ValueError(
        f"cannot find the spatial size of a token sequence of length {length}: the module "
        "must also receive its (height, width), as SwinIR's layers receive x_size"
    )


@dataclass
class StageInfo:
    """What one module received and returned during a dry run (first call; ``calls`` counts)."""

    name: str
    type: str
    input_shape: tuple[int, ...] | None
    layout: Layout | None
    spatial_size: tuple[int, int] | None
    output_shape: tuple[int, ...] | None = None
    output_layout: Layout | None = None
    calls: int = 0


def _layout(
    tensor: torch.Tensor | None, args: tuple, kwargs: Mapping[str, Any]
) -> tuple[Layout | None, tuple[int, int] | None]:
    """``("image", (H, W))`` for ``B×C×H×W``, ``("tokens", (H, W))`` for ``B×L×C`` with a
    known spatial size, else ``(None, None)``."""
    if tensor is not None and tensor.dim() == 4:
        return "image", tuple(tensor.shape[-2:])
    if tensor is not None and tensor.dim() == 3:
        try:
            return "tokens", find_spatial_size(tensor.shape[1], args, kwargs)
        except ValueError:
            pass
    return None, None


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def default_sample_input(model: nn.Module) -> torch.Tensor:
    """A ``1×3×64×64`` image on the model's device and floating dtype."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    return torch.rand(1, 3, 64, 64, device=device, dtype=dtype)


def probe_stages(
    model: nn.Module, names: Sequence[str] | None, sample_input: torch.Tensor | None = None
) -> dict[str, StageInfo]:
    """Run ``model(sample_input)`` once (eval mode, no grad) and record modules' shapes.

    ``names=None`` records every module. Entries are in call order. The model's train/eval
    flags are restored and no hook is left behind, whether the forward succeeds or not.
    """
    sample_input = default_sample_input(model) if sample_input is None else sample_input
    modules = dict(model.named_modules())
    targets = [n for n in modules if n] if names is None else list(names)
    infos: dict[str, StageInfo] = {}
    inputs: dict[str, list[tuple]] = {name: [] for name in targets}

    def before(name):
        def hook(module, args, kwargs):
            found = find_feature(args, kwargs)
            tensor = found[1] if found else None
            inputs[name].append((args, kwargs))
            if name not in infos:
                layout, size = _layout(tensor, args, kwargs)
                shape = tuple(tensor.shape) if tensor is not None else None
                infos[name] = StageInfo(name, type(module).__name__, shape, layout, size)

        return hook

    def after(name):
        def hook(module, args, kwargs, output):
            in_args, in_kwargs = inputs[name].pop()
            info = infos[name]
            if info.calls == 0:
                out = _first_tensor(output)
                info.output_shape = tuple(out.shape) if out is not None else None
                info.output_layout = _layout(out, in_args, in_kwargs)[0]
            info.calls += 1

        return hook

    handles = []
    training = {name: m.training for name, m in modules.items()}
    try:
        for name in targets:
            module = modules[name]
            handles.append(module.register_forward_pre_hook(before(name), with_kwargs=True))
            handles.append(module.register_forward_hook(after(name), with_kwargs=True))
        model.eval()
        with torch.no_grad():
            model(sample_input)
    finally:
        for handle in handles:
            handle.remove()
        for name, module in modules.items():
            module.training = training[name]
    return infos


def list_stages(
    model: nn.Module, sample_input: torch.Tensor | None = None, verbose: bool = True
) -> list[StageInfo]:
    """Candidate stages of any network: modules that received an image-like feature.

    Runs one forward pass of ``sample_input`` (default ``1×3×64×64``) and returns, in call
    order, every module whose first tensor input is ``B×C×H×W`` or a ``B×L×C`` token sequence
    with a known spatial size, with its input and output shapes. Prints them as a table when
    ``verbose``. Pick names (or regular expressions) from it for ``inject_pip(stages=...)``.
    """
    infos = probe_stages(model, None, sample_input)
    rows = [info for info in infos.values() if info.layout is not None]
    if verbose:
        width = max([len(r.name) for r in rows] + [6])
        type_width = max([len(r.type) for r in rows] + [4])
        print(f"{'module':<{width}}  {'type':<{type_width}}  {'layout':<6}  input -> output")
        for r in rows:
            shapes = f"{list(r.input_shape)} -> {list(r.output_shape or [])}"
            print(f"{r.name:<{width}}  {r.type:<{type_width}}  {r.layout:<6}  {shapes}")
    return rows
