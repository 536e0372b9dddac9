"""A trained adapter together with the recipe for its backbone, so that ``eval`` and
``restore`` (and anyone receiving the folder) can rebuild the whole model.

``save_bundle`` writes the adapter files (``adapter_config.json``, ``adapter.safetensors``)
plus ``backbone.json``: the backbone's name and size, the checkpoint it came from, and, when
training changed the backbone itself, its weights in ``backbone.safetensors``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file, save_file

from pip_adapter.backbones import build_backbone, load_backbone
from pip_adapter.injection import PIPModel, load_adapter

__all__ = ["load_bundle", "save_bundle"]

RECIPE_NAME = "backbone.json"
WEIGHTS_NAME = "backbone.safetensors"


def save_bundle(
    model: PIPModel,
    directory: str | os.PathLike,
    *,
    backbone: str,
    size: str | None = "official",
    checkpoint: str | os.PathLike | None = None,
    save_backbone_weights: bool = False,
) -> Path:
    """Write the adapter and its backbone recipe to ``directory``.

    ``save_backbone_weights`` stores the backbone too (needed when it was trained from scratch
    or fine-tuned); otherwise the recipe points at ``checkpoint``.
    """
    directory = model.save_adapter(directory)
    weights = None
    if save_backbone_weights:
        state = {k: v.detach().cpu().contiguous() for k, v in model.backbone.state_dict().items()}
        save_file(state, directory / WEIGHTS_NAME)
        weights = WEIGHTS_NAME
    recipe = {
        "name": backbone,
        "size": size,
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
        "weights": weights,
    }
    (directory / RECIPE_NAME).write_text(json.dumps(recipe, indent=2) + "\n")
    return directory


def load_bundle(
    directory: str | os.PathLike, checkpoint: str | os.PathLike | None = None
) -> PIPModel:
    """Rebuild the model saved by :func:`save_bundle` (``checkpoint`` overrides the backbone
    weights the recipe names)."""
    directory = Path(directory)
    recipe_path = directory / RECIPE_NAME
    recipe = json.loads(recipe_path.read_text()) if recipe_path.is_file() else {}
    name = recipe.get("name")
    if checkpoint is not None:
        backbone = load_backbone(checkpoint, expected=name)
    elif recipe.get("weights"):
        backbone = build_backbone(name, recipe.get("size") or "official")
        backbone.load_state_dict(load_file(directory / recipe["weights"]))
    elif recipe.get("checkpoint"):
        backbone = load_backbone(recipe["checkpoint"], expected=name)
    else:
        raise ValueError(
            f"{directory} does not say which backbone weights its adapter goes with (no "
            f"{RECIPE_NAME} with weights or a checkpoint); pass the backbone checkpoint"
        )
    return load_adapter(backbone, directory)
