"""Restoring many image files safely: the part of ``pip-adapter restore`` that does not depend
on how an image is restored (with PyTorch, or with onnxruntime).

- Every input is processed; a failure (an unreadable image, a name taken by a folder, an
  output that exists) is reported in one line and the others go on.
- Nothing is replaced without ``overwrite``: neither an existing output nor an input file
  (``-o`` may be the input folder). Another input is never replaced, even with it.
- Each input gets its own output (see ``output_names`` for the naming rule).
- The caller writes each output atomically (``pip_adapter.files``), so that a failure never
  leaves a partial file.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from pip_adapter.cli.errors import SomeInputsFailed
from pip_adapter.image_files import list_images

__all__ = ["check_output_folder", "collect_inputs", "output_names", "restore_files"]

# per-input failures that are reported and skipped: unreadable or refused files, full disks,
# and images a model cannot take (too large for memory, say)
INPUT_ERRORS = (ValueError, OSError, RuntimeError, MemoryError)


def collect_inputs(paths: Sequence[Path]) -> list[Path]:
    """The image files named by ``paths`` (files, and the images directly inside folders), in
    order, each file once. A path that does not exist is a FileNotFoundError."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += list_images(path)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such image or folder: {path}")
    if not files:
        raise FileNotFoundError(f"no images found in {[str(p) for p in paths]}")
    seen: set[Path] = set()
    unique = []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def _candidate(path: Path, level: int) -> str:
    """The output name of ``path`` at a disambiguation ``level`` (relative, with ``/``)."""
    name = f"{path.stem}.png" if level == 0 or path.suffix.lower() == ".png" else f"{path.name}.png"
    if level <= 1:
        return name
    folders = path.resolve().parent.parts[1:][-(level - 1) :]
    return "/".join([*folders, name])


def _levels(path: Path) -> int:
    """How many disambiguation levels ``path`` has: its own name, with the extension, then
    with one more parent folder each up to the whole path."""
    return 2 + len(path.resolve().parent.parts[1:])


def _key(path: Path) -> str:
    # case-insensitive, as on the default file systems of macOS and Windows
    return str(path).casefold()


def output_names(inputs: Sequence[Path], output: Path) -> list[Path]:
    """The output file of each input: ``OUTPUT/<stem>.png``, made distinct where needed.

    Inputs whose outputs would share a name (compared without case), or whose output would be
    another input file, are told apart step by step, only as far as needed:

    1. a PNG keeps its name, other formats keep their extension: ``y.png`` and ``y.jpg`` give
       ``y.png`` and ``y.jpg.png``;
    2. the same name in different folders goes into sub-folders named after the end of the
       input's folder path: ``a/x.png`` and ``b/x.png`` give ``a/x.png`` and ``b/x.png``
       (more folders if the last ones are equal too);
    3. if even the whole path does not tell them apart (folders differing only in case on a
       case-sensitive system), a number: ``x-2.png``.
    """
    root = output.resolve()
    sources = {_key(path.resolve()): index for index, path in enumerate(inputs)}
    levels = [0] * len(inputs)
    while True:
        names = [_candidate(path, level) for path, level in zip(inputs, levels, strict=True)]
        groups: dict[str, list[int]] = defaultdict(list)
        for index, name in enumerate(names):
            groups[_key(root / name)].append(index)
        clashing = {i for members in groups.values() if len(members) > 1 for i in members}
        clashing |= {
            index
            for index, name in enumerate(names)
            if sources.get(_key(root / name), index) != index  # would replace another input
        }
        bumpable = [i for i in clashing if levels[i] + 1 < _levels(inputs[i])]
        if not bumpable:
            numbered = _numbered(root, inputs, names, sorted(clashing), sources)
            return [output / name for name in numbered]
        for index in bumpable:
            levels[index] += 1


def _numbered(
    root: Path, inputs: Sequence[Path], names: list[str], clashing: list[int], sources: dict
) -> list[str]:
    """Rule 3: the names that still clash numbered, from their rule-1 names."""
    taken = {_key(root / name) for index, name in enumerate(names) if index not in clashing}
    taken |= set(sources)
    for index in clashing:
        name = first = _candidate(inputs[index], 1)
        number = 1
        while _key(root / name) in taken:
            number += 1
            name = f"{first.removesuffix('.png')}-{number}.png"
        taken.add(_key(root / name))
        names[index] = name
    return names


def check_output_folder(output: Path) -> None:
    """Refuse an output folder that is a file (before any work is done)."""
    if output.exists() and not output.is_dir():
        raise ValueError(f"-o {output} is a file; it must name a folder")


def _refusal(target: Path, source: Path, overwrite: bool) -> str | None:
    """Why ``target`` may not be written, or None."""
    if target.is_dir():
        return f"the output {target} is a folder; it is left as it is"
    if target.exists() and not overwrite:
        what = "is the input itself" if target.resolve() == source.resolve() else "exists"
        return f"the output {target} {what}; pass --overwrite to replace it"
    return None


def restore_files(
    inputs: Sequence[Path],
    output: Path,
    restore_file: Callable[[Path, Path], str | None],
    overwrite: bool = False,
    name: str = "pip-adapter restore",
) -> int:
    """``restore_file(source, target)`` for every input, with the targets of ``output_names``
    in ``output``; returns the number restored. Prints ``INPUT -> OUTPUT`` per image (followed
    by ``[note]`` when ``restore_file`` returns a note, such as a sensor's prediction) and one
    line per failure on stderr, then a summary; raises ``SomeInputsFailed`` if any failed.

    ``restore_file`` reads ``source``, restores it and writes ``target`` atomically (creating
    its folder); any ``INPUT_ERRORS`` it raises fails that input alone.
    """
    check_output_folder(output)
    targets = output_names(inputs, output)
    restored = failed = 0
    for source, target in zip(inputs, targets, strict=True):
        try:
            refusal = _refusal(target, source, overwrite)
            if refusal is not None:
                raise ValueError(refusal)
            note = restore_file(source, target)
        except INPUT_ERRORS as err:
            failed += 1
            reason = " ".join(str(err).split()) or type(err).__name__
            print(f"{name}: {source}: {reason}", file=sys.stderr)
            continue
        restored += 1
        print(f"{source} -> {target}" + (f"  [{note}]" if note else ""))
    summary = f"{restored} restored, {failed} failed, of {len(inputs)} images (into {output})"
    if failed:
        raise SomeInputsFailed(summary)
    print(summary)
    return restored
