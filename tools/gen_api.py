"""Write docs/api.md from the docstrings and signatures of the public API.

Run:  python tools/gen_api.py          (tests/test_docs.py checks that docs/api.md is current)

Docstrings are Markdown-friendly: names in double backquotes, not Sphinx roles such as
``:class:`X` ``, which Markdown shows raw; the page is refused if one is left.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

MODULES = [
    ("pip_adapter", "The package: the PIP unit, injection, steering, evaluation."),
    ("pip_adapter.functional", "Functional forms of PIP's attention."),
    ("pip_adapter.layers", "Building blocks of the unit."),
    ("pip_adapter.caching", "Reuse of values that do not depend on the input."),
    ("pip_adapter.data", "Photos, degradations, datasets, image files."),
    ("pip_adapter.data.sources", "Data sources by name (command line, recipes)."),
    ("pip_adapter.metrics", "PSNR and SSIM."),
    ("pip_adapter.training", "Training the restoration model and the sensor."),
    ("pip_adapter.backbones", "Backbones by name or from checkpoints."),
    ("pip_adapter.bundle", "An adapter with the recipe for its backbone."),
    ("pip_adapter.export", "Export to ONNX and torch.export, checked against the model."),
    ("pip_adapter.recipes", "The fine-tuning recipe of `pip-adapter train` and the examples."),
    ("pip_adapter.baselines", "Other prompt designs, for comparisons with PIP at the same stages."),
]
OUT = Path(__file__).resolve().parents[1] / "docs" / "api.md"
SPHINX_ROLE = re.compile(r":[a-z]+:`[^`]*`")


def check_markup(text: str) -> str:
    """``text``, or a ValueError naming the Sphinx roles in it (write ``name`` instead)."""
    roles = sorted(set(SPHINX_ROLE.findall(text)))
    if roles:
        raise ValueError(
            f"docstrings use Sphinx roles, which Markdown shows raw: {roles}; write ``name``"
        )
    return text


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj)).replace("'", "")
    except (TypeError, ValueError):
        return "(...)"


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def _public_methods(cls) -> list[tuple[str, object]]:
    methods = []
    for name, member in vars(cls).items():
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        if isinstance(member, property) or member.__doc__:
            methods.append((name, member))
    return methods


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python tools/gen_api.py`; edit the docstrings, not",
        "this page. The names of the public contract are in `pip_adapter.__all__`.",
        "",
    ]
    for module_name, summary in MODULES:
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", "", summary, ""]
        for name in sorted(getattr(module, "__all__", []), key=str.lower):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            if inspect.isclass(obj):
                lines += [f"### class `{name}{_signature(obj)}`", "", _doc(obj), ""]
                for method_name, method in _public_methods(obj):
                    if isinstance(method, property):
                        lines += [f"- `.{method_name}` (property): {_doc(method)}"]
                    else:
                        head = f"- `.{method_name}{_signature(method)}`"
                        lines += [f"{head}: {_doc(method)}" if _doc(method) else head]
                lines.append("")
            elif callable(obj):
                lines += [f"### `{name}{_signature(obj)}`", "", _doc(obj), ""]
            elif isinstance(obj, dict) and len(repr(obj)) > 3000:  # PRESETS: its keys
                keys = ", ".join(f"`{key}`" for key in sorted(obj, key=str.lower))
                lines += [f"### `{name}`", "", f"A dict of {len(obj)} entries: {keys}.", ""]
            else:
                lines += [f"### `{name}`", "", f"`{obj!r}`", ""]
    return check_markup("\n".join(line.rstrip() for line in lines).rstrip() + "\n")


if __name__ == "__main__":
    # no options: argparse answers --help (and refuses anything else) before the page is written
    argparse.ArgumentParser(description=__doc__).parse_args()
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
