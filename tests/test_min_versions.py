"""The dependency floors in pyproject.toml hold: in a new environment on the oldest Python the
project supports, with every core, ``train`` and ``examples`` dependency at its floor (torch
included, with the torchvision that pip pairs with it), the built wheel installs, the core runs
(inject, forward, save and load an adapter) and the tests of each dependency pass.

Minutes and about 3 GB of wheels (PyPI has only CUDA builds of torch for Linux), so not part of
``make test`` nor of CI (.ci/run): ``make min-versions`` runs it before a release. The wheels are
downloaded once into a wheelhouse (``$PIP_ADAPTER_WHEELHOUSE``, default ``.cache/wheelhouse``)
and installed from it with ``--no-index``. The test ids name the versions checked.
"""

import json
import os
import textwrap
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from venvs import CORE_SCRIPT, ROOT, floors, oldest_python, pip, run

pytestmark = pytest.mark.min_versions

EXTRAS = ("train", "examples")
TEST_TOOLS = ("pytest", "hypothesis")
# a test file per dependency (or API) whose floor matters: einops and timm's LayerNorm2d
# (unit, injection), timm's models (sensor), safetensors (adapter files), spandrel (presets,
# checkpoints), kornia (degradations), Pillow / tifffile / numpy (image files, photos), tqdm /
# matplotlib / torch's AMP, schedules and compile (training, injection)
SUBSET = [
    "test_unit.py",
    "test_injection.py",
    "test_adapter_files.py",
    "test_sensor.py",
    "test_degradations.py",
    "test_image_files.py",
    "test_photos.py",
    "test_training.py",
]


def _stated_floors() -> list[str]:
    """``name==floor`` of each core / train / examples dependency, read from pyproject.toml
    (for the test ids; the environment takes them from the built wheel)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    for extra in EXTRAS:
        wanted += project["optional-dependencies"][extra]
    pins = []
    for requirement in map(Requirement, wanted):
        if canonicalize_name(requirement.name) == "pip-adapter":
            continue
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        pins.append(f"{canonicalize_name(requirement.name)}=={floor}")
    return pins


@pytest.fixture(scope="module")
def floor_env(dist, tmp_path_factory):
    """A new environment on the oldest supported Python with the wheel and every dependency
    at its floor. Returns its interpreter."""
    path = tmp_path_factory.mktemp("floor-env")
    wheel = dist[1]
    constraints = path / "floors.txt"
    pins = floors(wheel, EXTRAS)
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
    run([oldest_python(wheel), "-m", "venv", "--without-pip", path / "venv"])
    python = path / "venv" / "bin" / "python"
    wheelhouse = Path(os.environ.get("PIP_ADAPTER_WHEELHOUSE", ROOT / ".cache" / "wheelhouse"))
    dependencies = [f"{name}=={version}" for name, version in pins.items()]
    # the index fills the wheelhouse once (a second run finds everything there)
    pip(python, "download", "-q", "-d", wheelhouse, *dependencies, *TEST_TOOLS, timeout=1800)
    wanted = [f"{wheel}[{','.join(EXTRAS)}]", *TEST_TOOLS]
    pip(python, "install", "-q", "--no-index", "-f", wheelhouse, "-c", constraints, *wanted)
    pip(python, "check")
    return python


@pytest.fixture(scope="module")
def installed(floor_env) -> dict[str, str]:
    """The floor environment's distributions: name -> version."""
    listed = pip(floor_env, "list", "--format", "freeze")
    pairs = (line.split("==") for line in listed.splitlines() if "==" in line)
    return {canonicalize_name(name): version for name, version in pairs}


def test_the_oldest_supported_python(floor_env, dist):
    command = "import platform; print(platform.python_version())"
    version = run([floor_env, "-c", command]).stdout.strip()
    expected = run([oldest_python(dist[1]), "-c", command]).stdout.strip()
    assert version == expected
    print(f"floor environment: Python {version}")


@pytest.mark.parametrize("pin", _stated_floors())
def test_each_dependency_is_installed_at_its_floor(installed, pin):
    name, floor = pin.split("==")
    version = installed[name]
    # a floor such as "2.4" is the release "2.4.0"
    assert version.removesuffix(".0") == floor.removesuffix(".0"), (name, version)


def test_the_core_runs_at_the_floors(floor_env, tmp_path):
    script = textwrap.dedent(CORE_SCRIPT % "[]")
    out = json.loads(run([floor_env, "-c", script], cwd=tmp_path).stdout)
    assert Path(out["package"]).is_relative_to(floor_env.parents[1])  # the wheel, not the source
    assert out["reloaded_equal"]
    assert out["sensor_logits"] == [2, 2]
    assert out["unit"] == [1, 8, 8, 8]


def test_the_tests_of_each_dependency_pass_at_the_floors(floor_env, tmp_path):
    tests = [ROOT / "tests" / name for name in SUBSET]
    # run outside the source tree, so that the installed wheel is the one imported
    command = [floor_env, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"]
    command += ["-c", ROOT / "pyproject.toml", "--rootdir", ROOT, *tests]
    run(command, cwd=tmp_path, timeout=1800)
