"""The PIP unit and its four named parts."""

from pip_adapter.unit.alignment import ContentAlignment
from pip_adapter.unit.prompt_in_prompt import (
    DEFAULT_PROMPT_SIZE,
    DESIGNS,
    PromptInPrompt,
    default_heads,
    default_prompt_dim,
)
from pip_adapter.unit.prompt_to_feature import SelectivePromptToFeature
from pip_adapter.unit.prompt_to_prompt import PromptToPromptInteraction
from pip_adapter.unit.prompts import BasicRestorationPrompt, DegradationAwarePrompt

__all__ = [
    "DEFAULT_PROMPT_SIZE",
    "DESIGNS",
    "BasicRestorationPrompt",
    "ContentAlignment",
    "DegradationAwarePrompt",
    "PromptInPrompt",
    "PromptToPromptInteraction",
    "SelectivePromptToFeature",
    "default_heads",
    "default_prompt_dim",
]
