"""Injection: attach PIP units to an existing network through forward hooks."""

from pip_adapter.injection.inject import inject_pip, load_adapter
from pip_adapter.injection.model import PIPModel
from pip_adapter.injection.presets import PRESETS
from pip_adapter.injection.stages import Stage, StageInfo, list_stages

__all__ = ["PRESETS", "PIPModel", "Stage", "StageInfo", "inject_pip", "list_stages", "load_adapter"]
