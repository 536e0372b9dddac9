"""The training-cost benchmark's configurations (benchmarks/training_cost.py): the recipe's
adapter default is timed as the recipe trains it (the full units with rank-``ADAPTER_FFN_RANK``
updates on a frozen backbone, recomputed), beside inject_pip's default units."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import training_cost  # benchmarks/ is not a package: found through the path above

from pip_adapter.recipes import ADAPTER_FFN_RANK, default_pip


def test_the_adapter_default_step_trains_the_recipe_s_units_only():
    step = training_cost.Step(training_cost.ADAPTER_DEFAULT, 2, 32, torch.device("cpu"), "tiny")
    model = step.model
    recipe = default_pip(Path("pretrained.pth"), full=False)
    assert model.config.degradation_ffn_rank == recipe.degradation_ffn_rank == ADAPTER_FFN_RANK
    assert model.recompute_units
    # the full units at every stage, as the recipe builds them, not the preset's lighter ones
    units = {(u.prompt_size, u.prompt_to_feature.ffn_stride) for u in model.pip_units.values()}
    assert units == {(16, 1)} and recipe.prompt_size == 16 and recipe.feature_ffn_stride == 1
    assert step.trainable == sum(p.numel() for p in model.pip_units.parameters())
    shared = training_cost.Step("+ PIP, adapter only", 2, 32, torch.device("cpu"), "tiny")
    assert shared.model.config.degradation_ffn_rank == 0 and step.trainable > shared.trainable
    assert {u.prompt_size for u in shared.model.pip_units.values()} == {8}  # NAFNet's preset
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    units = {k: v.clone() for k, v in model.pip_units.state_dict().items()}
    step()
    assert all(torch.equal(v, backbone[k]) for k, v in model.backbone.state_dict().items())
    assert any(not torch.equal(v, units[k]) for k, v in model.pip_units.state_dict().items())


DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


@pytest.mark.parametrize("suffix", ["", "_cuda"])
def test_each_page_is_what_its_json_gives(suffix, tmp_path, monkeypatch):
    name = f"training_cost{suffix}"
    (tmp_path / f"{name}.json").write_text((DOCS / f"{name}.json").read_text())
    device = "cuda" if suffix else "cpu"
    # one thread, as conftest sets it: main() sets the thread count before it reads --page
    argv = ["training_cost.py", "--device", device, "--threads", "1", "--page"]
    argv += ["--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    training_cost.main()
    assert (tmp_path / f"{name}.md").read_text() == (DOCS / f"{name}.md").read_text()


def test_a_step_under_a_second_is_shown_in_milliseconds():
    # a GPU's steps differ by a few ms: seconds to 2 decimals would show 1.05x and 1.09x alike
    assert training_cost.duration(0.0867) == "87 ms"
    assert training_cost.duration(0.0905) == "90 ms"
    assert training_cost.duration(1.61) == "1.61 s"
