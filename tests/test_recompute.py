"""Activation checkpointing of the units (PIPModel.recompute_units): the same outputs and
gradients, fewer tensors kept for the backward pass, and the Trainer's default."""

import copy

import pytest
import torch
from backbones import nafnet

import pip_adapter as pa
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.injection.presets import FULL_UNITS
from pip_adapter.injection.recompute import recomputed
from pip_adapter.training import TrainConfig, Trainer

TASKS = ("noise", "rain", "haze")


def adapter_model(**options) -> pa.PIPModel:
    torch.manual_seed(0)
    # the adapter recipe's full units (FULL_UNITS), not the preset's lighter ones
    model = pa.inject_pip(
        nafnet(), degradations=TASKS, native_degradations=("noise",), **FULL_UNITS, **options
    )
    model.freeze_backbone()
    with torch.no_grad():  # move the units off the identity, so that gradients reach all parts
        for param in model.pip_units.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


LABELS = ["rain", "haze", "noise", "rain"]


def step(
    model: pa.PIPModel, x: torch.Tensor, degradation=LABELS, amp: torch.dtype | None = None
) -> tuple[torch.Tensor, dict, int]:
    """Output, gradients and the bytes kept for the backward pass of one training step (the
    forward pass under ``amp`` autocast, the backward pass outside it, as on a GPU, whose
    backward pass runs in a thread of its own)."""
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.zero_grad(set_to_none=True)
    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
        torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None),
    ):
        out = model(x, degradation=degradation)
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


@pytest.mark.parametrize("amp", [None, torch.bfloat16])
def test_recomputed_updates_give_the_gradients_of_the_units_kept_bit_for_bit(amp):
    """With each degradation's own feed-forward updates (the recipe's adapter default), also
    under bf16 autocast: the backward pass recomputes under the forward's autocast."""
    model = adapter_model(degradation_ffn_rank=4)
    reference = copy.deepcopy(model)
    model.recompute_units = True
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    (out, grads, _), (ref_out, ref_grads, _) = step(model, x, amp=amp), step(reference, x, amp=amp)
    assert torch.equal(out, ref_out) and out.dtype == ref_out.dtype
    assert grads.keys() == ref_grads.keys() and any("update" in n for n in grads)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=0, atol=0, msg=name)


def test_recomputed_units_pass_gradients_to_soft_weights_and_to_autograd_grad():
    """Weights that need gradients (e.g. from a sensor trained with the units) get them, and
    ``torch.autograd.grad`` returns the units' gradients without touching ``.grad``."""
    model = adapter_model()
    reference = copy.deepcopy(model)
    model.recompute_units = True
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    logits = torch.tensor([[0.3, 1.0, -0.5], [0.0, 0.2, 0.9]])
    found = []
    for net in (model, reference):
        weights = logits.clone().requires_grad_(True)
        params = list(net.pip_units.parameters())
        out = net(x, degradation=weights.softmax(dim=1))
        found.append(torch.autograd.grad((out - x).square().mean(), [weights, *params]))
        assert all(p.grad is None for p in params)
    for got, expected in zip(*found, strict=True):
        torch.testing.assert_close(got, expected)  # the weights' sum: to rounding
    assert found[0][0].abs().sum() > 0


def test_a_second_backward_pass_recomputes_the_units_again():
    model = adapter_model()
    reference = copy.deepcopy(model)
    model.recompute_units = True
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    grads = []
    for net in (model, reference):
        loss = (net(x, degradation=["rain", "haze"]) - x).abs().mean()
        loss.backward(retain_graph=True)
        loss.backward()  # retain_graph: the same graph again, the gradients summed
        grads.append({n: p.grad for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], rtol=0, atol=0, msg=name)


def _toy(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    noise = torch.rand_like(a)  # random draws: the recomputation must draw the same
    return (a * weight).sin() * (a + noise)


def test_a_recomputed_run_gives_the_gradients_of_its_graph_also_of_higher_order():
    """Random draws repeated, and gradients of gradients (an input-gradient penalty)."""
    found = []
    for run in (_toy, lambda a, w: recomputed(_toy, a, w)):
        torch.manual_seed(5)
        weight = torch.rand(3, requires_grad=True)
        x = torch.tensor([0.3, 1.2, -0.7], requires_grad=True)
        (by_x,) = torch.autograd.grad(run(x, weight).sum(), x, create_graph=True)
        found.append(torch.autograd.grad(by_x.square().sum(), weight)[0])
    torch.testing.assert_close(found[0], found[1], rtol=0, atol=0)


def test_a_run_that_saves_otherwise_the_second_time_is_refused():
    weight = torch.rand(3, requires_grad=True)
    calls = []

    def run(a: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return (a * weight).sin() if len(calls) == 1 else a * weight

    y = recomputed(run, torch.rand(3))
    with pytest.raises(RuntimeError, match="same way each time"):
        y.sum().backward()


def test_an_input_changed_in_place_after_the_forward_pass_is_refused():
    weight = torch.rand(3, requires_grad=True)
    x = torch.rand(3)
    y = recomputed(lambda a: (a * weight).sin(), x)
    x.add_(1)  # the unit would run again on other values
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


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
