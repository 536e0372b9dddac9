"""The PromptIR-style block used as a baseline: identity at init, blind, trainable, hostable."""

import copy
import re

import pytest
import torch
from backbones import build

import pip_adapter as pa
from pip_adapter.baselines import PromptIRBlock
from pip_adapter.injection import PIPModel


def perturbed(block: PromptIRBlock, seed: int = 0) -> PromptIRBlock:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return block


@pytest.mark.parametrize("channels", [3, 16, 70])
def test_identity_at_init(channels):
    torch.manual_seed(0)
    block = PromptIRBlock(channels, prompt_size=4)
    x = torch.randn(2, channels, 9, 13)
    assert torch.equal(block(x), x)


def test_prompt_follows_each_samples_feature():
    torch.manual_seed(0)
    block = perturbed(PromptIRBlock(8, num_components=3, prompt_size=4))
    x = torch.randn(2, 8, 12, 12)
    prompt = block.prompt(x)
    assert prompt.shape == (2, block.refine.out_channels, 12, 12)
    assert not torch.allclose(prompt[0], prompt[1])
    assert torch.allclose(block(x)[1:], block(x[1:]), atol=1e-6)  # each sample on its own
    assert block.prompt_regularization().item() == 0.0


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    block = perturbed(PromptIRBlock(8, prompt_size=4))
    block(torch.randn(2, 8, 10, 10)).square().mean().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


@pytest.mark.parametrize("shape", [(2, 7, 8, 8), (8, 8, 8)])
def test_wrong_feature_shape_is_named(shape):
    block = PromptIRBlock(8)
    with pytest.raises(ValueError, match=r"B×8×H×W.*" + re.escape(str(shape))):
        block(torch.randn(shape))


def test_hosted_by_a_pip_model_at_pips_stages():
    backbone = build("nafnet")
    reference = pa.inject_pip(copy.deepcopy(backbone))  # as the block's docstring shows
    blocks = [
        PromptIRBlock(stop - start, prompt_size=4)
        for start, stop in (s.channels for s in reference.plan)
    ]
    model = PIPModel(backbone, reference.plan, blocks, reference.config)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        plain = build("nafnet")(x)
        assert torch.allclose(model(x, degradation="noise"), plain, atol=1e-6)
        for block in blocks:
            torch.nn.init.normal_(block.fuse.weight, std=0.1)
        assert not torch.allclose(model(x, degradation="noise"), plain, atol=1e-4)
    model(x, degradation="rain").mean().backward()
    assert all(b.components.grad is not None and b.components.grad.any() for b in blocks)
    with pytest.raises(TypeError, match=r"stores PromptInPrompt units.*\['PromptIRBlock'\]"):
        model.save_adapter("unused")
    with pytest.raises(ValueError, match="resolved PIPConfig of this plan"):
        PIPModel(build("nafnet"), reference.plan, blocks, pa.PIPConfig())
