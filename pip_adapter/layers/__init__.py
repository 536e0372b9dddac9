"""Small building blocks of the PIP unit, one job each."""

from pip_adapter.layers.attention import ChannelCrossAttention, Queries
from pip_adapter.layers.feedforward import (
    FFN_EXPANSION,
    DualGatedFeedForward,
    GatedDconvFeedForward,
)
from pip_adapter.layers.norm import LayerNorm2d
from pip_adapter.layers.pointwise import add_product, project_add, project_scaled

__all__ = [
    "FFN_EXPANSION",
    "ChannelCrossAttention",
    "DualGatedFeedForward",
    "GatedDconvFeedForward",
    "LayerNorm2d",
    "Queries",
    "add_product",
    "project_add",
    "project_scaled",
]
