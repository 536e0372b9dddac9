"""A training run's output folder: never silently replaced, resumed only by the same run.

A folder holds a previous run when it has any of ``RUN_FILES``. Starting a new run there is
refused unless the caller says what to do with it: resume it (the same settings, checked
against those saved in its checkpoint) or overwrite it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["RUN_FILES", "ChangedSettings", "check_resumable", "check_run_folder", "previous_run"]

# what Trainer writes to its out_dir (the recipe's bundle goes to adapter/ too)
RUN_FILES = ("log.jsonl", "checkpoint.pt", "curves.png", "model.safetensors", "adapter")


def previous_run(directory: str | os.PathLike, names: tuple[str, ...] = RUN_FILES) -> list[str]:
    """The entries of ``names`` present in ``directory`` (none if it does not exist)."""
    return [name for name in names if os.path.lexists(Path(directory) / name)]


def check_run_folder(
    directory: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    names: tuple[str, ...] = RUN_FILES,
) -> None:
    """Refuse to start a run in ``directory`` when that would replace a previous one.

    With ``resume`` the folder must hold a checkpoint; with ``overwrite`` a previous run may be
    replaced; otherwise any of ``names`` already there is a ValueError that says what to do.
    """
    directory = Path(directory)
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: continue the run or replace it")
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"the output folder {directory} is a file")
    if resume:
        if not (directory / "checkpoint.pt").is_file():
            raise FileNotFoundError(f"nothing to resume in {directory}: it has no checkpoint.pt")
        return
    found = previous_run(directory, names)
    if found and not overwrite:
        raise ValueError(
            f"{directory} holds a previous run ({', '.join(found)}); continue it with --resume "
            "(Trainer.resume), replace it with --overwrite (overwrite=True), or choose another "
            "output folder"
        )


class ChangedSettings(ValueError):
    """A resume refused because settings differ from the checkpoint's: ``changed`` maps each
    one's name (``outer.inner`` when nested) to its saved and current value, so that a caller
    that knows how a setting is given can say how to resume with the saved one."""

    def __init__(self, message: str, changed: Mapping[str, tuple[Any, Any]]) -> None:
        super().__init__(message)
        self.changed = dict(changed)


def check_resumable(
    path: str | os.PathLike, saved: Mapping[str, Any], current: Mapping[str, Any]
) -> None:
    """Refuse to resume the checkpoint at ``path`` with settings that differ from those it was
    written with (``saved``; ``ChangedSettings``). Settings it does not record are not
    compared, at any depth: a checkpoint written before a config gained a field resumes with
    that field at its value."""
    changed = dict(_differences(saved, current))
    if changed:
        written = ", ".join(f"{name} {old!r} (now {new!r})" for name, (old, new) in changed.items())
        raise ChangedSettings(
            f"cannot resume from {path}: it was written with {written}; resume with the same "
            "settings, or start again with --overwrite",
            changed,
        )


def _differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, tuple[Any, Any]]]:
    """``(name, (saved, current))`` for each setting recorded in both that differs; nested
    mappings are compared key by key, named ``outer.inner``."""
    for key in current:
        if key not in saved:
            continue
        old, new, name = saved[key], current[key], f"{prefix}{key}"
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            yield from _differences(old, new, f"{name}.")
        elif old != new:
            yield name, (old, new)
