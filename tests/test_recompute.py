"""Activation checkpointing of the units (PIPModel.recompute_units): the same outputs and
gradients, fewer tensors kept for the backward pass, and the Trainer's default."""

import copy

import pytest
import torch
from backbones import nafnet

import pip_adapter as pa
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.injection.presets import FULL_UNITS
from pip_adapter.training import TrainConfig, Trainer

TASKS = ("noise", "rain", "haze")


def adapter_model() -> pa.PIPModel:
    torch.manual_seed(0)
    # the adapter recipe's full units (FULL_UNITS), not the preset's lighter ones
    model = pa.inject_pip(
        nafnet(), degradations=TASKS, native_degradations=("noise",), **FULL_UNITS
    )
    model.freeze_backbone()
    with torch.no_grad():  # move the units off the identity, so that gradients reach all parts
        for param in model.pip_units.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def step(model: pa.PIPModel, x: torch.Tensor) -> tuple[torch.Tensor, dict, int]:
    """Output, gradients and the bytes kept for the backward pass of one training step."""
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = model(x, degradation=["rain", "haze", "noise", "rain"])
    (out - x).abs().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads, sum(kept.values())


def test_recomputed_units_give_the_same_outputs_and_gradients_and_keep_less():
    model = adapter_model()
    reference = copy.deepcopy(model)
    model.recompute_units = True
    assert model.recompute_units and not reference.recompute_units  # each copy its own hooks
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out, grads, kept = step(model, x)
    ref_out, ref_grads, ref_kept = step(reference, x)
    assert torch.equal(out, ref_out)
    assert grads.keys() == ref_grads.keys() and grads
    assert all(n.startswith("pip_units.") for n in grads)  # the frozen backbone gets none
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=0, atol=0, msg=name)
    assert kept < 0.6 * ref_kept, (kept, ref_kept)
    with torch.no_grad():  # inference is untouched by the setting
        assert torch.equal(model(x, degradation="rain"), reference(x, degradation="rain"))


def trainer(model: pa.PIPModel, **options) -> Trainer:
    data = SyntheticAllInOne(degradations=TASKS, patch_size=16, samples_per_degradation=2, seed=0)
    return Trainer(model, data, TrainConfig(steps=1, batch_size=2, progress=False, **options))


def test_the_trainer_recomputes_units_when_the_backbone_is_frozen():
    assert trainer(adapter_model()).model.recompute_units
    full = adapter_model().unfreeze_backbone()
    assert not trainer(full).model.recompute_units
    assert trainer(full, recompute_units=True).model.recompute_units
    assert not trainer(adapter_model(), recompute_units=False).model.recompute_units
    model = adapter_model()
    trainer(model).fit()  # a real step with recomputed units
    assert model.recompute_units


def test_recompute_units_refuses_anything_but_a_bool():
    with pytest.raises(ValueError, match="recompute_units"):
        TrainConfig(recompute_units=1)  # type: ignore[arg-type]
    model = adapter_model()
    with pytest.raises(TypeError, match="recompute_units"):
        model.recompute_units = "yes"  # type: ignore[assignment]
    assert not model.recompute_units
