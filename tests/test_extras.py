"""Optional dependencies: a missing one is an ImportError that names the extra to install."""

import sys

import pytest
import torch
from torch import nn

from pip_adapter import restore_tiled
from pip_adapter._extras import needs_extra

HINT = r"pip install 'pip-adapter\[train\]'"


def test_a_missing_third_party_module_names_the_extra():
    with pytest.raises(ImportError, match=HINT) as info, needs_extra("train", "the thing"):
        import pip_adapter_test_absent_module  # noqa: F401
    assert str(info.value).startswith("the thing needs pip_adapter_test_absent_module")
    assert info.value.name == "pip_adapter_test_absent_module"


def test_a_missing_module_of_the_package_is_a_bug_not_an_extra():
    with pytest.raises(ModuleNotFoundError, match="pip_adapter.absent"), needs_extra("train", "x"):
        import pip_adapter.absent  # noqa: F401


def test_tiling_needs_tqdm_only_for_its_progress_bar(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    x = torch.rand(1, 3, 20, 20)
    torch.testing.assert_close(restore_tiled(nn.Identity(), x, tile=16, overlap=4), x)
    with pytest.raises(ImportError, match=HINT):
        restore_tiled(nn.Identity(), x, tile=16, overlap=4, progress=True)
