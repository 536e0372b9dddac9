"""Every preset architecture, built from spandrel's real classes in tiny configurations with
random weights: identity at injection at a size the backbone accepts and at an odd size,
conditioning that takes effect after a few training steps, unload, and save -> load exact."""

import pytest
import torch
import torch.nn.functional as F
from architectures import TINY, build_tiny, call

import pip_adapter as pa
from pip_adapter.architectures import (
    SELF_PADDED_WINDOW,
    architecture_id,
    registered_architectures,
)
from pip_adapter.injection.presets import WITHOUT_PRESET

# the tiny configurations that still take a few seconds (fixed widths, internal padding)
SLOW = {"FBCNN", "RealCUGAN", "SCUNet", "Uformer"}


def architectures():
    return [pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a for a in sorted(TINY)]


def accepted_sizes(requirements) -> list[tuple[int, int]]:
    """A size the backbone accepts as it is, and an odd size near it."""
    side = max(32, requirements.minimum)
    side += -side % requirements.multiple_of
    odd = (side + 3, side + 3) if requirements.square else (side + 3, side + 5)
    return [(side, side), odd]


def reference(identity, backbone, x, requirements):
    """The backbone's own output for ``x``: padded (reflect, bottom / right) only where spandrel
    says it must be, called directly, and cropped back."""
    pad_w, pad_h = requirements.get_padding(x.shape[-1], x.shape[-2])
    padded = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if pad_w or pad_h else x
    with torch.no_grad():
        out = call(identity, backbone, padded)
    scale = out.shape[-1] // padded.shape[-1]
    return out[..., : x.shape[-2] * scale, : x.shape[-1] * scale]


def test_every_spandrel_architecture_has_a_preset_or_a_reason():
    known = {architecture.id for architecture in registered_architectures()}
    assert set(pa.PRESETS) | set(WITHOUT_PRESET) == known
    assert not set(pa.PRESETS) & set(WITHOUT_PRESET)
    assert set(TINY) == set(pa.PRESETS)  # every preset is tested below
    for identity, preset in pa.PRESETS.items():
        for variant in preset.get("variants", {identity: preset}).values():
            assert variant["stages"] and variant["reason"], identity


@pytest.mark.parametrize("identity", architectures())
def test_preset_architecture(identity, tmp_path):
    backbone = build_tiny(identity)
    assert architecture_id(backbone) == identity
    model = pa.inject_pip(backbone)
    assert model.placement.startswith(f"preset {identity}: ")
    requirements = model.size_requirements
    for height, width in accepted_sizes(requirements):
        x = torch.rand(1, 3, height, width)
        expected = reference(identity, backbone, x, requirements)
        with torch.no_grad():
            out = model(x.clone(), degradation="rain")
        assert out.shape == expected.shape
        assert torch.equal(out, expected), f"{identity} at {height}×{width}"

    model.freeze_backbone().train()  # train mode: some blocks (PLKSR) work in place in eval mode
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    side = accepted_sizes(requirements)[0][0]
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    for _ in range(2):
        for degradation, target in (("noise", 0.0), ("rain", 1.0)):
            optimizer.zero_grad()
            (model(x.clone(), degradation=degradation) - target).abs().mean().backward()
            optimizer.step()
    model.eval()
    sample = x[:1]  # one image: some networks (SeemoRe) run batches of one in eval mode
    with torch.no_grad():
        rain = model(sample.clone(), degradation="rain")
        noise = model(sample.clone(), degradation="noise")
    assert (rain - noise).abs().max() > 1e-6, f"{identity}: conditioning has no effect"

    model.save_adapter(tmp_path)
    other = build_tiny(identity, seed=1)
    other.load_state_dict(backbone.state_dict())
    loaded = pa.load_adapter(other, tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(sample.clone(), degradation="rain"), rain)
    original = model.unload()
    assert torch.equal(
        reference(identity, original, sample, requirements),
        reference(identity, other, sample, requirements),
    )


@pytest.mark.parametrize("identity", sorted(SELF_PADDED_WINDOW))
def test_networks_that_pad_to_their_window_are_padded_to_it_first(identity):
    """PIP pads a network that pads its input to its attention window itself to that window
    first (reflect, as it does), so its own padding never branches on the size (export):
    at an odd size the adapted model at injection gives exactly the network's own output."""
    backbone = build_tiny(identity)
    model = pa.inject_pip(backbone)
    assert model.size_multiple % backbone.window_size == 0
    x = torch.rand(1, 3, 37, 43)
    with torch.no_grad():
        assert torch.equal(model(x.clone(), degradation="rain"), call(identity, backbone, x))
