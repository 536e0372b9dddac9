"""A trained adapter together with the recipe for its backbone, so that ``eval`` and
``restore`` (and anyone receiving the folder) can rebuild the whole model.

``save_bundle`` writes the adapter files (``adapter_config.json``, ``adapter.safetensors``, and
the sensor's if the model has one) plus ``backbone.json``: the backbone's name and size, the
checkpoint it came from, and, when training changed the backbone itself, its weights in
``backbone.safetensors``. Every file is written atomically.

Portability: with the backbone weights saved, the folder is self-contained. Otherwise
``backbone.json`` names the checkpoint by its path relative to the folder
(``"checkpoint_relative": true``), so the folder and the checkpoint can move together; where
no relative path exists (another drive on Windows) the path is absolute
(``"checkpoint_relative": false``). A folder moved without its checkpoint needs the checkpoint
passed to ``load_bundle`` (``--checkpoint`` on the command line).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file

from pip_adapter.backbones import build_backbone, load_backbone
from pip_adapter.files import write_json, write_safetensors
from pip_adapter.injection import PIPModel, load_adapter

__all__ = ["load_bundle", "save_bundle"]

RECIPE_NAME = "backbone.json"
BACKBONE_WEIGHTS_NAME = "backbone.safetensors"


def _checkpoint_entry(checkpoint: str | os.PathLike, directory: Path) -> dict[str, object]:
    """The checkpoint's path relative to ``directory`` when one exists, else absolute."""
    absolute = Path(checkpoint).resolve()
    try:
        path = os.path.relpath(absolute, directory.resolve())
    except ValueError:  # on Windows, another drive
        return {"checkpoint": str(absolute), "checkpoint_relative": False}
    return {"checkpoint": Path(path).as_posix(), "checkpoint_relative": True}


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
    or fine-tuned); otherwise the recipe points at ``checkpoint`` (see the module's notes on
    portability).
    """
    directory = model.save_adapter(directory)
    weights = None
    if save_backbone_weights:
        write_safetensors(directory / BACKBONE_WEIGHTS_NAME, model.backbone.state_dict())
        weights = BACKBONE_WEIGHTS_NAME
    recipe: dict[str, object] = {"name": backbone, "size": size, "weights": weights}
    if checkpoint is not None:
        recipe |= _checkpoint_entry(checkpoint, directory)
    else:
        recipe["checkpoint"] = None
    write_json(directory / RECIPE_NAME, recipe)
    return directory


def load_bundle(
    directory: str | os.PathLike, checkpoint: str | os.PathLike | None = None
) -> PIPModel:
    """Rebuild the model saved by ``save_bundle`` (``checkpoint`` overrides the backbone
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
        # relative to the folder; an absolute path (older bundles) stays as it is
        backbone = load_backbone(directory / recipe["checkpoint"], expected=name)
    else:
        raise ValueError(
            f"{directory} does not say which backbone weights its adapter goes with (no "
            f"{RECIPE_NAME} with weights or a checkpoint); pass the backbone checkpoint"
        )
    return load_adapter(backbone, directory)
