"""Tiled inference: seamless blending, padding to a multiple, batching, per-sample kwargs."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pip_adapter.tiling import restore_tiled


def conv_model() -> nn.Module:
    """A small translation-equivariant network (receptive field 7×7, zero padding)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3, 3, padding=1),
    ).eval()


class Recorder(nn.Module):
    """Identity that records input shapes, checks the size multiple and scales per sample."""

    def __init__(self, size_multiple: int = 1) -> None:
        super().__init__()
        self.size_multiple = size_multiple
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        assert x.shape[-2] % self.size_multiple == 0 and x.shape[-1] % self.size_multiple == 0
        if scale is not None:
            assert scale.shape[0] == x.shape[0]
            x = x * scale.view(-1, 1, 1, 1)
        if "degradation" in kwargs:
            names = kwargs["degradation"]
            assert isinstance(names, list) and len(names) == x.shape[0]
            x = x * torch.tensor([0.5 if n == "rain" else 1.0 for n in names]).view(-1, 1, 1, 1)
        if "mode" in kwargs:
            assert kwargs["mode"] == "fixed"
        return x


@pytest.mark.parametrize(("height", "width"), [(97, 131), (64, 64), (50, 33)])
def test_identity_is_reconstructed_exactly_for_odd_sizes(height, width):
    x = torch.rand(2, 3, height, width)
    out = restore_tiled(nn.Identity(), x, tile=40, overlap=8, multiple=8, batch_size=3)
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-6)


def test_tiled_matches_untiled_for_a_translation_equivariant_model():
    model = conv_model()  # receptive field reaches 3 pixels
    x = torch.rand(1, 3, 97, 131)
    with torch.no_grad():
        reference = model(x)
    exact = restore_tiled(model, x, tile=48, overlap=12)  # ignores 12 // 4 = 3 edge pixels
    assert torch.allclose(exact, reference, atol=1e-5)
    blended = restore_tiled(model, x, tile=48, overlap=8)
    seams = restore_tiled(model, x, tile=48, overlap=0)
    # without blending the tile borders show up as seams; a short overlap mostly hides them
    assert (blended - reference).abs().max() < 0.1 * (seams - reference).abs().max()
    assert (blended - reference).abs().mean() < 1e-4


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    tile=st.integers(2, 40),
    overlap_fraction=st.floats(0, 0.95),
    multiple=st.sampled_from([1, 2, 8]),
)
def test_identity_is_reconstructed_for_any_geometry(
    height, width, tile, overlap_fraction, multiple
):
    overlap = int(overlap_fraction * tile)
    x = torch.rand(1, 2, height, width)
    out = restore_tiled(nn.Identity(), x, tile=tile, overlap=overlap, multiple=multiple)
    assert torch.allclose(out, x, atol=1e-6)


def test_pointwise_model_is_exact():
    pointwise = nn.Conv2d(3, 3, 1).eval()
    x = torch.rand(1, 3, 70, 45)
    with torch.no_grad():
        assert torch.allclose(
            restore_tiled(pointwise, x, tile=32, overlap=8), pointwise(x), atol=1e-6
        )


def test_pads_to_the_models_multiple_and_crops_back():
    model = Recorder(size_multiple=16)
    x = torch.rand(1, 3, 37, 53)
    out = restore_tiled(model, x, tile=64, overlap=8)
    assert torch.allclose(out, x)
    assert model.shapes == [(1, 3, 48, 64)]  # padded once to multiples of 16, then cropped
    big = Recorder(size_multiple=16)
    restore_tiled(big, torch.rand(1, 3, 100, 90), tile=40, overlap=8)
    assert all(h == w == 48 for *_, h, w in big.shapes)  # tile rounded up to a multiple


def test_tiles_go_through_in_bounded_batches():
    model = Recorder()
    x = torch.rand(2, 3, 64, 64)
    restore_tiled(model, x, tile=24, overlap=4, batch_size=4)
    assert max(shape[0] for shape in model.shapes) <= 4
    tiles_per_image = sum(shape[0] for shape in model.shapes) // 2
    assert tiles_per_image == 9  # 3×3 tiles over 64 px with 24 px tiles and stride 20


def test_per_sample_kwargs_are_sliced_and_repeated():
    model = Recorder()
    x = torch.rand(2, 3, 50, 50)
    out = restore_tiled(
        model,
        x,
        tile=24,
        overlap=4,
        scale=torch.tensor([1.0, 2.0]),
        degradation=["rain", "noise"],
        mode="fixed",
    )
    assert torch.allclose(out[0], 0.5 * x[0]) and torch.allclose(out[1], 2.0 * x[1])


def test_runs_without_grad_on_3d_input_and_returns_the_model_dtype():
    model = conv_model()
    x = torch.rand(3, 40, 40, requires_grad=True)
    out = restore_tiled(model, x, tile=24, overlap=4, progress=True)
    assert out.shape == (3, 40, 40) and not out.requires_grad
    half = restore_tiled(lambda t: t.half(), torch.rand(1, 3, 30, 30), tile=16, overlap=4)
    assert half.dtype == torch.float16


def test_errors():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="overlap"):
        restore_tiled(nn.Identity(), x, tile=16, overlap=16)
    with pytest.raises(ValueError, match="B×C×H×W"):
        restore_tiled(nn.Identity(), x[0, 0], tile=16)
    with pytest.raises(ValueError, match="spatial size"):
        restore_tiled(nn.MaxPool2d(2), x, tile=16, overlap=4)
    with pytest.raises(ValueError, match="multiple"):
        restore_tiled(nn.Identity(), x, multiple=0)
