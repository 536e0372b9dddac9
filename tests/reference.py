"""Reference implementations kept deliberately naive, to check the fast ones against."""

import torch
import torch.nn.functional as F


def naive_topm(q, k, v, temperature, ratios, weights):
    """The authors' formulation: one top-k mask, softmax and matmul per ratio."""
    q = F.normalize(q, dim=-1)
    k = F.normalize(k, dim=-1)
    logits = (q @ k.transpose(-2, -1)) * temperature
    channels = logits.shape[-1]
    out = torch.zeros_like(v)
    for ratio, weight in zip(ratios, weights, strict=True):
        keep = max(1, int(channels * ratio))
        index = logits.topk(keep, dim=-1).indices
        mask = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, index, True)
        attn = logits.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        out = out + weight * (attn @ v)
    return out


def _layer_norm(t, norm):
    """LayerNorm over the channels of ``B×C×H×W``."""
    return F.layer_norm(
        t.permute(0, 2, 3, 1), (t.shape[1],), norm.weight, norm.bias, norm.eps
    ).permute(0, 3, 1, 2)


def _conv_dw(t, pair):
    """1×1 conv then 3×3 depth-wise conv, with the weights of an ``nn.Sequential`` pair."""
    pointwise, depthwise = pair
    return F.conv2d(
        F.conv2d(t, pointwise.weight), depthwise.weight, padding=1, groups=depthwise.groups
    )


def _attention(attention, query_source, context):
    """Transposed cross-attention (dense, or the naive top-m) with a module's parameters."""
    batch, dim, height, width = context.shape
    heads = attention.heads
    q = _conv_dw(query_source, attention.to_q).expand(batch, -1, -1, -1)
    k, v = _conv_dw(context, attention.to_kv).chunk(2, dim=1)
    q, k, v = (t.reshape(batch, heads, dim // heads, height * width) for t in (q, k, v))
    if attention.topm_ratios is None:
        logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        out = (logits * attention.temperature).softmax(dim=-1) @ v
    else:
        out = naive_topm(
            q, k, v, attention.temperature, attention.topm_ratios, attention.topm_weights
        )
    return F.conv2d(out.reshape(batch, dim, height, width), attention.project_out.weight)


def _gated_feed_forward(t, ffn, dual):
    """Restormer's GDFN (``gelu(a)·b``), or PIP's dual gate (``gelu(a)·b + gelu(b)·a``)."""
    hidden = F.conv2d(
        F.conv2d(t, ffn.project_in.weight), ffn.dwconv.weight, padding=1, groups=ffn.dwconv.groups
    )
    a, b = hidden.chunk(2, dim=1)
    gate = F.gelu(a) * b + (F.gelu(b) * a if dual else 0)
    return F.conv2d(gate, ffn.project_out.weight)


def compact_unit_reference(unit, x, weights):
    """The compact PromptInPrompt unit written out step by step from its parameters, with
    the library's own building blocks replaced by plain torch operations and the naive top-m:
    what ``unit.modulate(x, weights)`` must compute (weights rows summing to 1)."""
    size, dim = unit.prompt_size, unit.prompt_dim
    small = F.adaptive_avg_pool2d(x, size)
    prompt = weights @ unit.degradation_prompt.table
    content = prompt[:, :, None, None] * F.conv2d(small, unit.align.project.weight)
    basic = unit.basic_prompt.prompt
    p2p = unit.prompt_to_prompt
    fused = basic + _attention(
        p2p.attention, _layer_norm(basic, p2p.norm_query), _layer_norm(content, p2p.norm_context)
    )
    fused = fused + _gated_feed_forward(_layer_norm(fused, p2p.norm_ffn), p2p.ffn, dual=False)
    universal = F.conv2d(fused, unit.to_universal.weight, padding=1)

    def select(t):
        return t[:, :dim] if t.shape[1] >= dim else F.pad(t, (0, 0, 0, 0, 0, dim - t.shape[1]))

    p2f = unit.prompt_to_feature
    attended = _attention(
        p2f.attention,
        _layer_norm(select(small), p2f.norm_feature),
        _layer_norm(universal, p2f.norm_prompt),
    )
    # the feed-forward's resolution: every pixel, or the feature average-pooled by the stride
    # (windows past the border averaging what they hold), its update resized back
    selected = select(x)
    stride = p2f.ffn_stride
    base = selected if stride == 1 else F.avg_pool2d(selected, stride, ceil_mode=True)
    resized = F.interpolate(attended, size=base.shape[-2:], mode="bilinear", align_corners=False)
    update = resized + _gated_feed_forward(
        _layer_norm(base + resized, p2f.norm_ffn), p2f.ffn, dual=True
    )
    if stride > 1:
        update = F.interpolate(update, size=x.shape[-2:], mode="bilinear", align_corners=False)
    modulated = selected + update
    channels = x.shape[1]
    if channels > dim:
        return torch.cat([modulated, x[:, dim:]], dim=1)
    if channels < dim:
        return F.conv2d(modulated, p2f.to_channels.weight)
    return modulated
