"""pip-adapter: Prompt-In-Prompt learning for universal image restoration, on any network.

Names are imported on first use (PEP 562), so that ``import pip_adapter`` is cheap and paths
that need no PyTorch (``pip-adapter restore --onnx``) never load it. ``pa.data`` (data
synthesis and image files) needs the ``train`` extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pip_adapter._version import __version__

if TYPE_CHECKING:
    from pip_adapter import data, functional, metrics
    from pip_adapter.conditioning import degradation_weights
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
    from pip_adapter.pooling import local_pooling
    from pip_adapter.sensor import DegradationSensor
    from pip_adapter.tiling import restore_tiled
    from pip_adapter.unit import (
        BasicRestorationPrompt,
        DegradationAwarePrompt,
        PromptInPrompt,
        PromptToPromptInteraction,
        SelectivePromptToFeature,
    )
    from pip_adapter.vocabulary import DEFAULT_DEGRADATIONS, parse_degradation

# public name -> the module that defines it (submodules map to themselves)
_ORIGINS = {
    "DEFAULT_DEGRADATIONS": "pip_adapter.vocabulary",
    "PRESETS": "pip_adapter.injection",
    "BasicRestorationPrompt": "pip_adapter.unit",
    "DegradationAwarePrompt": "pip_adapter.unit",
    "DegradationSensor": "pip_adapter.sensor",
    "PIPConfig": "pip_adapter.config",
    "PIPModel": "pip_adapter.injection",
    "PromptInPrompt": "pip_adapter.unit",
    "PromptToPromptInteraction": "pip_adapter.unit",
    "SelectivePromptToFeature": "pip_adapter.unit",
    "Stage": "pip_adapter.injection",
    "StageInfo": "pip_adapter.injection",
    "data": "pip_adapter.data",
    "degradation_weights": "pip_adapter.conditioning",
    "evaluate": "pip_adapter.evaluation",
    "functional": "pip_adapter.functional",
    "inject_pip": "pip_adapter.injection",
    "list_stages": "pip_adapter.injection",
    "load_adapter": "pip_adapter.injection",
    "local_pooling": "pip_adapter.pooling",
    "metrics": "pip_adapter.metrics",
    "parse_degradation": "pip_adapter.vocabulary",
    "restore_tiled": "pip_adapter.tiling",
}

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
    "local_pooling",
    "metrics",
    "parse_degradation",
    "restore_tiled",
]


def __getattr__(name: str) -> Any:
    origin = _ORIGINS.get(name)
    if origin is None:
        raise AttributeError(f"module 'pip_adapter' has no attribute {name!r}")
    module = importlib.import_module(origin)
    value = module if origin == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ORIGINS})
