"""Other prompt designs, for comparisons with PIP under the same placement."""

from pip_adapter.baselines.promptir import PromptIRBlock

__all__ = ["PromptIRBlock"]
