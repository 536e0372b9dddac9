"""The training-cost benchmark's configurations (benchmarks/training_cost.py): the recipe's
adapter default is timed as the recipe trains it (rank-``ADAPTER_FFN_RANK`` units on a frozen
backbone, recomputed), beside inject_pip's default units."""

import sys
from pathlib import Path

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
    assert step.trainable == sum(p.numel() for p in model.pip_units.parameters())
    shared = training_cost.Step("+ PIP, adapter only", 2, 32, torch.device("cpu"), "tiny")
    assert shared.model.config.degradation_ffn_rank == 0 and step.trainable > shared.trainable
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    units = {k: v.clone() for k, v in model.pip_units.state_dict().items()}
    step()
    assert all(torch.equal(v, backbone[k]) for k, v in model.backbone.state_dict().items())
    assert any(not torch.equal(v, units[k]) for k, v in model.pip_units.state_dict().items())
