"""Writing files atomically: a reader (or a crash) never sees half a file.

Every file the library writes goes through ``atomic_write``: the content is written to a
temporary file in the same folder, flushed to disk, then renamed over the target in one step
(``os.replace``), and the folder's entry is flushed too where the platform allows. The file
gets the mode a plainly created file would get under the user's umask, and the temporary file
is removed if writing fails, leaving any previous version of the target as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["atomic_write", "write_json", "write_safetensors", "write_text", "write_torch"]


def _create_temporary(path: Path) -> Path:
    """An empty new file next to ``path``, created with mode 0o666 less the umask, as
    ``open(path, "w")`` would create ``path`` itself."""
    while True:
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return temporary


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Create or replace ``path`` with what ``write(temporary_path)`` writes, atomically.

    ``write`` receives the path of an empty temporary file in the target's folder (its name
    ends in ``.tmp``: writers that pick a format from the suffix must be told the format).
    The folder is created if needed. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary(path)
    # the mode the user's umask gave the new file; writers that replace the file themselves
    # (safetensors does) would otherwise leave their own (0o600)
    mode = temporary.stat().st_mode & 0o777
    try:
        write(temporary)
        os.chmod(temporary, mode)
        _fsync(temporary, os.O_RDONLY)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # make the rename itself durable; not possible on every platform (e.g. Windows)
    with contextlib.suppress(OSError):
        _fsync(path.parent, os.O_RDONLY)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON (with a final newline) atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def save_file(
    tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None
) -> None:
    """``safetensors.torch.save_file``, imported on first use: writing images (this module's
    other use) must not load PyTorch."""
    from safetensors.torch import save_file as save

    save(dict(tensors), path, metadata)


def write_safetensors(
    path: str | os.PathLike,
    tensors: Mapping[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write tensors (detached, moved to the CPU, made contiguous) as safetensors atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda p: save_file(state, p, metadata))


def write_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` atomically (for training checkpoints of tensors and plain data)."""
    import torch

    return atomic_write(path, lambda p: torch.save(obj, p))
