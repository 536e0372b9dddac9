"""The Python blocks of the documentation run as written, and print what the page shows."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", flags=re.M | re.S)


@pytest.mark.parametrize("page", ["custom-networks.md"])
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
