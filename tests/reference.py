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
