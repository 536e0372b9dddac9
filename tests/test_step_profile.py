"""The training-step profile (benchmarks/step_profile.py): per unit it finds the operators that
step_operators.py counts (the same forward scopes and backward nodes), and it writes its page
from the profile, on the CPU, where each operator stands for a kernel."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import step_operators  # benchmarks/ is not a package: found through the path above
import step_profile


@pytest.mark.slow
def test_the_profile_finds_each_units_operators_and_writes_its_page(tmp_path, monkeypatch):
    argv = ["step_profile.py", "--backbone-size", "tiny", "--batch-size", "1", "--patch", "32"]
    argv += ["--steps", "1", "--warmup", "1", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    step_profile.main()
    results = json.loads((tmp_path / "step_profile.json").read_text())
    profiled = results["configs"][step_profile.WITH_PIP]
    counted = step_operators.count_step(step_profile.WITH_PIP, 1, 32, "tiny")
    assert profiled["phases"]["forward"]["kernels"] == counted["forward"]
    assert profiled["phases"]["backward"]["kernels"] == counted["backward"]
    assert profiled["units"].keys() == counted["units"].keys()
    for key, parts in profiled["units"].items():
        for part in ("forward", "backward"):
            assert parts[part]["kernels"] == counted["units"][key][part]
            assert parts[part]["ms"] > 0
    # the backward nodes are the units' or the backbone's, each once
    nodes = profiled["nodes"].values()
    assert sum(n["units"]["kernels"] + n["backbone"]["kernels"] for n in nodes) == pytest.approx(
        counted["backward"]
    )
    assert sum(n["units"]["kernels"] for n in nodes) == pytest.approx(
        sum(unit["backward"] for unit in counted["units"].values())
    )
    assert not any(
        n["units"]["nodes"] for n in results["configs"][step_profile.PLAIN]["nodes"].values()
    )
    page = (tmp_path / "step_profile.md").read_text()
    for key in profiled["units"]:
        assert f"| {key.replace('/', '.')} |" in page
    assert "| with PIP / plain |" in page and "| all units |" in page
