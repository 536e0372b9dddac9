"""The adapter-step benchmark (benchmarks/adapter_step.py): its steps are transfer.py's variants
trained as the Trainer trains them, and its memory counts add up."""

import json
import sys
import tempfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import adapter_step  # benchmarks/ is not a package: found through the path above


def test_the_recipe_default_step_recomputes_its_units_and_updates_them_alone():
    with tempfile.TemporaryDirectory() as folder:
        trainer, step = adapter_step.trainer_step(adapter_step.DEFAULT, 1, 16, Path(folder))
    model = trainer.model
    assert model.recompute_units and model.config.degradation_ffn_rank == 64
    assert all(group["foreach"] for group in trainer.optimizer.param_groups)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    units = {k: v.clone() for k, v in model.pip_units.state_dict().items()}
    step()
    assert all(torch.equal(v, backbone[k]) for k, v in model.backbone.state_dict().items())
    assert any(not torch.equal(v, units[k]) for k, v in model.pip_units.state_dict().items())


@pytest.mark.slow
def test_memory_counts_the_trained_state_and_what_recomputing_saves():
    with tempfile.TemporaryDirectory() as folder:
        recomputed, kept = (
            adapter_step.memory(name, Path(folder), size=(2, 16))
            for name in (adapter_step.DEFAULT, f"{adapter_step.DEFAULT}_units_kept")
        )
    assert recomputed["optimizer"] == 2 * recomputed["gradients"] > 0  # AdamW's two moments
    assert recomputed["parameters"] > 10 * recomputed["gradients"]  # the frozen backbone
    assert recomputed["saved"] < kept["saved"] and recomputed["peak"] < kept["peak"]


def test_instructions_join_only_a_row_of_the_same_code_and_a_page_needs_its_record(
    tmp_path, monkeypatch
):
    rows = {"rows": {"base": {"code": "0123456789ab", "date": "2026-11-29", "machine": "m"}}}
    (tmp_path / "adapter_step.json").write_text(json.dumps(rows))
    before = (tmp_path / "adapter_step.json").read_text()
    argv = ["adapter_step.py", "--instructions", "--code", "base", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):  # refused before callgrind runs: the row is other code's
        adapter_step.main()
    assert (tmp_path / "adapter_step.json").read_text() == before
    monkeypatch.setattr(sys, "argv", ["adapter_step.py", "--page", "--out", str(tmp_path / "no")])
    with pytest.raises(SystemExit):
        adapter_step.main()
    counted = {"code": "x", "date": "d", "machine": "m", "instructions_machine": "other"}
    assert "instructions counted on other" in adapter_step._measured_on("base", counted)
    assert "counted on" not in adapter_step._measured_on("base", rows["rows"]["base"])
