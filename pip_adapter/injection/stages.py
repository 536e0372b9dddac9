"""``list_stages``: where PIP units could go in any network, as one traced dry run sees it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from pip_adapter.config import PIPConfig, Stage
from pip_adapter.injection.plan import dry_run, refusal
from pip_adapter.injection.presets import CALL_FIELDS, preset_for
from pip_adapter.injection.trace import Layout, ModuleTrace

__all__ = ["Stage", "StageInfo", "list_stages"]


@dataclass
class StageInfo:
    """One module of a dry run that received a feature: a candidate stage.

    ``layout`` is ``"image"`` (``B×C×H×W``), ``"channels_last"`` (``B×H×W×C``) or
    ``"tokens"`` (``B×L×C``); ``channels`` and ``spatial_size`` (``(h, w)``) describe the
    feature at the sample input's size; ``calls`` counts the module's calls per forward pass;
    ``depth`` is the number of dotted parts of the name. ``skip`` is the channel span
    ``(start, stop)`` of the input that a skip connection brought (all channels for a sum),
    where the dry run can tell; ``refused`` says why ``inject_pip`` would refuse the module's
    input as a stage (``None``: it would accept it).
    """

    name: str
    type: str
    input_shape: tuple[int, ...]
    layout: Layout | None
    spatial_size: tuple[int, int] | None
    output_shape: tuple[int, ...] | None = None
    output_layout: Layout | None = None
    calls: int = 0
    channels: int | None = None
    depth: int = 1
    skip: tuple[int, int] | None = None
    refused: str | None = None


def _info(record: ModuleTrace, refused: str | None) -> StageInfo:
    feature, output = record.input, record.output
    assert feature is not None
    return StageInfo(
        record.name,
        record.type,
        feature.shape,
        feature.layout,
        feature.size,
        output.shape if output is not None else None,
        output.layout if output is not None else None,
        record.calls,
        feature.channels,
        record.name.count(".") + 1,
        record.skip,
        refused,
    )


def _is_candidate(record: ModuleTrace) -> bool:
    """A module whose input is a feature, or looks like one but cannot hold a unit."""
    feature = record.input
    return feature is not None and (feature.layout is not None or feature.problem is not None)


def _print(rows: list[StageInfo]) -> None:
    def skip(row: StageInfo) -> str:
        if row.skip is None:
            return ""
        return "all" if row.skip == (0, row.channels) else f"{row.skip[0]}:{row.skip[1]}"

    table = [("module", "type", "calls", "layout", "channels", "size", "skip", "refused")]
    for r in rows:
        size = f"{r.spatial_size[0]}×{r.spatial_size[1]}" if r.spatial_size else ""
        channels = str(r.channels) if r.channels is not None else ""
        table.append(
            (
                r.name,
                r.type,
                str(r.calls),
                r.layout or "?",
                channels,
                size,
                skip(r),
                r.refused or "",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def list_stages(
    model: nn.Module,
    sample_input: torch.Tensor | None = None,
    verbose: bool = True,
    pattern: str | None = None,
    max_depth: int | None = None,
) -> list[StageInfo]:
    """Candidate stages of any network: the modules that receive a feature, in call order.

    Runs the network twice (on ``sample_input``, default a ``1×C×64×64`` image of a size the
    network accepts, and on a copy a little larger) to tell features from attention maps and to read
    each feature's layout, and records which inputs merge a skip connection. Returns a
    ``StageInfo`` per module whose input is a feature (or looks like one but cannot hold a
    unit, with the reason in ``refused``); prints them as a table when ``verbose``. Filters:
    ``pattern`` (a regular expression searched in the module name) and ``max_depth``
    (the most dotted parts in the name). Pick names (or regular expressions) from it for
    ``inject_pip(stages=...)``; spandrel's networks are called as their preset says (e.g.
    DRUNet with its noise-level map).
    """
    config = PIPConfig()
    preset = preset_for(model)
    if preset is not None:
        config = config.replace(**{k: preset[1][k] for k in CALL_FIELDS if k in preset[1]})
    trace, _ = dry_run(model, config, sample_input)
    regex = re.compile(pattern) if pattern is not None else None
    rows = [
        _info(record, refusal(trace, record.name, "input"))
        for record in trace.modules.values()
        if _is_candidate(record)
        and (regex is None or regex.search(record.name))
        and (max_depth is None or record.name.count(".") + 1 <= max_depth)
    ]
    if verbose:
        _print(rows)
    return rows
