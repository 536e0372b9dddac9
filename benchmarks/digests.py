"""What a kept measurement depends on, as digests its cache key holds: the files of kept weights,
and the library's code that measured it."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pip_adapter

PACKAGE = Path(pip_adapter.__file__).resolve().parent


def files_digest(path: Path) -> str:
    """A digest of a file, or of every file under a folder (relative names and bytes): kept
    weights' identity."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def code_digest(leave_out: tuple[str, ...] = ()) -> str:
    """A digest of the library's modules (every ``*.py`` of the ``pip_adapter`` package, never
    ``__pycache__``, but those under the relative paths ``leave_out``): relative names and
    bytes, so a measurement kept under it is not reused for code that changed since."""
    digest = hashlib.sha256()
    for file in sorted(PACKAGE.rglob("*.py")):
        if any(file.relative_to(PACKAGE).is_relative_to(part) for part in leave_out):
            continue
        digest.update(str(file.relative_to(PACKAGE)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def source_digest(*code: object) -> str:
    """A digest of the source text of these functions or classes: the part of a benchmark
    script its kept measurements run, so that editing the script's page text or rules keeps
    them and editing that code does not."""
    digest = hashlib.sha256()
    for part in code:
        digest.update(inspect.getsource(part).encode())
    return digest.hexdigest()
