"""Top-m channel attention: the fast form against the naive four-topk reference."""

import pytest
import torch
from operators import backward_operators
from reference import naive_topm

from pip_adapter.functional import (
    DEFAULT_TOPM_RATIOS,
    channel_attention,
    cosine_logits,
    query_scales,
    scaled_logits,
    stacked_logits,
    topm_channel_attention,
    topm_keep_counts,
)


def _inputs(batch, heads, channels, pixels, seed=0):
    g = torch.Generator().manual_seed(seed)
    make = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    q, k, v = (make(batch, heads, channels, pixels).requires_grad_() for _ in range(3))
    temperature = (make(heads, 1, 1).abs() * 3 + 0.5).requires_grad_()
    weights = (make(4).abs() + 0.1).requires_grad_()
    return q, k, v, temperature, weights


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 7, 8, 16, 33])
def test_matches_naive_values_and_gradients(channels):
    q, k, v, temperature, weights = _inputs(2, 3, channels, 11, seed=channels)
    leaves = (q, k, v, temperature, weights)
    fast = topm_channel_attention(q, k, v, temperature, DEFAULT_TOPM_RATIOS, weights)
    slow = naive_topm(q, k, v, temperature, DEFAULT_TOPM_RATIOS, weights)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)
    upstream = torch.randn_like(fast)
    fast_grads = torch.autograd.grad(fast, leaves, upstream)
    slow_grads = torch.autograd.grad(slow, leaves, upstream)
    for name, a, b in zip(
        ["q", "k", "v", "temperature", "weights"], fast_grads, slow_grads, strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=f"gradient of {name} differs")


def test_keep_counts_never_zero():
    assert topm_keep_counts(1, DEFAULT_TOPM_RATIOS) == [1, 1, 1, 1]
    assert topm_keep_counts(2, DEFAULT_TOPM_RATIOS) == [1, 1, 1, 1]
    assert topm_keep_counts(48, DEFAULT_TOPM_RATIOS) == [24, 32, 36, 38]


def test_full_ratio_is_dense_attention():
    q, k, v, temperature, _ = _inputs(1, 2, 6, 9)
    sparse = topm_channel_attention(q, k, v, temperature, ratios=(1.0,), weights=[1.0])
    torch.testing.assert_close(sparse, channel_attention(q, k, v, temperature))


def test_default_weights_average_the_ratios():
    q, k, v, temperature, _ = _inputs(1, 1, 8, 5)
    equal = torch.full((4,), 0.25, dtype=torch.float64)
    torch.testing.assert_close(
        topm_channel_attention(q, k, v, temperature),
        naive_topm(q, k, v, temperature, DEFAULT_TOPM_RATIOS, equal),
    )


def test_half_precision_keeps_value_dtype_and_accuracy():
    q, k, v, temperature, weights = _inputs(1, 2, 16, 64)
    reference = topm_channel_attention(q, k, v, temperature, weights=weights)
    half = topm_channel_attention(
        *(t.detach().bfloat16() for t in (q, k, v)), temperature.detach().float(), weights=weights
    )
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.double(), reference.detach(), atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratios": ()}, "at least one"),
        ({"ratios": (0.5, 1.5)}, r"\(0, 1\]"),
        ({"weights": [1.0, 2.0]}, "one value per ratio"),
    ],
)
def test_bad_arguments(kwargs, message):
    q, k, v, temperature, _ = _inputs(1, 1, 4, 3)
    with pytest.raises(ValueError, match=message):
        topm_channel_attention(q, k, v, temperature, **kwargs)


def test_bad_shapes():
    q, k, v, temperature, _ = _inputs(1, 1, 4, 3)
    with pytest.raises(ValueError, match="4-D"):
        topm_channel_attention(q[0], k, v, temperature)
    with pytest.raises(ValueError, match="same shape"):
        topm_channel_attention(q, k[..., :2], v, temperature)
    with pytest.raises(ValueError, match="v must match"):
        topm_channel_attention(q, k, v[:, :, :2], temperature)
    qkv = torch.stack([q, k, v], dim=1).detach()  # v too: not two stacked sides
    for wrong in (qkv, qkv[:, 0]):
        with pytest.raises(ValueError, match=r"B×2×heads×c×N, got shape"):
            stacked_logits(wrong, temperature)
    assert torch.equal(stacked_logits(qkv[:, :2], 2.0), _formula(q, k, 2.0).detach())


def _formula(q, k, temperature):
    """The cosine logits step by step, each operation recorded by autograd."""
    return scaled_logits(q * query_scales(q, temperature), None, k)


@pytest.mark.parametrize("query_batch", [1, 2])  # 1: the basic prompt's, shared by the batch
def test_cosine_logits_backward_is_the_formulas(query_batch):
    q, k, _, temperature, _ = _inputs(2, 3, 6, 9)
    q = q[:query_batch].detach().requires_grad_()
    assert torch.autograd.gradcheck(cosine_logits, (q, k, temperature))
    with torch.no_grad():  # rows whose norm the clamp replaces: zero, and below its 1e-12
        q[0, 0, 1] = 0
        k[1, 2, 3] = 0
        k[0, 1, 2] = 1e-14
    fast = cosine_logits(q, k, temperature)
    slow = _formula(q, k, temperature)
    assert torch.equal(fast, slow)
    upstream = torch.randn_like(fast)
    leaves = (q, k, temperature)
    for name, a, b in zip(
        ["q", "k", "temperature"],
        torch.autograd.grad(fast, leaves, upstream),
        torch.autograd.grad(slow, leaves, upstream),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")


def test_cosine_logits_backward_runs_fewer_operators():
    q, k, _, temperature, _ = _inputs(2, 3, 6, 9)
    fewer = backward_operators(cosine_logits(q, k, temperature))
    assert fewer < 0.7 * backward_operators(_formula(q, k, temperature))


def test_cosine_logits_backward_under_autocast_stays_float32():
    # a training loop may call backward() inside torch.autocast: the gradients are those of
    # a float32 backward (the logits' precision), not of bf16 products
    q, k, _, temperature, _ = _inputs(2, 3, 6, 64)
    q, k, temperature = (t.detach().float().requires_grad_() for t in (q, k, temperature))
    leaves = (q, k, temperature)
    fast = cosine_logits(q, k, temperature)
    upstream = torch.randn_like(fast)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast_grads = torch.autograd.grad(fast, leaves, upstream)
    slow_grads = torch.autograd.grad(_formula(q, k, temperature), leaves, upstream)
    for a, b in zip(fast_grads, slow_grads, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_attention_takes_torch_func_gradients():
    q, k, v, temperature, _ = _inputs(1, 2, 4, 5)
    q, k, v, temperature = (t.detach() for t in (q, k, v, temperature))
    grad = torch.func.grad(lambda q: channel_attention(q, k, v, temperature).sum())(q)
    q = q.requires_grad_()
    (expected,) = torch.autograd.grad(channel_attention(q, k, v, temperature).sum(), q)
    torch.testing.assert_close(grad, expected)
