"""The documentation: its Python blocks run as written, and the generated pages are current."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
TOOLS = DOCS.parent / "tools"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", flags=re.M | re.S)


def tool(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["custom-networks.md", "finetune-pretrained.md"])
def test_python_blocks_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = FENCE.findall((DOCS / page).read_text())
    code = [body for language, body in blocks if language == "python"]
    assert code
    exec(compile("\n".join(code), page, "exec"), {"__name__": "docs"})
    printed = capsys.readouterr().out
    for language, body in blocks:
        if not language:  # an output shown on the page
            assert body.strip() in printed


def test_the_api_page_refuses_sphinx_roles():
    gen_api = tool("gen_api")
    assert gen_api.check_markup("a ``PIPModel``, see ``pip_adapter.load_adapter``") != ""
    with pytest.raises(ValueError, match=r"Sphinx roles.*\[':class:`PIPModel`'\]"):
        gen_api.check_markup("a :class:`PIPModel`, not rendered by Markdown")


@pytest.mark.parametrize(
    ("page", "generator"),
    [
        ("api.md", "gen_api"),
        ("benchmarks.md", "gen_benchmarks_page"),
        ("architectures.md", "gen_architectures_page"),
    ],
)
def test_generated_pages_are_current(page, generator):
    expected = tool(generator).render()
    assert (DOCS / page).read_text() == expected, f"run: python tools/{generator}.py"


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["gen_api", "gen_benchmarks_page", "gen_architectures_page"])
def test_a_generators_help_writes_nothing(generator):
    before = {page: page.stat().st_mtime_ns for page in DOCS.glob("*.md")}
    done = subprocess.run(
        [sys.executable, str(TOOLS / f"{generator}.py"), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("usage:")
    assert {page: page.stat().st_mtime_ns for page in DOCS.glob("*.md")} == before


def test_the_architectures_table_measures_the_presets_as_they_are():
    """docs/benchmarks/architectures.json (benchmarks/architectures.py) has every preset, and
    every stage it lists is one the preset's patterns choose: rerun it when a preset changes."""
    import json

    from pip_adapter.injection.presets import PRESETS

    measured = json.loads((DOCS / "benchmarks" / "architectures.json").read_text())
    results = measured["architectures"]
    assert set(results) == set(PRESETS)
    for identity, entry in results.items():
        preset = PRESETS[identity]
        preset = preset.get("variants", {}).get(entry["class"], preset)
        patterns = [stage["pattern"] for stage in preset["stages"]]
        for stage in entry["stages"]:
            assert any(re.fullmatch(p, stage["name"]) for p in patterns), (identity, stage)
