"""Small building blocks of the PIP unit, one job each."""

from pip_adapter.layers.attention import ChannelCrossAttention
from pip_adapter.layers.feedforward import DualGatedFeedForward, GatedDconvFeedForward

__all__ = ["ChannelCrossAttention", "DualGatedFeedForward", "GatedDconvFeedForward"]
