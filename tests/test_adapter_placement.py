"""Adapter mode (``stages="adapter"``): the placement for a pretrained backbone that stays
frozen. On NAFNet it adds narrow units on the deeper half of the encoder levels to the paper's
decoder units; elsewhere it is the paper's placement; the recipe picks it when it trains the
adapter alone, and ``"auto"`` (from scratch, or everything trained) is unchanged."""

import pytest
import torch
from architectures import build_tiny
from backbones import train_conditioning
from spandrel.architectures.NAFNet import NAFNet

import pip_adapter as pa
from pip_adapter.injection.model import unit_key
from pip_adapter.recipes import FinetuneRecipe

DECODERS = ["decoders.0", "decoders.1", "decoders.2", "decoders.3"]


def four_level_nafnet() -> NAFNet:
    torch.manual_seed(0)
    return NAFNet(width=8, enc_blk_nums=[1, 1, 1, 1], middle_blk_num=1, dec_blk_nums=[1] * 4)


def test_adapter_mode_adds_narrow_units_on_the_deeper_encoder_levels(tmp_path):
    backbone = four_level_nafnet().eval()
    paper = pa.inject_pip(backbone)
    auto = paper.config.stages
    assert [stage.pattern for stage in auto] == DECODERS  # the paper's placement, unchanged
    paper.unload()

    model = pa.inject_pip(backbone, stages="adapter", native_degradations=("noise",))
    assert "adapter mode" in model.placement
    stages = model.config.stages
    assert [stage.pattern for stage in stages] == ["encoders.2", "encoders.3", *DECODERS]
    assert [stage.prompt_dim for stage in stages[:2]] == [32, 32]
    assert stages[2:] == auto  # the decoder units are the same in both modes

    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():  # the identity at injection, encoder units included
        assert torch.equal(model(x, degradation="rain"), backbone(x))
    before = {name: p.clone() for name, p in backbone.named_parameters()}
    train_conditioning(model.freeze_backbone(), steps=2)
    encoder_unit = model.pip_units[unit_key("encoders.2")]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder_unit.parameters())
    assert all(torch.equal(p, before[name]) for name, p in backbone.named_parameters())

    model.eval()
    model.save_adapter(tmp_path / "adapter")  # the resolved stages: loaded as they are
    loaded = pa.load_adapter(four_level_nafnet(), tmp_path / "adapter").eval()
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded(x, degradation="rain"), model(x, degradation="rain"))


@pytest.mark.parametrize("identity", ["SwinIR", "Restormer"])
def test_adapter_mode_is_the_paper_placement_without_adapter_stages(identity):
    assert "adapter_stages" not in pa.PRESETS[identity]
    auto = pa.inject_pip(build_tiny(identity)).config
    adapter = pa.inject_pip(build_tiny(identity), stages="adapter").config
    assert adapter.stages == auto.stages


def test_adapter_is_a_placement_name_and_others_are_refused():
    config = pa.PIPConfig(stages="adapter")
    assert pa.PIPConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="'auto', 'adapter' or a non-empty list"):
        pa.PIPConfig(stages="adaptor")


def test_the_recipe_places_for_adapter_mode_when_the_backbone_stays_frozen(tmp_path):
    checkpoint = tmp_path / "denoiser.pth"
    frozen = FinetuneRecipe("nafnet", checkpoint=checkpoint)
    assert not frozen.trains_backbone and frozen.model_config().stages == "adapter"
    for trained in (FinetuneRecipe("nafnet"), FinetuneRecipe("nafnet", checkpoint, full=True)):
        assert trained.trains_backbone and trained.model_config().stages == "auto"
    given = FinetuneRecipe("nafnet", checkpoint, pip=pa.PIPConfig(stages=["decoders.0"]))
    assert given.model_config().stages == given.pip.stages  # stages a user names are kept
