"""Local pooling: a real NAFNet's global pools made window means, and undone exactly."""

import pytest
import torch
import torch.nn.functional as F
from backbones import build
from torch import nn

import pip_adapter as pa
from pip_adapter.pooling import LocalAveragePool


def nafnet() -> nn.Module:
    """A tiny spandrel NAFNet whose blocks act (their residual scales start at 0: identity)."""
    net = build("nafnet")
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if name.endswith(("beta", "gamma")):
                parameter.fill_(1.0)
    return net


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def pools(net: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in net.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)}


def image(height: int = 32, width: int = 48) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(1, 3, height, width)


def test_a_window_that_covers_the_image_is_the_global_pool_bit_for_bit():
    net, x = nafnet(), image()
    before = forward(net, x)
    with pa.local_pooling(net, 48) as handle:
        assert len(handle.pools) == 5  # every NAFBlock's channel attention
        assert torch.equal(forward(net, x), before)


@pytest.mark.parametrize("edges", ["shift", "replicate"])
def test_a_smaller_window_changes_the_output_and_remove_restores_it_exactly(edges):
    net, x = nafnet(), image()
    originals = pools(net)
    keys, before = list(net.state_dict()), forward(net, x)
    handle = pa.local_pooling(net, 16, edges=edges)
    changed = forward(net, x)
    assert changed.shape == before.shape and not torch.allclose(changed, before, atol=1e-4)
    assert list(net.state_dict()) == keys  # no weight added, renamed or touched
    handle.remove()
    handle.remove()  # a second call does nothing
    assert pools(net) == originals
    assert not any(isinstance(m, LocalAveragePool) for m in net.modules())
    assert torch.equal(forward(net, x), before)


class ChannelAttention(nn.Module):
    """``x · pool(x)`` after a 2× downsampling: a pool at half the input's resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, 2)
        return x * self.pool(x)


@pytest.mark.parametrize(
    ("edges", "pad_input"),
    [("shift", False), ("replicate", True)],
)
def test_the_window_is_in_input_pixels_and_scaled_to_the_pools_resolution(edges, pad_input):
    net, x = ChannelAttention(), image(40, 64)
    half = F.avg_pool2d(x, 2)  # 20×32: a 12-pixel input window is 6×6 here
    if pad_input:  # the window centred over the border pixels, repeated
        means = F.avg_pool2d(F.pad(half, (2, 3, 2, 3), mode="replicate"), 6, stride=1)
    else:  # the valid windows, their means repeated outwards (TLC)
        means = F.pad(F.avg_pool2d(half, 6, stride=1), (2, 3, 2, 3), mode="replicate")
    with pa.local_pooling(net, 12, edges=edges), torch.no_grad():
        torch.testing.assert_close(net(x=x), half * means)  # the image passed by name
        torch.testing.assert_close(net(x), half * means)


def test_a_pip_model_pools_locally_in_its_backbone_only():
    model = pa.inject_pip(nafnet(), degradations=("noise", "rain"))
    model.sensor = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    x = image()
    before = model(x, degradation="rain").detach()
    handle = pa.local_pooling(model, 16)
    assert isinstance(model.sensor[0], nn.AdaptiveAvgPool2d)  # a classifier pools globally
    assert all(name.startswith(("encoders", "decoders", "middle")) for name in handle.pools)
    assert not torch.allclose(model(x, degradation="rain").detach(), before, atol=1e-4)
    handle.remove()
    assert torch.equal(model(x, degradation="rain").detach(), before)


@pytest.mark.parametrize(
    ("window", "edges", "message"),
    [
        (0, "shift", "window must be a positive number of input pixels, got 0"),
        (2.5, "shift", "window must be a positive number of input pixels, got 2.5"),
        (True, "shift", "window must be a positive number of input pixels, got True"),
        (16, "zero", "edges must be one of ('replicate', 'shift'), got 'zero'"),
    ],
)
def test_bad_arguments_are_refused_and_the_network_is_untouched(window, edges, message):
    net = nafnet()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pa.local_pooling(net, window, edges=edges)
    assert not any(isinstance(m, LocalAveragePool) for m in net.modules())


def test_a_network_without_a_global_pool_or_already_local_is_refused():
    with pytest.raises(ValueError, match="TinyUNet has no global average pool"):
        pa.local_pooling(build("unet"), 16)
    net = build("nafnet")
    handle = pa.local_pooling(net, 16)
    with pytest.raises(ValueError, match="already applied"):
        pa.local_pooling(net, 32)
    assert all(m._handle[0] is handle for m in net.modules() if isinstance(m, LocalAveragePool))
    with pytest.raises(ValueError, match="window must be a positive number of input pixels"):
        handle.window = 0
    assert handle.window == 16


def test_a_pool_called_outside_its_network_says_why_it_cannot_run():
    net = build("nafnet")
    with pa.local_pooling(net, 16) as handle:
        pool = net.get_submodule(handle.pools[0])
        with pytest.raises(RuntimeError, match="call the network local_pooling"):
            pool(torch.rand(1, 8, 16, 16))
