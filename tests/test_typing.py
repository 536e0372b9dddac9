"""The package type-checks: ``mypy`` (configured in pyproject.toml, as ``make lint`` runs it)
finds no error in pip_adapter/. The package ships ``py.typed``, so its users' type checkers
read these annotations."""

import subprocess
import sys

import pytest
from venvs import ROOT

pytestmark = pytest.mark.slow


def test_mypy_finds_no_error_in_the_package():
    pytest.importorskip("mypy", reason="mypy comes with the dev extra")
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, (
        "mypy found type errors (make lint); fix the types rather than ignoring them:\n"
        + result.stdout[-6000:]
        + result.stderr[-2000:]
    )
