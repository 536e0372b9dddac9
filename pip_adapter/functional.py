"""Functional forms of PIP's attention operations.

Both operate on *transposed* (channel-to-channel) attention, as in Restormer's MDTA: queries,
keys and values have shape ``B×heads×c×N`` (``c`` channels per head, ``N`` pixels), the
attention map is ``c×c`` per head, and its cost grows linearly with the number of pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch

from pip_adapter.caching import constant

__all__ = [
    "DEFAULT_TOPM_RATIOS",
    "cast",
    "channel_attention",
    "check_topm_ratios",
    "cosine_logits",
    "query_scales",
    "scaled_logits",
    "stacked_logits",
    "topm_channel_attention",
    "topm_keep_counts",
    "topm_probabilities",
]

DEFAULT_TOPM_RATIOS: tuple[float, ...] = (1 / 2, 2 / 3, 3 / 4, 4 / 5)
_EPS = 1e-12  # F.normalize's: the norms are clamped to it


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(
                f"{name} must be 4-D (batch, heads, channels_per_head, pixels), "
                f"got shape {tuple(t.shape)}"
            )
    if q.shape != k.shape:
        raise ValueError(
            f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"v must match q in (batch, heads, channels_per_head): q {tuple(q.shape)}, "
            f"v {tuple(v.shape)}"
        )


def cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)``, without calling into torch when ``t`` already has that dtype (each
    call costs a dispatch, and the unit makes many on small tensors)."""
    return t if t.dtype == dtype else t.to(dtype)


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _precise(t: torch.Tensor) -> AbstractContextManager:
    """Autocast switched off on ``t``'s device, where it is on."""
    device = t.device.type
    if device in ("cpu", "cuda", "xpu", "mps") and torch.is_autocast_enabled(device):
        return torch.autocast(device, enabled=False)
    return nullcontext()


def query_scales(q: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """``temperature / ‖q‖`` for every query row (``B×heads×c×1``, at least float32): the
    factor that makes the raw products ``q kᵀ`` the logits' query side (``scaled_logits``).
    Depends on the queries alone, so it is computed once where the queries are fixed."""
    with _precise(q):
        q = cast(q, _at_least_float32(q.dtype))
        return temperature / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(_EPS)


def scaled_logits(q: torch.Tensor, scales: torch.Tensor | None, k: torch.Tensor) -> torch.Tensor:
    """Cosine-similarity logits ``q̂ k̂ᵀ · temperature`` (``B×heads×c×c``) from the queries
    and their ``query_scales`` (``None``: ``q`` is already scaled, ``q · scales``, as queries
    computed once and reused are: one operator fewer per call).

    Computed in at least float32, also under autocast: top-m keeps or drops a logit by its rank,
    and half-precision rounding would flip near-ties. The L2 norms scale the small ``c×c``
    product rather than the ``c×N`` inputs: the same value as normalising first, with far fewer
    passes over the large tensors in forward and backward (the clamp is ``F.normalize``'s eps).
    """
    dtype = _at_least_float32(q.dtype)
    with _precise(q):
        q, k = cast(q, dtype), cast(k, dtype)
        k_norm = torch.linalg.vector_norm(k, dim=-1).clamp_min(_EPS)
        logits = q @ k.transpose(-2, -1)
        if scales is not None:
            logits = logits * scales
        return logits / k_norm[..., None, :]


def stacked_logits(qk: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """``scaled_logits(q · query_scales(q, temperature), None, k)`` for queries and keys
    stacked in one tensor (``B×2×heads×c×N``: ``q = qk[:, 0]``, ``k = qk[:, 1]``): both
    sides' norms in one reduction and one clamp, two operators fewer than the formula's four."""
    if qk.dim() != 5 or qk.shape[1] != 2:
        raise ValueError(
            f"stacked_logits takes queries and keys stacked as B×2×heads×c×N, got shape "
            f"{tuple(qk.shape)}"
        )
    with _precise(qk):
        qk = cast(qk, _at_least_float32(qk.dtype))
        norms = torch.linalg.vector_norm(qk, dim=-1, keepdim=True).clamp_min(_EPS)
        q, k = qk[:, 0], qk[:, 1]
        logits = (q * (temperature / norms[:, 0])) @ k.transpose(-2, -1)
        return logits / norms[:, 1].transpose(-2, -1)


def _reduced(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``grad`` summed over the dimensions its input was broadcast along (no call when none
    was: a call is an operator even where it returns ``grad``)."""
    return grad if grad.shape == shape else grad.sum_to_size(shape)


class _CosineLogits(torch.autograd.Function):
    """``cosine_logits``'s formula with its backward written out.

    Autograd runs six operators for each quotient of two tensors that need gradients, five
    for each norm, three for each clamp; this backward runs about half the formula's
    operators (tests/test_functional.py counts them), with the same gradients to rounding.
    On a GPU each operator is a kernel launch, and on the units' small tensors the launches
    are much of the training step's cost (issue 14). Inputs in at least float32, as
    ``scaled_logits`` computes."""

    @staticmethod
    def forward(ctx, q, k, temperature):
        q_norm = torch.linalg.vector_norm(q, dim=-1, keepdim=True)  # ...×c×1
        q_clamped = q_norm.clamp_min(_EPS)
        scales = temperature / q_clamped
        scaled = q * scales
        k_norm = torch.linalg.vector_norm(k, dim=-1, keepdim=True).transpose(-2, -1)  # ...×1×c
        k_clamped = k_norm.clamp_min(_EPS)
        raw = scaled @ k.transpose(-2, -1)
        ctx.save_for_backward(q, k, q_norm, q_clamped, k_norm, k_clamped, scales, raw)
        ctx.temperature_shape = getattr(temperature, "shape", torch.Size())
        return raw / k_clamped

    @staticmethod
    def backward(ctx, grad):
        # logits_ij = (s_i q_i · k_j) / |k_j| = raw_ij / |k_j|, s_i = t / |q_i| (norms clamped
        # at _EPS, where the clamp stops their gradients)
        with _precise(grad):  # a backward called under autocast still computes in float32
            return _CosineLogits._gradients(ctx, grad)

    @staticmethod
    def _gradients(ctx, grad):
        q, k, q_norm, q_clamped, k_norm, k_clamped, scales, raw = ctx.saved_tensors
        by_raw = grad / k_clamped  # the gradient of raw
        by_scaled = by_raw @ k  # the gradient of s_i q_i
        # the gradient of t, per query: Σ_n by_scaled_in q_in / |q_i|
        per_query = (by_scaled * q).sum(-1, keepdim=True) / q_clamped
        grad_q = grad_k = grad_t = None
        if ctx.needs_input_grad[0]:
            # s_i by_scaled_i, and through |q_i|: -s_i · per_query_i · q_i / |q_i|
            coef = torch.where(q_norm >= _EPS, per_query * scales / q_norm, 0)
            grad_q = _reduced((by_scaled * scales).addcmul_(coef, q, value=-1), q.shape)
        if ctx.needs_input_grad[1]:
            # by_rawᵀ (s q), and through |k_j|: -(Σ_i G_ij logits_ij) · k_j / |k_j|²
            column = (by_raw * raw).sum(-2, keepdim=True)  # Σ_i G_ij logits_ij
            coef = torch.where(k_norm >= _EPS, column / k_clamped / k_norm, 0)
            grad_k = (by_raw * scales).transpose(-2, -1) @ q  # by_rawᵀ (s_i q_i)
            grad_k = _reduced(grad_k.addcmul_(coef.transpose(-2, -1), k, value=-1), k.shape)
        if ctx.needs_input_grad[2]:
            grad_t = _reduced(per_query, ctx.temperature_shape)
        return grad_q, grad_k, grad_t


def cosine_logits(
    q: torch.Tensor, k: torch.Tensor, temperature: torch.Tensor | float
) -> torch.Tensor:
    """The logits of unscaled queries: ``scaled_logits(q · query_scales(q, temperature),
    None, k)``, the queries scaled first (as queries computed once and kept are). While
    gradients are recorded (eager), one autograd node whose backward runs fewer operators
    than the formula's (the same values, and gradients to rounding)."""
    recording = (
        torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch._C._are_functorch_transforms_active()  # torch.func: the formula's graph
    )
    leaves = (q, k, temperature)
    if not recording or not any(isinstance(t, torch.Tensor) and t.requires_grad for t in leaves):
        return scaled_logits(q * query_scales(q, temperature), None, k)
    dtype = _at_least_float32(q.dtype)
    with _precise(q):
        return _CosineLogits.apply(cast(q, dtype), cast(k, dtype), temperature)


def channel_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, temperature: torch.Tensor | float
) -> torch.Tensor:
    """Dense transposed attention: ``softmax(q̂ k̂ᵀ · temperature) @ v``.

    ``q``, ``k``, ``v`` are ``B×heads×c×N``; ``q`` and ``k`` are L2-normalised along ``N``;
    ``temperature`` broadcasts against ``B×heads×c×c`` (typically a ``heads×1×1`` parameter).
    Returns ``B×heads×c×N``.
    """
    _check_qkv(q, k, v)
    attn = cosine_logits(q, k, temperature).softmax(dim=-1)
    return cast(attn, v.dtype) @ v


def topm_keep_counts(channels: int, ratios: Sequence[float]) -> list[int]:
    """How many logits each ratio keeps per row: ``max(1, floor(ratio · channels))``.

    The ``max(1, ·)`` keeps very narrow heads (1 or 2 channels) well defined, where the
    authors' reference code would select nothing.
    """
    return [max(1, int(r * channels)) for r in ratios]


def check_topm_ratios(ratios: Sequence[float]) -> tuple[float, ...]:
    """``ratios`` as a tuple, or a ValueError unless it is a non-empty sequence of values in
    ``(0, 1]``."""
    if len(ratios) == 0:
        raise ValueError("ratios must contain at least one value in (0, 1]")
    if any(not 0 < r <= 1 for r in ratios):
        raise ValueError(f"every ratio must lie in (0, 1], got {list(ratios)}")
    return tuple(ratios)


def topm_channel_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    temperature: torch.Tensor | float,
    ratios: Sequence[float] = DEFAULT_TOPM_RATIOS,
    weights: torch.Tensor | Sequence[float] | None = None,
) -> torch.Tensor:
    """Top-m sparse transposed attention (PIP's selective prompt-to-feature attention).

    For each ratio ``ρ`` every row of the logits ``A = q̂ k̂ᵀ · temperature`` keeps only its
    ``max(1, floor(ρ·c))`` largest entries, is softmax-normalised over those, and multiplies
    ``v``; the results are summed with ``weights`` (one per ratio; ``None`` averages them).

    Computed in one pass (``topm_probabilities``): the masked softmaxes share one sort and
    one softmax over the whole row, and the weighted sum of the sparse attention maps is
    formed before a single matmul with ``v``. Equal to the four-``topk`` formulation (ties
    between equal logits are broken as ``torch.sort`` does).

    Args:
        q, k, v: ``B×heads×c×N`` tensors (``c`` channels per head, ``N`` pixels).
        temperature: scalar or tensor broadcastable to ``B×heads×c×c``.
        ratios: fractions of each row to keep, each in ``(0, 1]``.
        weights: one weight per ratio (tensor or sequence), or ``None`` for ``1/len(ratios)``.

    Returns:
        ``B×heads×c×N`` tensor of ``v``'s dtype.
    """
    _check_qkv(q, k, v)
    ratios = check_topm_ratios(ratios)
    logits = cosine_logits(q, k, temperature)
    if weights is None:
        weights = logits.new_full((len(ratios),), 1.0 / len(ratios))
    else:
        weights = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)
    if weights.shape != (len(ratios),):
        raise ValueError(
            f"weights must hold one value per ratio ({len(ratios)}), "
            f"got shape {tuple(weights.shape)}"
        )

    return cast(topm_probabilities(logits, ratios, weights), v.dtype) @ v


def _rank_masks(channels: int, keep: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """``R×c`` matrix whose row ``r`` is 1 at the ranks inside ratio ``r``'s top-m set
    (``j < keep[r]``): rows of the lower-triangular matrix of ones."""
    lower = torch.ones(channels, channels, dtype=like.dtype, device=like.device).tril_()
    return torch.stack([lower[m - 1] for m in keep])


def topm_probabilities(
    logits: torch.Tensor, ratios: Sequence[float], weights: torch.Tensor
) -> torch.Tensor:
    """The weighted sum of the top-m masked softmaxes of ``logits`` (``...×c×c``), one per
    ratio, weighted by ``weights`` (a tensor with one value per ratio; arguments unchecked).

    The masked softmaxes share one sort and one softmax over the whole row: each masked
    softmax is that softmax renormalised over its top ranks (its normaliser is the sum of the
    sorted probabilities over those ranks), and the weighted sum of the sparse maps is formed
    in sorted order, then put back in the logits' order.
    """
    c = logits.shape[-1]
    rank_masks = constant(_rank_masks, c, tuple(topm_keep_counts(c, ratios)), like=logits)
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    # the row's softmax is exp(A - rowmax) over a common sum, which every renormalisation
    # cancels: one kernel instead of a shift and an exponential
    probs_all = sorted_logits.softmax(dim=-1)
    normalisers = probs_all @ rank_masks.T  # ...×c×R: each ratio's share of its top ranks
    rank_coefficients = (weights / normalisers) @ rank_masks  # ...×c×c, by rank
    probs_sorted = probs_all * rank_coefficients
    # every position is written: ``order`` is a permutation of each row
    return torch.empty_like(probs_sorted).scatter_(-1, order, probs_sorted)
