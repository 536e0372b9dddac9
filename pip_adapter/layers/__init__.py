"""Small building blocks of the PIP unit, one job each."""

from pip_adapter.layers.attention import ChannelCrossAttention
from pip_adapter.layers.feedforward import (
    FFN_EXPANSION,
    DualGatedFeedForward,
    GatedDconvFeedForward,
)

__all__ = [
    "FFN_EXPANSION",
    "ChannelCrossAttention",
    "DualGatedFeedForward",
    "GatedDconvFeedForward",
]
