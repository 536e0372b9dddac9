"""pip-adapter: Prompt-In-Prompt learning for universal image restoration, on any network.

``pa.data`` (data synthesis and image files) needs the ``train`` extra and is imported on first
use, so that ``import pip_adapter`` works with the core dependencies alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pip_adapter import functional, metrics
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

if TYPE_CHECKING:
    from pip_adapter import data

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


def __getattr__(name: str) -> object:
    """``pa.data``, imported on first use (PEP 562)."""
    if name == "data":
        return importlib.import_module("pip_adapter.data")
    raise AttributeError(f"module 'pip_adapter' has no attribute {name!r}")
