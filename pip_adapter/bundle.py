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
from typing import Any

from pip_adapter.backbones import BACKBONES, Size, build_backbone, load_backbone
from pip_adapter.files import write_json, write_safetensors
from pip_adapter.injection import PIPModel, load_adapter
from pip_adapter.weights import load_weights, read_safetensors

__all__ = ["load_bundle", "read_recipe", "save_bundle"]

RECIPE_NAME = "backbone.json"
BACKBONE_WEIGHTS_NAME = "backbone.safetensors"
RECIPE_KEYS = ("name", "size", "weights", "checkpoint", "checkpoint_relative")


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
    if not save_backbone_weights:  # a bundle saved here before left weights that are not ours
        (directory / BACKBONE_WEIGHTS_NAME).unlink(missing_ok=True)
    return directory


def _field(path: Path, recipe: dict, key: str, valid: str, ok) -> None:
    if key in recipe and not ok(recipe[key]):
        raise ValueError(f'{path}: "{key}" must be {valid}, got {recipe[key]!r}')


def read_recipe(directory: str | os.PathLike) -> dict[str, Any]:
    """The backbone recipe of a bundle (``{}`` if it has none), checked: every malformed
    ``backbone.json`` is a one-line ValueError naming the file and the field."""
    path = Path(directory) / RECIPE_NAME
    if not path.is_file():
        return {}
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(recipe, dict):
        raise ValueError(f"{path} must hold a JSON object, got a {type(recipe).__name__}")
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"{path} has unknown keys {unknown}; valid: {list(RECIPE_KEYS)}")
    names = sorted(BACKBONES)
    _field(path, recipe, "name", f"one of {names}", lambda v: isinstance(v, str) and v in names)
    spec = BACKBONES.get(recipe["name"]) if "name" in recipe else None
    sizes = sorted(spec.configs) if spec else []
    _field(path, recipe, "size", f"null or one of {sizes}", lambda v: v is None or v in sizes)
    for key in ("weights", "checkpoint"):  # printable: an error naming the file stays one line
        _field(
            path,
            recipe,
            key,
            "null or a path of printable characters",
            lambda v: v is None or (isinstance(v, str) and v.isprintable()),
        )
    _field(path, recipe, "checkpoint_relative", "true or false", lambda v: isinstance(v, bool))
    return recipe


def _inside(directory: Path, name: str, path: Path) -> Path:
    """``directory / name``, refused unless it stays inside ``directory`` (no ``..``, no
    absolute path, no link out of it): a bundle names only its own files."""
    target = (directory / name).resolve()
    if not target.is_relative_to(directory.resolve()):
        raise ValueError(f'{path}: "weights" must name a file inside {directory}, got {name!r}')
    return target


def load_bundle(
    directory: str | os.PathLike, checkpoint: str | os.PathLike | None = None
) -> PIPModel:
    """Rebuild the model saved by ``save_bundle`` (``checkpoint`` overrides the backbone
    weights the recipe names). Malformed or mismatched files are one-line ValueErrors naming
    the file; weights must be finite and ``"weights"`` must stay inside ``directory``."""
    directory = Path(directory)
    recipe = read_recipe(directory)
    name = recipe.get("name")
    recipe_path = directory / RECIPE_NAME
    if checkpoint is not None:
        backbone = load_backbone(checkpoint, expected=name)
    elif recipe.get("weights"):
        if name is None:
            raise ValueError(f'{recipe_path}: "weights" needs "name", the backbone they are for')
        weights = _inside(directory, recipe["weights"], recipe_path)
        size: Size = recipe.get("size") or "official"
        backbone = build_backbone(name, size)  # both checked by read_recipe
        load_weights(
            backbone,
            read_safetensors(weights, "backbone"),
            f"backbone weights {weights} do not match the {size} {name} of {recipe_path}",
        )
    elif recipe.get("checkpoint"):
        # relative to the folder; an absolute path (older bundles) stays as it is
        backbone = load_backbone(directory / recipe["checkpoint"], expected=name)
    else:
        raise ValueError(
            f"{directory} does not say which backbone weights its adapter goes with (no "
            f"{RECIPE_NAME} with weights or a checkpoint); pass the backbone checkpoint"
        )
    return load_adapter(backbone, directory)
