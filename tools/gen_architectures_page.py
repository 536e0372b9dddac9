"""Write docs/architectures.md: every spandrel architecture, where PIP goes in it and why, and
what it adds at the released size.

The numbers come from docs/benchmarks/architectures.json (written by
``python benchmarks/architectures.py``), the reasons from the presets themselves
(``pip_adapter.PRESETS``, ``WITHOUT_PRESET``). Run:  python tools/gen_architectures_page.py
(tests/test_docs.py checks that docs/architectures.md is current).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pip_adapter.injection.presets import PRESETS, WITHOUT_PRESET

DOCS = Path(__file__).resolve().parents[1] / "docs"
RESULTS = DOCS / "benchmarks" / "architectures.json"
_NUMBERED = re.compile(r"(?P<stem>.*?)(?P<index>\d+)(?P<rest>(?:\[\d+:\d+\])?)")


def _stage_text(stage: dict[str, Any], channels: int | None = None) -> str:
    start, stop = stage["channels"]
    whole = start == 0 and (channels is None or stop == channels)
    return stage["name"] if whole else f"{stage['name']}[{start}:{stop}]"


def _compress(names: list[str]) -> str:
    """``layers.3, layers.4, layers.5`` -> ``layers.3–5``."""
    groups: list[list[Any]] = []  # [stem, rest, first, last]
    for name in names:
        match = _NUMBERED.fullmatch(name)
        if match is None:
            groups.append([name, "", None, None])
            continue
        stem, index, rest = match["stem"], int(match["index"]), match["rest"]
        last = groups[-1] if groups else None
        if last and last[2] is not None and last[0] == stem and last[3] + 1 == index and not rest:
            last[3] = index
        else:
            groups.append([stem, rest, index, index])
    parts = []
    for stem, rest, first, last in groups:
        if first is None:
            parts.append(stem)
        elif first == last:
            parts.append(f"{stem}{first}{rest}")
        else:
            parts.append(f"{stem}{first}–{last}")
    return ", ".join(f"`{part}`" for part in parts)


def _sizes(size: dict[str, Any]) -> str:
    rules = []
    if size["square"]:
        rules.append("square")
    if size["multiple_of"] > 1:
        rules.append(f"×{size['multiple_of']}")
    if size["minimum"] > 0:
        rules.append(f"≥{size['minimum']}")
    return ", ".join(rules) or "any"


def _reason(identity: str, class_name: str) -> str:
    preset = PRESETS[identity]
    return preset.get("variants", {}).get(class_name, preset)["reason"]


def render() -> str:
    data = json.loads(RESULTS.read_text())
    results = data["architectures"]
    missing = sorted(set(PRESETS) - set(results))
    if missing:
        raise ValueError(f"{RESULTS} lacks {missing}: run python benchmarks/architectures.py")
    lines = [
        "# Architectures",
        "",
        "`pa.inject_pip(net)` works on a network of any of spandrel's architectures below, built",
        "from its class or loaded from a checkpoint with `spandrel.ModelLoader` (the descriptor",
        "itself is accepted too). The preset is found by spandrel's architecture id; the units go",
        "where the paper puts them, on the skip features the decoder receives, at every level",
        "but the bottleneck; a network that keeps one resolution throughout gets them on the",
        "inputs of up to four blocks spread over the second half of its body (ending at the",
        "last), so that a deep stack of light blocks does not get a unit on each. The input",
        "sizes are spandrel's",
        "`SizeRequirements`: an input that meets them is passed unchanged, any other is",
        "reflect-padded to the nearest size that does and the output cropped back.",
        "Super-resolution networks (×2, ×4) are supported the same way: the output is cropped",
        "to the scaled size. A network without a preset gets an automatic placement from one",
        "dry run (see [custom networks](custom-networks.md)).",
        "",
        f"Measured by `{data['command']}` on the released configurations (random weights); the",
        "units have the default sizes (`d` = the stage width up to 64, `s` = 16). Stages are",
        "module names; `[a:b]` is the channel span a unit modulates (the skip half of a",
        "concatenation).",
        "",
        "| Architecture | Release | Scale | Stages | Feature | Backbone | PIP adds | Input sizes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for identity, entry in results.items():
        stages = _compress([_stage_text(stage) for stage in entry["stages"]])
        layouts = ", ".join(sorted({stage["layout"] for stage in entry["stages"]}))
        backbone, added = entry["backbone_parameters"], entry["pip_parameters"]
        lines.append(
            f"| {identity} | {entry['release']} | ×{entry['scale']} | {stages} | {layouts} | "
            f"{backbone / 1e6:.2f} M | {added / 1e6:.3f} M ({100 * added / backbone:.1f}%) | "
            f"{_sizes(entry['size'])} |"
        )
    lines += ["", "## Why these stages", ""]
    for identity, entry in results.items():
        lines.append(f"- **{identity}** (`{entry['class']}`): {_reason(identity, entry['class'])}.")
    variants = {
        identity: sorted(preset["variants"])
        for identity, preset in PRESETS.items()
        if "variants" in preset
    }
    if variants:
        described = "; ".join(f"{k}: {', '.join(v)}" for k, v in variants.items())
        lines += [
            "",
            f"Architectures with several classes have a preset per class ({described}).",
        ]
    lines += ["", "## Without a preset", ""]
    lines += [f"- **{identity}**: {reason}." for identity, reason in sorted(WITHOUT_PRESET.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    # no options: argparse answers --help (and refuses anything else) before the page is written
    argparse.ArgumentParser(description=__doc__).parse_args()
    (DOCS / "architectures.md").write_text(render())
    print("wrote docs/architectures.md", file=sys.stderr)


if __name__ == "__main__":
    main()
