"""Shared test settings and fixtures.

One CPU thread: two threads made tiny forwards ~100x slower on these machines.
"""

import contextlib
import os
import subprocess
import sys

import pytest
import torch
from standard_layout import make_layout

torch.set_num_threads(1)


def _state(module: torch.nn.Module) -> tuple:
    return (
        {k: v.clone() for k, v in module.state_dict().items()},
        [(len(m._forward_pre_hooks), len(m._forward_hooks)) for m in module.modules()],
        [m.training for m in module.modules()],
        [sorted(vars(m)) for m in module.modules()],
    )


@pytest.fixture
def untouched():
    """``with untouched(module): ...`` checks that the block leaves ``module`` as it found it:
    the same weights, hooks, train / eval flags and attributes (what a failed call must keep)."""

    @contextlib.contextmanager
    def check(module: torch.nn.Module):
        weights, *rest = _state(module)
        yield
        after, *after_rest = _state(module)
        assert after.keys() == weights.keys()
        assert all(torch.equal(after[k], weights[k]) for k in after)
        assert after_rest == rest

    return check


@pytest.fixture
def torchrun():
    """``torchrun(*args)``: ``python -m torch.distributed.run --standalone --nproc_per_node 2
    *args``, one CPU thread per process; a non-zero exit fails the test."""

    def run(*args):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += ["--nproc_per_node", "2", *map(str, args)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run(command, check=True, timeout=300, capture_output=True, env=env)

    return run


@pytest.fixture
def layout(tmp_path):
    """A miniature copy of the AirNet / PromptIR training and test folders (see
    standard_layout.py), in ``tmp_path``."""
    return make_layout(tmp_path)


@pytest.fixture(scope="session")
def dist(tmp_path_factory):
    """The project's sdist and wheel, built once per session (``python -m build``)."""
    from venvs import build_dist

    return build_dist(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def core_env(dist, tmp_path_factory):
    """A new virtual environment with the built wheel and its core dependencies only (no
    extra), checked by ``pip check``. Returns its interpreter."""
    return _wheel_env(dist[1], (), tmp_path_factory.mktemp("core-env"))


@pytest.fixture(scope="session")
def train_env(dist, tmp_path_factory):
    """A new virtual environment with ``pip-adapter[train]`` from the built wheel."""
    return _wheel_env(dist[1], ("train",), tmp_path_factory.mktemp("train-env"))


def _wheel_env(wheel, extras, path):
    from venvs import create_venv, installed_closure, pip, requirements_of

    python = create_venv(path / "venv", installed_closure(requirements_of(wheel, extras)))
    spec = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    # --no-index: every requirement must already be there, pip installs the package alone
    pip(python, "install", "--no-index", spec)
    pip(python, "check")
    return python
