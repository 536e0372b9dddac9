"""The PromptInPrompt unit: shapes, identity at init, conditioning, gradients, errors."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operators import backward_operators
from reference import compact_unit_reference
from torch.profiler import profile
from torch.utils.flop_counter import FlopCounterMode

from pip_adapter import (
    BasicRestorationPrompt,
    DegradationAwarePrompt,
    PromptInPrompt,
    PromptToPromptInteraction,
    SelectivePromptToFeature,
)
from pip_adapter.functional import DEFAULT_TOPM_RATIOS
from pip_adapter.layers import (
    ChannelCrossAttention,
    DualGatedFeedForward,
    project_add,
    project_scaled,
)
from pip_adapter.unit import DESIGNS, default_heads, default_prompt_dim, prompt_to_feature
from pip_adapter.unit.lowrank import DegradationLowRank
from pip_adapter.unit.resampling import (
    area_pool,
    resize,
    resize_add,
    stride_pool,
    upsample_add,
)

# at the torch floor (2.4) the FLOP counter and torch.export behave differently: follow-up
RECENT_TORCH = pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split(".")[:2]) < (2, 6),
    reason="FLOP counting and dynamic-shape export checked from torch 2.6",
)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def configurations(draw, min_head_width=1, min_size=1, min_dim=2, min_side=1):
    dim = draw(st.integers(max(min_dim, min_head_width), 24))
    head_width = draw(st.sampled_from([w for w in range(1, dim + 1) if dim % w == 0]))
    if head_width < min_head_width:
        head_width = dim
    return {
        "batch": draw(st.integers(1, 3)),
        "channels": draw(st.integers(1, 24)),
        "dim": dim,
        "heads": dim // head_width,
        "size": draw(st.integers(min_size, 8)),
        "degradations": draw(st.integers(2, 5)),
        "height": draw(st.integers(min_side, 40)),
        "width": draw(st.integers(min_side, 40)),
        "seed": draw(st.integers(0, 2**16)),
    }


def build(cfg, design="compact"):
    torch.manual_seed(cfg["seed"])
    unit = PromptInPrompt(
        cfg["channels"],
        cfg["degradations"],
        prompt_dim=cfg["dim"],
        prompt_size=cfg["size"],
        heads=cfg["heads"],
        design=design,
    )
    x = torch.randn(cfg["batch"], cfg["channels"], cfg["height"], cfg["width"])
    return unit, x


def one_hot(batch, num, index):
    return torch.nn.functional.one_hot(torch.full((batch,), index), num).float()


def perturb(unit, scale=0.5):
    with torch.no_grad():
        for p in unit.parameters():
            p.add_(torch.randn_like(p) * scale)


@pytest.mark.parametrize("design", DESIGNS)
@SETTINGS
@given(configurations())
def test_identity_at_init_shape_and_finite(design, cfg):
    unit, x = build(cfg, design)
    weights = torch.rand(cfg["batch"], cfg["degradations"]) + 0.01
    y = unit(x, weights)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert torch.equal(y, x)
    universal = unit.universal_prompt(x, weights)
    assert universal.shape == (cfg["batch"], cfg["dim"], cfg["height"], cfg["width"])


@pytest.mark.parametrize("design", DESIGNS)
@SETTINGS
@given(configurations(min_size=2, min_dim=4))
def test_degradations_steer_the_output_once_trained(design, cfg):
    # A layer norm over 2 or 3 channels keeps little more than a sign pattern, so the
    # degradation prompt is only guaranteed to matter from 4 channels on.
    unit, x = build(cfg, design)
    perturb(unit)
    first = unit(x, one_hot(cfg["batch"], cfg["degradations"], 0))
    second = unit(x, one_hot(cfg["batch"], cfg["degradations"], 1))
    assert torch.isfinite(first).all()
    assert (first - second).abs().max() > 1e-6


@pytest.mark.parametrize("design", DESIGNS)
@SETTINGS
@given(configurations(min_head_width=3, min_size=2, min_side=2))
def test_every_parameter_receives_a_gradient(design, cfg):
    # Excluded by construction, not by accident: heads narrower than 3 channels keep a single
    # logit per row (top-m of 1 or 2), where the softmax is constant; and on a 1×1 feature the
    # L2 normalisation over pixels is a sign function. Both have zero gradients by design.
    unit, x = build(cfg, design)
    perturb(unit)
    weights = torch.rand(cfg["batch"], cfg["degradations"]) + 0.01
    unit(x, weights).square().mean().backward()
    for name, p in unit.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize(("channels", "dim"), [(12, 8), (8, 8), (5, 8)])
def test_identity_at_init_each_width_regime(channels, dim, design):
    unit = PromptInPrompt(channels, 5, prompt_dim=dim, prompt_size=4, design=design)
    x = torch.randn(2, channels, 9, 7) * 10
    assert torch.equal(unit(x, torch.eye(5)[:2]), x)


@pytest.mark.parametrize("design", DESIGNS)
def test_selective_passes_extra_channels_through_untouched(design):
    unit = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, design=design)
    perturb(unit)
    x = torch.randn(1, 12, 6, 6)
    y = unit(x, torch.tensor([[0.2, 0.3, 0.5]]))
    assert torch.equal(y[:, 8:], x[:, 8:])
    assert not torch.allclose(y[:, :8], x[:, :8])


def test_weights_rows_are_normalised():
    unit = PromptInPrompt(6, 3, prompt_size=4)
    perturb(unit)
    x = torch.randn(2, 6, 5, 5)
    w = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    torch.testing.assert_close(unit(x, w), unit(x, w / w.sum(1, keepdim=True)))


def test_mixture_lies_between_its_components_in_prompt_space():
    dap = DegradationAwarePrompt(3, 8)
    mix = dap(torch.tensor([[0.5, 0.5, 0.0]]))
    torch.testing.assert_close(mix[0], 0.5 * (dap.prompts[0] + dap.prompts[1]))


@pytest.mark.parametrize("design", DESIGNS)
def test_parameter_count_formula(design):
    def formula(c, d, s, t, heads, ratios=4, r=0):
        h = int(2.66 * d)
        f = h if design == "paper" else d
        n = t * d + d * s * s + c * d + 17 * d * d + 3 * (h + f) * d + 66 * d + 18 * (h + f)
        return n + 2 * heads + ratios + (c * d if c < d else 0) + t * r * (2 * d + 3 * f)

    for c, d, s, t, r in [
        (48, 48, 16, 5, 0),
        (96, 64, 16, 5, 0),
        (8, 24, 8, 3, 0),
        (192, 96, 12, 7, 0),
        (96, 64, 16, 4, 32),
        (8, 24, 8, 3, 5),
    ]:
        unit = PromptInPrompt(
            c, t, prompt_dim=d, prompt_size=s, design=design, degradation_ffn_rank=r
        )
        assert sum(p.numel() for p in unit.parameters()) == formula(c, d, s, t, unit.heads, r=r)
    unit = PromptInPrompt(48, 5, prompt_dim=48, design=design)
    expected = 98_322 if design == "paper" else 85_524
    assert sum(p.numel() for p in unit.parameters()) == expected


def shared_twin(unit: PromptInPrompt, weights: torch.Tensor) -> PromptInPrompt:
    """A unit without per-degradation updates whose feed-forward holds ``unit``'s shared
    projections plus the updates that ``weights`` (one row) mix: what ``unit`` must compute
    for a sample with those weights."""
    twin = PromptInPrompt(
        unit.channels,
        unit.num_degradations,
        prompt_dim=unit.prompt_dim,
        prompt_size=unit.prompt_size,
        design=unit.design,
    )
    interaction = unit.prompt_to_feature
    twin.to(unit.prompt_to_feature.ffn_in_update.up.dtype)
    loaded = twin.load_state_dict(unit.state_dict(), strict=False)
    assert not loaded.missing_keys
    assert sorted(loaded.unexpected_keys) == [  # all but the updates
        f"prompt_to_feature.ffn_{side}_update.{factor}"
        for side in ("in", "out")
        for factor in ("down", "up")
    ]
    with torch.no_grad():
        ffn = twin.prompt_to_feature.ffn
        ffn.project_in.weight.add_(interaction.ffn_in_update(weights)[0, :, :, None, None])
        ffn.project_out.weight.add_(interaction.ffn_out_update(weights)[0, :, :, None, None])
    return twin


@pytest.mark.parametrize("design", DESIGNS)
def test_degradation_ffn_updates_follow_labels_and_mixtures(design):
    unit = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, design=design, degradation_ffn_rank=2)
    x = torch.randn(3, 12, 7, 7, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    unit.double()  # the twins below run another kernel: compared far below float32 rounding
    assert torch.equal(unit(x, eye), x)  # the updates start at zero: still the identity
    perturb(unit)
    mixture = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)
    with torch.no_grad():
        labelled, mixed = unit(x, eye), unit(x[:1], mixture)
        # a sample computes what a shared feed-forward holding its own update computes
        for t in range(3):
            twin = shared_twin(unit, eye[t : t + 1])
            torch.testing.assert_close(labelled[t : t + 1], twin(x[t : t + 1], eye[t : t + 1]))
        torch.testing.assert_close(mixed, shared_twin(unit, mixture)(x[:1], mixture))
        update = unit.prompt_to_feature.ffn_in_update
        expected = sum(w * update.up[t] @ update.down[t] for t, w in enumerate(mixture[0]))
        torch.testing.assert_close(update(mixture)[0], expected)
        # another degradation's update leaves a label's output bit-exact
        update.up[2].add_(1.0)
        update.down[2].add_(1.0)
        again = unit(x, eye)
    assert torch.equal(again[:2], labelled[:2])
    assert not torch.allclose(again[2], labelled[2])


def test_degradation_ffn_updates_are_checked_and_need_the_weights():
    with pytest.raises(ValueError, match="degradation_ffn_rank must be 0 .* got -1"):
        PromptInPrompt(8, 2, degradation_ffn_rank=-1)
    unit = PromptInPrompt(8, 2, prompt_size=4, degradation_ffn_rank=2)
    with pytest.raises(ValueError, match="pass the degradation weights"):
        unit.prompt_to_feature.feed_forward(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match=r"shape \(batch, num_degradations\) = \(1, 2\)"):
        unit.add_degradations(torch.ones(1, 8))
    assert unit.num_degradations == 2 and not unit.degradation_prompt.added
    with pytest.raises(ValueError, match="start must be k×2 weights"):
        unit.prompt_to_feature.ffn_in_update.add_rows(torch.ones(3))


def low_rank_updates(module: DegradationLowRank) -> torch.Tensor:
    """Every degradation's ``B_t A_t`` (``T×out×in``), from its one-hot weights."""
    return module(torch.eye(module.num_degradations, dtype=module.up.dtype))


@pytest.mark.parametrize("rank", [2, 7])  # below and above the matrix's smaller side (6)
def test_low_rank_updates_grow_from_the_nearest_update_and_keep_the_old_ones(rank):
    torch.manual_seed(0)
    module = DegradationLowRank(3, 8, 6, rank).double()
    perturb(module)
    weights = torch.rand(4, 3, dtype=torch.float64)
    before, updates = module(weights), low_rank_updates(module)
    mixture = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)
    start = torch.cat([torch.eye(3, dtype=torch.float64)[1:2], mixture])
    up, down = module.add_rows(start)
    assert up.shape == (2, 8, rank) and down.shape == (2, rank, 6) and module.num_degradations == 5
    # weights that are zero on the new degradations: the update of the table before growth
    assert torch.equal(module(torch.cat([weights, torch.zeros(4, 2).double()], 1)), before)
    grown = low_rank_updates(module)
    torch.testing.assert_close(grown[:3], updates, rtol=0, atol=0)
    torch.testing.assert_close(grown[3], updates[1])  # one old degradation's own update
    target = torch.einsum("t,toi->oi", mixture[0], updates)
    tail = torch.linalg.svdvals(target)[rank:]  # what no rank-r update holds (Eckart-Young)
    error = torch.linalg.matrix_norm(grown[4] - target)
    torch.testing.assert_close(error, tail.square().sum().sqrt(), rtol=1e-9, atol=1e-9)
    assert (error < 0.5 * torch.linalg.matrix_norm(target)) and (rank > 6 or error > 1e-3)
    # the file holds whole tables: a module built with all five degradations loads it
    state = module.state_dict()
    assert sorted(state) == ["down", "up"] and state["up"].shape == (5, 8, rank)
    fresh = DegradationLowRank(5, 8, 6, rank).double()
    fresh.load_state_dict(state)
    twin = DegradationLowRank(3, 8, 6, rank).double()
    twin.add_rows(start)
    twin.load_state_dict(state)  # split back into the blocks
    weights = torch.rand(4, 5, dtype=torch.float64)
    torch.testing.assert_close(fresh(weights), module(weights), rtol=1e-12, atol=1e-12)
    assert torch.equal(twin(weights), module(weights))


def test_low_rank_updates_grown_from_zero_still_train():
    # untrained updates (B = 0) mix to zero: the new ones start at zero too, with A's rows
    # orthonormal, so that a gradient reaches B at once (and A once B has moved), as in LoRA
    module = DegradationLowRank(2, 8, 6, 3)
    up, down = module.add_rows(torch.ones(1, 2))
    assert not up.any() and torch.allclose(down[0] @ down[0].T, torch.eye(3), atol=1e-6)
    target = torch.randn(8, 6)
    optimizer = torch.optim.SGD([up, down], lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        (module(torch.tensor([[0.0, 0.0, 1.0]]))[0] - target).square().sum().backward()
        assert up.grad.abs().sum() > 0
        optimizer.step()
    assert down.grad.abs().sum() > 0


def _flops(module, *inputs):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops()


def _resampling_flops(channels, dim, size, height, width):
    """Multiply-adds (×2) of the compact unit's resampling matrix products: area pooling of
    the feature onto the s×s grid, bilinear resizing of the d-channel update back."""
    pool = channels * size * (height * width + width * size)
    resize = dim * height * (size * size + size * width)
    return 2 * (pool + resize)


@RECENT_TORCH
def test_compact_design_runs_only_its_feed_forward_per_pixel():
    # Every convolution and matmul of the compact unit but its feed-forward and the
    # resampling (pooling onto the grid, resizing back) runs on the s×s grid: growing the
    # feature adds exactly those FLOPs; the paper unit's grow by far more.
    weights = torch.eye(3)[:1]
    small, large = torch.randn(1, 24, 32, 32), torch.randn(1, 24, 128, 128)
    compact = PromptInPrompt(24, 3, prompt_dim=16, prompt_size=8)
    paper = PromptInPrompt(24, 3, prompt_dim=16, prompt_size=8, design="paper")
    ffn = compact.prompt_to_feature.ffn
    per_pixel = _flops(ffn, large[:, :16]) - _flops(ffn, small[:, :16])
    resampling = _resampling_flops(24, 16, 8, 128, 128) - _resampling_flops(24, 16, 8, 32, 32)
    growth = _flops(compact, large, weights) - _flops(compact, small, weights)
    assert growth == per_pixel + resampling
    assert _flops(paper, large, weights) - _flops(paper, small, weights) > 5 * per_pixel


def test_compact_attention_runs_on_the_prompt_grid():
    torch.manual_seed(0)
    unit = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4)
    perturb(unit)
    x, weights = torch.randn(2, 12, 16, 16), torch.eye(3)[:2]
    interaction = unit.prompt_to_feature
    small = torch.nn.functional.adaptive_avg_pool2d(x, 4)
    attended = interaction.attend(small[:, :8], unit.universal_prompt(small, weights))
    resized = torch.nn.functional.interpolate(attended, size=(16, 16), mode="bilinear")
    expected = interaction.feed_forward(x[:, :8] + resized)
    y = unit(x, weights)
    # the unit's fused form rounds differently: ~1e-6 of the largest value (up to ~50 here),
    # which an element near zero sees as an absolute error
    scale = expected.abs().max().item()
    torch.testing.assert_close(y[:, :8], expected, rtol=1e-5, atol=1e-5 * scale)
    assert torch.equal(y[:, 8:], x[:, 8:])


def test_designs_differ_only_in_the_feature_feed_forward_width():
    compact = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4)
    paper = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, design="paper")
    assert paper.prompt_to_feature.ffn.project_out.in_channels == int(2.66 * 8)
    assert compact.prompt_to_feature.ffn.project_out.in_channels == 8
    wide = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, feature_ffn_expansion=2.66)
    paper.load_state_dict(wide.state_dict())
    assert "design='compact'" in repr(compact) and "design='paper'" in repr(paper)


def test_defaults_derived_from_channels():
    assert [default_prompt_dim(c) for c in (1, 8, 48, 96, 384)] == [2, 8, 48, 64, 64]
    assert [default_heads(d) for d in (8, 48, 64, 96, 100)] == [1, 1, 2, 3, 2]
    unit = PromptInPrompt(96, 5)
    assert (unit.prompt_dim, unit.heads, unit.prompt_size) == (64, 2, 16)


def test_regularization_angle_form():
    unit = PromptInPrompt(8, 4, prompt_size=2)
    assert unit.prompt_regularization().item() < 1e-5  # orthogonal at init
    with torch.no_grad():
        unit.degradation_prompt.prompts.copy_(
            torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]).repeat(1, 4)
        )
    cos45 = math.cos(math.radians(45))
    # pairs: (0,1) 45deg, (1,2) 45deg, (0,2) 90deg, (0,3) 180, (1,3) 135, (2,3) 90
    assert unit.prompt_regularization().item() == pytest.approx(2 * cos45, abs=1e-6)
    assert unit.prompt_regularization(angle_degrees=60).item() == pytest.approx(
        2 * (cos45 - 0.5), abs=1e-6
    )
    assert PromptInPrompt(8, 1).prompt_regularization().item() == 0


def test_named_parts_are_usable_alone():
    basic = BasicRestorationPrompt(8, 4)()
    assert basic.shape == (1, 8, 4, 4)
    fused = PromptToPromptInteraction(8, 2)(basic, torch.randn(3, 8, 4, 4))
    assert fused.shape == (3, 8, 4, 4)
    selective = SelectivePromptToFeature(12, 8, 2)
    x = torch.randn(3, 12, 5, 5)
    assert torch.equal(selective(x, torch.randn(3, 8, 5, 5)), x)


def test_double_and_half_precision():
    unit = PromptInPrompt(6, 2, prompt_size=4).double()
    x = torch.randn(1, 6, 5, 5, dtype=torch.float64)
    assert unit(x, torch.tensor([[1.0, 0.0]])).dtype == torch.float64
    unit = unit.bfloat16()
    perturb(unit, 0.1)
    y = unit(x.bfloat16(), torch.tensor([[1.0, 0.0]]))
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()


@pytest.mark.parametrize(
    ("x", "weights", "error", "message"),
    [
        (torch.randn(6, 5, 5), torch.eye(2)[:1], ValueError, r"4-D tensor \(B, C, H, W\)"),
        (torch.randn(1, 7, 5, 5), torch.eye(2)[:1], ValueError, "has 7 channels .* built for 6"),
        (torch.randn(2, 6, 5, 5), torch.eye(2)[:1], ValueError, r"shape .* = \(2, 2\)"),
        (torch.randn(1, 6, 5, 5), torch.ones(1, 3), ValueError, r"\(1, 2\), got \(1, 3\)"),
        (torch.randn(1, 6, 5, 5), torch.tensor([[1.0, -0.5]]), ValueError, "non-negative"),
        (torch.randn(1, 6, 5, 5), torch.tensor([[1.0, float("nan")]]), ValueError, "NaN"),
        (torch.randn(2, 6, 5, 5), torch.tensor([[1.0, 0], [0, 0]]), ValueError, r"rows \[1\]"),
        (torch.randn(1, 6, 5, 5), torch.tensor([[1, 0]]), ValueError, "floating-point"),
        (torch.randn(1, 6, 5, 5), [[1.0, 0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_input_validation(x, weights, error, message):
    unit = PromptInPrompt(6, 2, prompt_size=4)
    with pytest.raises(error, match=message):
        unit(x, weights)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_dim": 1}, "at least 2"),
        ({"prompt_dim": 10, "heads": 3}, "multiple of heads"),
        ({"prompt_size": 0}, "prompt_size must be a positive"),
        ({"num_degradations": 0}, "num_degradations must be a positive"),
        ({"design": "fast"}, r"design must be one of \('compact', 'paper'\)"),
    ],
)
def test_constructor_validation(kwargs, message):
    args = {"channels": 6, "num_degradations": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        PromptInPrompt(**args)


@pytest.mark.parametrize(("height", "width"), [(16, 16), (37, 53), (5, 9), (3, 2)])
def test_area_pool_is_adaptive_average_pooling(height, width):
    x = torch.randn(2, 3, height, width)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, 4)
    torch.testing.assert_close(area_pool(x, 4), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("height", "width"), [(16, 16), (37, 53), (5, 9), (3, 2)])
def test_resizing_by_products_is_bilinear_interpolation(height, width):
    # resize (the strided feed-forward's input) and resize_add (the same added to a feature)
    small, x = torch.randn(2, 3, 4, 6), torch.randn(2, 3, height, width)
    expected = torch.nn.functional.interpolate(small, (height, width), mode="bilinear")
    torch.testing.assert_close(resize(small, height, width), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(resize_add(x, small), x + expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("height", "width", "stride"), [(16, 12, 2), (37, 53, 2), (12, 9, 3)])
def test_stride_pooling_is_average_pooling_with_partial_windows(height, width, stride):
    # where the windows tile the feature a depth-wise convolution pools it, elsewhere torch's
    # pooling does: the same means (values and gradients), partial windows at the border
    # averaging what they hold
    x = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
    pooled = stride_pool(x, stride)
    expected = torch.nn.functional.avg_pool2d(x, stride, ceil_mode=True)
    torch.testing.assert_close(pooled, expected, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(pooled)
    (got,) = torch.autograd.grad(pooled, x, upstream)
    (wanted,) = torch.autograd.grad(expected, x, upstream)
    torch.testing.assert_close(got, wanted, rtol=1e-12, atol=1e-12)
    assert stride_pool(x, 1) is x


def test_stride_pooling_keeps_the_features_dtype_under_autocast():
    # autocast would run the depth-wise convolution in bf16; torch's pooling keeps float32
    x = torch.randn(1, 4, 16, 16)
    with torch.autocast("cpu", torch.bfloat16):
        pooled = stride_pool(x, 2)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, torch.nn.functional.avg_pool2d(x, 2, ceil_mode=True))


@pytest.mark.parametrize(("height", "width", "stride"), [(32, 16, 2), (24, 36, 3), (37, 53, 2)])
def test_the_prompt_grid_from_the_pooled_feature_is_the_area_pooling_of_the_feature(
    height, width, stride
):
    # sides multiples of stride·size: the grid averages the pooled feature, four times smaller
    # (the feature itself is not read: NaNs there stay out); elsewhere it pools the feature
    x = torch.randn(2, 3, height, width)
    pooled = torch.nn.functional.avg_pool2d(x, stride, ceil_mode=True)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, 4)
    torch.testing.assert_close(area_pool(x, 4, pooled, stride), expected, rtol=1e-5, atol=1e-6)
    tiled = height % (4 * stride) == width % (4 * stride) == 0
    assert area_pool(torch.full_like(x, math.nan), 4, pooled, stride).isnan().any() != tiled


def test_upsampling_adds_into_the_resized_map_only_in_the_same_dtype():
    small, x = torch.randn(2, 3, 8, 7), torch.randn(2, 3, 16, 13)
    expected = x + torch.nn.functional.interpolate(small, (16, 13), mode="bilinear")
    torch.testing.assert_close(upsample_add(x, small), expected, rtol=0, atol=0)
    # a bf16 map added to a float32 feature is a float32 sum, as in the formula
    mixed = upsample_add(x, small.bfloat16())
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, expected, rtol=0.02, atol=0.05)
    wide = x.double() + torch.nn.functional.interpolate(small.double(), (16, 13), mode="bilinear")
    torch.testing.assert_close(upsample_add(x, small.double()), wide, rtol=0, atol=0)


@RECENT_TORCH
def test_the_strided_unit_exports_with_torchs_pooling_and_the_same_outputs():
    # exported (traced), the strided unit pools with torch's pooling and averages the grid
    # from the feature: the eager unit's fast paths compute the same
    torch.manual_seed(0)
    unit = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, feature_ffn_stride=2).eval()
    perturb(unit, scale=0.1)
    x, weights = torch.rand(1, 12, 16, 24), torch.tensor([[0.2, 0.3, 0.5]])
    program = torch.export.export(unit, (x, weights))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert "aten.avg_pool2d.default" in targets
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x, weights), unit(x, weights))


def test_the_strided_unit_reads_the_full_resolution_feature_in_two_operators():
    # issue 14: the strided unit pools the full-resolution feature once (the prompt grid is
    # averaged from the pooled feature where its windows tile the grid's bins), and its update
    # comes back in one resize whose output takes the feature's sum: two operators read a
    # full-resolution tensor (before: three, a pooling, a product onto the grid and the
    # resize's product, which also made a half-resolution tensor). On a grid that the windows
    # do not tile the feature is averaged onto the grid from the full resolution (one more),
    # and the feed-forward pools its own channels after.
    torch.manual_seed(0)
    unit = PromptInPrompt(16, 3, prompt_dim=16, prompt_size=4, feature_ffn_stride=2).eval()
    perturb(unit, 0.3)
    weights = torch.tensor([[0.2, 0.3, 0.5]])
    for side, expected in (
        (32, ["aten::conv2d", "aten::add_"]),
        (36, ["aten::matmul", "aten::conv2d", "aten::add_"]),
    ):
        x = torch.randn(1, 16, side, side)
        with torch.inference_mode(), profile(record_shapes=True) as prof:
            unit(x, weights)
        reading = [
            e.name
            for e in prof.events()
            if (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
            and e.name not in ("aten::reshape", "aten::view")
            and any(math.prod(shape) >= x.numel() for shape in e.input_shapes if shape)
        ]
        assert reading == expected


def test_a_strided_unit_on_a_wide_stage_pools_all_channels_only_for_the_grid():
    # A stage wider than the prompt (C > d): the feature pooled for the prompt grid holds all
    # C channels (the content alignment reads them), so it is pooled whole only where its
    # windows tile the grid's bins; elsewhere the feed-forward pools the d channels it reads.
    torch.manual_seed(0)
    unit = PromptInPrompt(24, 3, prompt_dim=16, prompt_size=4, feature_ffn_stride=2).eval()
    weights = torch.tensor([[0.2, 0.3, 0.5]])
    for side, channels in ((32, 24), (36, 16)):
        x = torch.randn(1, 24, side, side)
        with torch.inference_mode(), profile(record_shapes=True) as prof:
            unit(x, weights)
        pooling = [e.input_shapes[0] for e in prof.events() if e.name == "aten::conv2d"]
        assert [1, channels, side, side] in pooling


@RECENT_TORCH
@pytest.mark.parametrize("design", DESIGNS)
def test_exported_unit_keeps_height_and_width_dynamic(design):
    unit = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, design=design).eval()
    perturb(unit, scale=0.1)
    weights = torch.tensor([[0.2, 0.3, 0.5]])
    size = {2: torch.export.Dim("height", min=2, max=256), 3: torch.export.Dim("width", max=256)}
    program = torch.export.export(
        unit, (torch.rand(1, 12, 24, 20), weights), dynamic_shapes=(size, None)
    )
    for shape in ((1, 12, 37, 53), (1, 12, 4, 4)):
        x = torch.rand(shape)
        with torch.no_grad():
            # the exported compact unit pools by matrix products: rounding differs slightly
            torch.testing.assert_close(
                program.module()(x, weights), unit(x, weights), rtol=1e-3, atol=1e-4
            )


def test_feature_ffn_stride_runs_the_feed_forward_on_the_pooled_feature():
    # the same parameters with and without the stride: the outputs differ (the option is not
    # ignored); a feature the size of one pooling window gets one update for all its pixels
    torch.manual_seed(0)
    per_pixel = PromptInPrompt(16, 3, prompt_dim=16, prompt_size=4)
    perturb(per_pixel, 0.3)
    pooled = PromptInPrompt(16, 3, prompt_dim=16, prompt_size=4, feature_ffn_stride=2)
    pooled.load_state_dict(per_pixel.state_dict())
    assert pooled.prompt_to_feature.ffn_stride == 2
    x, weights = torch.randn(2, 16, 24, 20), torch.tensor([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])
    with torch.no_grad():
        a, b = per_pixel(x, weights), pooled(x, weights)
        assert not torch.allclose(a, b, atol=1e-3)
        one_window = torch.randn(1, 16, 2, 2)
        update = pooled(one_window, weights[:1]) - one_window
        torch.testing.assert_close(update, update[..., :1, :1].expand_as(update))


def test_feature_ffn_stride_is_checked():
    with pytest.raises(ValueError, match="ffn_stride must be a positive integer, got 0"):
        PromptInPrompt(8, 2, feature_ffn_stride=0)
    with pytest.raises(ValueError, match="feature_ffn_stride needs the compact design"):
        PromptInPrompt(8, 2, design="paper", feature_ffn_stride=2)


# (channels, prompt dim, heads, prompt size, batch, height, width): wider and narrower features
# than the prompt, features already on the prompt grid, integer multiples of it and other sizes
PINNED = [
    (24, 16, 2, 8, 1, 8, 8),
    (24, 16, 2, 8, 2, 32, 16),
    (16, 16, 1, 8, 1, 40, 40),
    (12, 16, 2, 4, 2, 37, 53),
    (16, 16, 4, 6, 1, 5, 9),
]


# the same with the feed-forward on a pooled feature: even and odd sides (partial windows),
# a pooled feature smaller than the prompt grid, one side shorter than the stride; windows
# that tile the feature (pooled by a convolution)
PINNED_STRIDED = [
    (24, 16, 2, 8, 2, 32, 16, 2),
    (12, 16, 2, 4, 2, 37, 53, 2),
    (16, 16, 4, 6, 1, 5, 9, 2),
    (16, 16, 1, 4, 1, 23, 2, 3),
    # sides multiples of stride·size: the grid averaged from the pooled feature
    (12, 16, 2, 4, 1, 24, 16, 2),
    (16, 16, 1, 4, 1, 24, 12, 3),
]


@pytest.mark.parametrize(
    ("channels", "dim", "heads", "size", "batch", "height", "width", "stride"),
    [(*case, 1) for case in PINNED] + PINNED_STRIDED,
)
def test_compact_unit_computes_the_reference_formula(
    channels, dim, heads, size, batch, height, width, stride
):
    # What the default unit computes is pinned to the formula written out with plain torch
    # operations (tests/reference.py): however the unit is made faster, its outputs stay those
    # of the formula (float32 to 1e-5, float64 to 1e-10), and so do its gradients.
    torch.manual_seed(channels + height)
    unit = PromptInPrompt(
        channels, 3, prompt_dim=dim, prompt_size=size, heads=heads, feature_ffn_stride=stride
    )
    perturb(unit, 0.3)
    x = torch.randn(batch, channels, height, width)
    weights = torch.tensor([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])[:batch]
    with torch.no_grad():
        expected = compact_unit_reference(unit, x, weights)
        # float32 rounding of the larger terms, where they cancel
        atol = max(1e-5, 1e-6 * expected.abs().max().item())
        torch.testing.assert_close(unit(x, weights), expected, rtol=1e-5, atol=atol)
    with torch.inference_mode():
        torch.testing.assert_close(unit(x, weights), expected, rtol=1e-5, atol=atol)
    unit, x = unit.double(), x.double().requires_grad_()
    y = unit(x, weights.double())
    expected = compact_unit_reference(unit, x, weights.double())
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-10)
    upstream = torch.randn_like(y)
    leaves = [x, *unit.parameters()]
    grads = torch.autograd.grad(y, leaves, upstream, allow_unused=True)
    expected_grads = torch.autograd.grad(expected, leaves, upstream, allow_unused=True)
    for a, b in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-8)


def test_the_feed_forward_tokens_come_by_the_2d_transpose_at_batch_1(monkeypatch):
    # At batch 1 on the CPU the per-pixel feed-forward's tokens are a contiguous copy made by
    # the 2-D transpose, faster than the 4-D copy the layer norm makes of a permuted view
    # (benchmarks/overhead.py --transpose); a batch keeps the permuted view. The unit's output
    # is the same bit for bit.
    y = torch.randn(1, 8, 5, 7)
    tokens = prompt_to_feature._tokens(y)
    assert tokens.is_contiguous() and torch.equal(tokens, y.permute(0, 2, 3, 1))
    batch = torch.randn(2, 8, 5, 7)
    assert prompt_to_feature._tokens(batch).data_ptr() == batch.data_ptr()
    torch.manual_seed(0)
    unit = PromptInPrompt(16, 3, prompt_dim=16, prompt_size=4, heads=2).eval()
    perturb(unit, 0.3)
    x, weights = torch.randn(1, 16, 12, 12), torch.tensor([[0.2, 0.3, 0.5]])
    with torch.inference_mode():
        copied = unit(x, weights)
        monkeypatch.setattr(prompt_to_feature, "_tokens", lambda y: y.permute(0, 2, 3, 1))
        viewed = unit(x, weights)
    assert torch.equal(copied, viewed)


# with each degradation's own feed-forward update (rank 2) as well: per-sample matrices
@pytest.mark.parametrize("rank", [0, 2])
def test_unit_runs_under_autocast_and_when_traced_without_gradients(rank):
    # The inference path that adds into the unit's own intermediate must step aside where an
    # in-place product is wrong: under autocast (bf16 activations, float32 weights) and in a
    # graph recorded without gradients that is later run with them. Under autocast the unit
    # returns the float32 of its feature, as its formula does (a float32 feature plus bf16
    # updates): products that add the residual fall back to the sum there (``add_product``).
    torch.manual_seed(0)
    unit = PromptInPrompt(16, 3, prompt_dim=16, prompt_size=4, heads=2, degradation_ffn_rank=rank)
    unit.eval()
    perturb(unit, 0.3)
    x = torch.randn(1, 16, 12, 12)
    weights = torch.tensor([[0.2, 0.3, 0.5]])
    with torch.no_grad():
        expected = unit(x, weights)
        with torch.autocast("cpu", torch.bfloat16):
            mixed = unit(x, weights)
            # the reference formula has no per-degradation updates
            formula = compact_unit_reference(unit, x, weights) if not rank else mixed
    assert mixed.dtype == formula.dtype == torch.float32
    torch.testing.assert_close(mixed.float(), expected, rtol=0.1, atol=0.1)
    with torch.no_grad():
        traced = torch.jit.trace(unit, (x, weights), check_trace=False)
    y = traced(x.requires_grad_(), weights)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), expected, rtol=1e-5, atol=1e-5)
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pointwise_products_equal_the_convolution_and_its_residual_or_scale(layout):
    # The unit's grid work folds a residual add and a per-channel scale into the products of
    # its 1×1 convolutions: same values and gradients (float64), broadcast residual included,
    # and the results come channels-last (what the next layer norm reads contiguous).
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 4, kernel_size=1, bias=False).double()
    x = torch.randn(3, 6, 5, 7, dtype=torch.float64).contiguous(memory_format=layout)
    x.requires_grad_()
    residual = torch.randn(1, 4, 5, 7, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    cases = (
        (project_add(conv, x, residual), residual + conv(x), residual),
        (project_scaled(conv, x, scale), scale[:, :, None, None] * conv(x), scale),
    )
    for got, expected, other in cases:
        assert got.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        upstream = torch.randn_like(expected)
        leaves = [x, other, conv.weight]
        for a, b in zip(
            torch.autograd.grad(got, leaves, upstream),
            torch.autograd.grad(expected, leaves, upstream),
            strict=True,
        ):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# aliasing operators and bare allocations: no kernel of their own
ALIASES = {
    f"aten::{name}"
    for name in [
        "view",
        "reshape",
        "select",
        "slice",
        "chunk",
        "detach",
        "unsqueeze",
        "transpose",
        "numpy_T",
        "empty",
        "empty_like",
    ]
}


@pytest.mark.parametrize("dim", [1, -1])
def test_the_dual_gate_is_one_node_with_the_formulas_values_and_gradients(dim):
    # While gradients are recorded the dual gate gelu(a)·b + gelu(b)·a is one autograd node
    # whose backward runs fewer operators than the formula's (each a kernel launch on a GPU),
    # with the formula's values and gradients (float64), also under torch.func
    torch.manual_seed(0)
    gate = DualGatedFeedForward(4).gate
    hidden = torch.randn(2, 6, 5, 6, dtype=torch.float64, requires_grad=True)

    def formula(h):
        a, b = h.chunk(2, dim=dim)
        return torch.nn.functional.gelu(a) * b + torch.nn.functional.gelu(b) * a

    gated = gate(hidden, dim)
    assert type(gated.grad_fn).__name__ == "_DualGateBackward"
    torch.testing.assert_close(gated, formula(hidden), rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(gated)
    (got,) = torch.autograd.grad(gated, hidden, upstream)
    (expected,) = torch.autograd.grad(formula(hidden), hidden, upstream)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda h: gate(h, dim), (hidden,))
    by_func = torch.func.grad(lambda h: (gate(h, dim) * upstream).sum())(hidden.detach())
    torch.testing.assert_close(by_func, expected, rtol=1e-12, atol=1e-12)
    # two products, the gelu's derivative and two fused multiply-adds; the formula's: ten
    assert backward_operators(gate(hidden, dim), ALIASES) < backward_operators(
        formula(hidden), ALIASES
    )


def test_a_dual_gated_feed_forward_traces_with_gradients_on():
    # torch.jit.trace records operators: the gate's autograd node would make the traced
    # graph differ from the checking run; traced, the gate is the formula
    torch.manual_seed(0)
    ffn = DualGatedFeedForward(4)
    x = torch.randn(1, 4, 5, 5)
    traced = torch.jit.trace(ffn, x)
    torch.testing.assert_close(traced(x), ffn(x))


def test_pointwise_products_keep_the_residual_dtype_under_autocast():
    # under bf16 autocast the fused product would turn the float32 residual stream bf16; the
    # sum it replaces keeps float32 (a float32 residual plus a bf16 convolution)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 4, kernel_size=1, bias=False)
    x, residual, scale = torch.randn(2, 6, 5, 7), torch.randn(1, 4, 5, 7), torch.randn(2, 4)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        added, expected_added = project_add(conv, x, residual), residual + conv(x)
        scaled, expected_scaled = project_scaled(conv, x, scale), scale[:, :, None, None] * conv(x)
        p2p = PromptToPromptInteraction(8, 2)
        prompt = p2p(torch.randn(1, 8, 4, 4), torch.randn(2, 8, 4, 4))
    assert added.dtype == expected_added.dtype == torch.float32
    assert scaled.dtype == expected_scaled.dtype
    torch.testing.assert_close(added, expected_added)
    torch.testing.assert_close(scaled, expected_scaled)
    assert prompt.dtype == torch.float32


def _top_level_operators(run) -> list[str]:
    """The aten operators ``run()`` calls itself (not those they call), aliases left out, after
    a warm-up call (which builds the constants it keeps)."""
    run()
    with profile() as prof:
        run()
    return [
        e.name
        for e in prof.events()
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
        and e.name not in ALIASES
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("topm_ratios", [DEFAULT_TOPM_RATIOS, None])
def test_the_grid_attention_takes_the_query_and_key_norms_in_one_reduction(dtype, topm_ratios):
    # issue 14: at inference the compact design's attention on the prompt grid stacks its
    # queries and keys, so that their norms are one reduction and one clamp: the values of
    # the attention's formula (forward), one operator fewer (a copy of the small grid for two
    # reductions and two clamps). With gradients on it is the formula's path itself.
    torch.manual_seed(0)
    attention = ChannelCrossAttention(16, 2, topm_ratios=topm_ratios).to(dtype)
    perturb(attention, 0.3)
    a, b = (torch.randn(2, 16, 6, 6, dtype=dtype) for _ in range(2))
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    with torch.no_grad():
        expected = attention(a, b)
        torch.testing.assert_close(attention.attend_small(a, b), expected, **tolerance)
        with torch.autocast("cpu", torch.bfloat16):  # the joint path too, the same values
            torch.testing.assert_close(attention.attend_small(a, b), attention(a, b))
        stacked = _top_level_operators(lambda: attention.attend_small(a, b))
        formula = _top_level_operators(lambda: attention(a, b))
    assert (
        stacked.count("aten::linalg_vector_norm") == 1 < formula.count("aten::linalg_vector_norm")
    )
    assert len(stacked) == len(formula) - 1
    b.requires_grad_()
    y = attention.attend_small(a, b)
    assert y.grad_fn is not None
    assert _top_level_operators(lambda: attention.attend_small(a, b)) == _top_level_operators(
        lambda: attention(a, b)
    )
    torch.testing.assert_close(y.detach(), expected, **tolerance)
