"""benchmarks/digests.py: the digests kept measurements are keyed on change with what they
stand for, and the library's code digest never reads compiled caches."""

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import digests  # benchmarks/ is not a package: found through the path above


def test_the_code_digest_follows_the_source_files_and_ignores_pycache(tmp_path, monkeypatch):
    package = tmp_path / "pip_adapter"
    (package / "data").mkdir(parents=True)
    (package / "pooling.py").write_text("WINDOW = 128\n")
    (package / "data" / "photos.py").write_text("PHOTOS = 6\n")
    monkeypatch.setattr(digests, "PACKAGE", package)
    every = digests.code_digest()
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "pooling.cpython-312.pyc").write_bytes(b"compiled")
    (package / "notes.txt").write_text("not code")
    assert digests.code_digest() == every
    part = digests.code_digest(leave_out=("data",))
    (package / "data" / "photos.py").write_text("PHOTOS = 7\n")
    assert digests.code_digest() != every  # any module, in any folder
    assert digests.code_digest(leave_out=("data",)) == part  # but those left out
    (package / "pooling.py").write_text("WINDOW = 64\n")
    assert digests.code_digest(leave_out=("data",)) != part


def test_the_files_digest_follows_names_and_bytes(tmp_path):
    (tmp_path / "adapter.safetensors").write_bytes(b"first")
    before = digests.files_digest(tmp_path)
    assert digests.files_digest(tmp_path) == before
    (tmp_path / "adapter.safetensors").write_bytes(b"retrained")
    assert digests.files_digest(tmp_path) != before


def test_the_source_digest_follows_the_code_it_names_not_the_text_around_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    measure = "def measure():\n    return 1\n"
    (tmp_path / "page_a.py").write_text(f"{measure}\n\nTITLE = 'a page'\n")
    (tmp_path / "page_b.py").write_text(f"TITLE = 'another page'\n\n\n{measure}")
    (tmp_path / "page_c.py").write_text(measure.replace("1", "2"))
    a, b, c = (importlib.import_module(f"page_{n}") for n in "abc")
    assert digests.source_digest(a.measure) == digests.source_digest(b.measure)
    assert digests.source_digest(c.measure) != digests.source_digest(a.measure)
