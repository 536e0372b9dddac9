"""pip-adapter: Prompt-In-Prompt learning for universal image restoration, on any network."""

from pip_adapter import functional
from pip_adapter.conditioning import DEFAULT_DEGRADATIONS
from pip_adapter.unit import (
    BasicRestorationPrompt,
    DegradationAwarePrompt,
    PromptInPrompt,
    PromptToPromptInteraction,
    SelectivePromptToFeature,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DEGRADATIONS",
    "BasicRestorationPrompt",
    "DegradationAwarePrompt",
    "PromptInPrompt",
    "PromptToPromptInteraction",
    "SelectivePromptToFeature",
    "__version__",
    "functional",
]
