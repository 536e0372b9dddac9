"""Automatic placement for networks without a preset, from one traced dry run.

Where the paper puts PIP: on the features a U-shaped network's decoder receives through its
skip connections, at every level but the bottleneck. The trace marks the modules whose input
merges a skip (a concatenation or sum of a feature made before the resolution dropped with
one made after); a unit goes on each of them, on the skip's channels of a concatenation.
A network that never drops its resolution (SwinIR, RCAN, ESRGAN's RRDB trunk) has a body:
the heaviest stack of same-type blocks that receive the same feature; units go on the inputs
of its second half, after the first half has extracted degradation-agnostic features, as an
encoder would: on at most ``BODY_UNITS`` blocks spread evenly over it, ending at the last, so
that a deep stack of light blocks (DnCNN's twenty convolutions) does not get a unit heavier
than itself on each. Anything else is refused with the best candidates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from pip_adapter.config import Stage
from pip_adapter.injection.trace import ModuleTrace, Trace

__all__ = ["BODY_SHARE", "BODY_UNITS", "Placement", "auto_stages", "spread"]

# a body holds at least this share of the network's parameters (not a block's inner branches)
BODY_SHARE = 0.25
# at most this many units on a body, as many as the paper puts on a decoder (one per level)
BODY_UNITS = 4

T = TypeVar("T")


@dataclass(frozen=True)
class Placement:
    """Stages chosen for a network, and a one-line account of how."""

    stages: tuple[Stage, ...]
    description: str


def spread(items: Sequence[T], most: int) -> list[T]:
    """At most ``most`` of ``items``, evenly spaced, the last one always among them."""
    if len(items) <= most:
        return list(items)
    last = len(items) - 1
    return [items[last - round(i * last / (most - 1))] for i in reversed(range(most))]


def _usable(record: ModuleTrace) -> bool:
    return record.calls == 1 and record.input is not None and record.input.usable


def _decoder_stages(trace: Trace) -> list[Stage]:
    """The inputs that receive a skip connection (its channels of a concatenation)."""
    stages = []
    for record in trace.modules.values():
        if record.skip is None or not _usable(record):
            continue
        assert record.input is not None and record.input.channels is not None
        whole = record.skip == (0, record.input.channels)
        stages.append(Stage(record.name, channels=None if whole else record.skip))
    return stages


# a numbered module: ``layers.3`` (a ModuleList / Sequential entry) or ``block_3``
_NUMBERED = re.compile(r"(?P<stem>(?:.*\.)?[^.]*?)(?P<index>\d+)")


def _stem(name: str) -> str:
    """``layers.3`` -> ``layers.``, ``block_3`` -> ``block_``."""
    match = _NUMBERED.fullmatch(name)
    return match["stem"] if match else ""


def _body_stacks(trace: Trace) -> list[list[ModuleTrace]]:
    """Stacks of numbered same-type siblings (``layers.0``, ``layers.1``, ... or ``block_1``,
    ``block_2``, ...) that each run once, receive the same feature (layout, channels and
    size) and hold at least ``BODY_SHARE`` of the parameters; heaviest (then longest) first."""
    groups: dict[tuple, list[ModuleTrace]] = {}
    for record in trace.modules.values():
        if _NUMBERED.fullmatch(record.name) is None or not _usable(record):
            continue
        feature = record.input
        assert feature is not None
        key = (_stem(record.name), record.type, feature.layout, feature.channels, feature.size)
        groups.setdefault(key, []).append(record)
    stacks = [
        group
        for group in groups.values()
        if len(group) >= 2 and _weight(group) >= BODY_SHARE * trace.parameters
    ]
    return sorted(stacks, key=lambda s: (_weight(s), len(s)), reverse=True)


def _weight(stack: list[ModuleTrace]) -> int:
    return sum(record.parameters for record in stack)


def _candidates(trace: Trace, count: int = 8) -> list[str]:
    """The heaviest modules that could hold a unit, for error messages."""
    usable = [r for r in trace.modules.values() if _usable(r) and r.name.count(".") <= 2]
    usable.sort(key=lambda r: r.parameters, reverse=True)
    return [
        f"{r.name} ({r.type}, {r.input.layout} {r.input.channels}ch)"
        for r in usable[:count]
        if r.input is not None
    ]


def auto_stages(trace: Trace, owner: str) -> Placement:
    """Stages for a network without a preset (see the module docstring); a ValueError lists
    the best candidates when none can be chosen."""
    decoder = _decoder_stages(trace)
    if decoder:
        names = ", ".join(stage.pattern for stage in decoder)
        plural = "s" if len(decoder) > 1 else ""
        return Placement(
            tuple(decoder),
            f"automatic: {len(decoder)} decoder input{plural} receiving skip connections ({names})",
        )
    stacks = _body_stacks(trace)
    if stacks:
        best = stacks[0]
        if len(stacks) > 1 and (len(stacks[1]), _weight(stacks[1])) == (len(best), _weight(best)):
            tied = [_stem(s[0].name) + "N" for s in stacks[:2]]
            raise ValueError(
                f"cannot place PIP units on {owner} automatically: no skip connections, and "
                f"two equal stacks of blocks ({tied[0]} and {tied[1]}); pass stages= (see "
                "pip_adapter.list_stages)"
            )
        chosen = spread(best[len(best) // 2 :], BODY_UNITS)
        return Placement(
            tuple(Stage(r.name) for r in chosen),
            f"automatic: no skip connections; the inputs of {len(chosen)} blocks over the "
            f"second half of the body ({len(best)} blocks {_stem(best[0].name)}N)",
        )
    raise ValueError(
        f"cannot place PIP units on {owner} automatically: its dry run shows no skip "
        "connection and no stack of blocks; pass stages= with some of the best candidates: "
        f"{_candidates(trace)} (pip_adapter.list_stages shows them all)"
    )
