"""pip-adapter: Prompt-In-Prompt learning for universal image restoration, on any network."""

from pip_adapter import data, functional, metrics
from pip_adapter._version import __version__
from pip_adapter.conditioning import DEFAULT_DEGRADATIONS, degradation_weights, parse_degradation
from pip_adapter.config import PIPConfig
from pip_adapter.evaluation import evaluate
from pip_adapter.injection import (
    PRESETS,
    PIPModel,
    Stage,
    StageInfo,
    inject_pip,
    list_stages,
    load_adapter,
)
from pip_adapter.sensor import DegradationSensor
from pip_adapter.tiling import restore_tiled
from pip_adapter.unit import (
    BasicRestorationPrompt,
    DegradationAwarePrompt,
    PromptInPrompt,
    PromptToPromptInteraction,
    SelectivePromptToFeature,
)

__all__ = [
    "DEFAULT_DEGRADATIONS",
    "PRESETS",
    "BasicRestorationPrompt",
    "DegradationAwarePrompt",
    "DegradationSensor",
    "PIPConfig",
    "PIPModel",
    "PromptInPrompt",
    "PromptToPromptInteraction",
    "SelectivePromptToFeature",
    "Stage",
    "StageInfo",
    "__version__",
    "data",
    "degradation_weights",
    "evaluate",
    "functional",
    "inject_pip",
    "list_stages",
    "load_adapter",
    "metrics",
    "parse_degradation",
    "restore_tiled",
]
