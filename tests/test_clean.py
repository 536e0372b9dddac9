"""The "clean" degradation: a model that knows it leaves clean images exactly as they are."""

import pytest
import torch
from backbones import build, train_conditioning

import pip_adapter as pa
from pip_adapter.conditioning import describe_weights, split_clean

WITH_CLEAN = (*pa.DEFAULT_DEGRADATIONS, "clean")


def trained(degradations=WITH_CLEAN, seed=0):
    """NAFNet-tiny + PIP with units moved away from the identity by real training steps (the
    backbone frozen: it stays ``build("nafnet", seed)``)."""
    model = pa.inject_pip(build("nafnet", seed), degradations=degradations).freeze_backbone()
    train_conditioning(model)
    return model.eval()


def test_units_are_built_for_the_other_degradations():
    model = pa.inject_pip(build("nafnet"), degradations=WITH_CLEAN)
    assert model.restorable_degradations == pa.DEFAULT_DEGRADATIONS
    assert model.config.adapted_degradations == pa.DEFAULT_DEGRADATIONS
    for unit in model.pip_units.values():
        assert unit.degradation_prompt.prompts.shape[0] == len(pa.DEFAULT_DEGRADATIONS)
    # so a five-degradation adapter's weights fit the same model with "clean"
    plain = pa.inject_pip(build("nafnet"), degradations=pa.DEFAULT_DEGRADATIONS)
    model.pip_units.load_state_dict(plain.pip_units.state_dict())


def test_a_clean_image_comes_back_exactly_without_running_the_backbone():
    model = trained()
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    x = torch.rand(2, 3, 19, 23)
    for form in ("clean", ["clean", "clean"], {"clean": 1.0}, torch.tensor([5, 5])):
        with torch.no_grad():
            out = model(x, degradation=form)
        assert torch.equal(out, x) and out is not x
    assert not calls


def test_clean_and_restored_samples_in_one_batch():
    model = trained()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out = model(x, degradation=["rain", "clean"])
        rain = model(x[:1], degradation="rain")
    assert torch.equal(out[1], x[1])  # exactly the input
    assert torch.allclose(out[:1], rain, atol=1e-6)
    assert (rain - x[:1]).abs().max() > 1e-3  # and the other one was restored


def test_without_clean_weight_the_output_is_the_restoration_of_the_others():
    """The same units give the same output with or without "clean" in the vocabulary."""
    model = trained()
    five = pa.inject_pip(build("nafnet"), degradations=pa.DEFAULT_DEGRADATIONS).eval()
    five.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 16, 16)
    mixture = {"rain": 0.7, "noise": 0.3}
    with torch.no_grad():
        assert torch.equal(model(x, degradation="rain"), five(x, degradation="rain"))
        assert torch.allclose(model(x, degradation=mixture), five(x, degradation=mixture))


def test_a_mixture_with_clean_softens_the_restoration():
    model = trained()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        rain = model(x, degradation="rain")
        soft = model(x, degradation={"rain": 0.25, "clean": 0.75})
    assert torch.allclose(soft, torch.lerp(x, rain, 0.25), atol=1e-6)


def test_split_clean_renormalises_the_others():
    weights = torch.tensor([[0.2, 0.2, 0.6], [0.0, 0.0, 1.0]])
    others = split_clean(weights, clean=2)
    assert others.tolist() == [[0.5, 0.5], [0.5, 0.5]]  # uniform where clean is all


def test_clean_alone_is_refused():
    with pytest.raises(ValueError, match="nothing to restore"):
        pa.PIPConfig(degradations=("clean",))


def test_adapter_with_clean_round_trips(tmp_path):
    model = trained()
    model.save_adapter(tmp_path / "adapter")
    loaded = pa.load_adapter(build("nafnet"), tmp_path / "adapter").eval()
    assert loaded.degradations == WITH_CLEAN
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x, degradation="clean"), x)
        assert torch.equal(loaded(x, degradation="haze"), model(x, degradation="haze"))


def test_training_data_without_clean_trains_a_model_with_clean():
    from pip_adapter.data import SyntheticAllInOne
    from pip_adapter.training import TrainConfig, Trainer

    model = pa.inject_pip(build("nafnet"), degradations=("noise", "clean", "rain"))
    data = SyntheticAllInOne(
        degradations=("noise", "rain"), patch_size=32, samples_per_degradation=2
    )
    trainer = Trainer(model, data, TrainConfig(steps=2, batch_size=2, progress=False))
    assert trainer.prompt_ids.tolist() == [0, 2]
    before = [p.clone() for p in model.pip_units.parameters()]
    trainer.fit()
    after = model.pip_units.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_a_prediction_is_described_as_sure_or_as_the_mixture_used():
    names = ("noise", "rain", "clean")
    assert describe_weights(torch.tensor([0.02, 0.03, 0.95]), names) == "clean (0.95)"
    unsure = describe_weights(torch.tensor([0.40, 0.57, 0.03]), names)
    assert unsure == "unsure: rain 0.57 + noise 0.40 (restored as this mixture)"
    with pytest.raises(ValueError, match="one sample's 3 weights"):
        describe_weights(torch.ones(2, 3) / 3, names)
