"""Fresh virtual environments for the packaging tests: build the sdist and wheel, and give a
new environment exactly the distributions that a set of requirements needs.

Installing the dependencies with pip would cost minutes per environment: timm and spandrel
need torchvision, and the only torch / torchvision pair on this machine's disk is a CUDA build
of 5.5 GB (2 min 20 s per environment, measured). So a new environment receives, as
per-file symbolic links, the installed files of each distribution in the requirements'
closure (resolved from the environment running the tests, markers and extras evaluated), and
nothing else; pip then installs the package itself and checks every requirement against
what is there. Per-file links keep the source environment safe: should pip ever replace a
linked distribution, it removes links, never the files they point to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterable, Sequence
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

# what a core install is for: inject, run, save and load an adapter, the sensor, metrics;
# prints a JSON summary. Format with the list of train-only modules to look for.
CORE_SCRIPT = """
import importlib.util, json, sys, tempfile
import torch
import pip_adapter as pa

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.decoder = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return x + self.decoder(self.encoder(x))

torch.manual_seed(0)
x = torch.rand(2, 3, 16, 16)
model = pa.inject_pip(Net(), stages=["decoder"], degradations=("noise", "rain"),
                      prompt_dim=8, prompt_size=4, sample_input=x)
with torch.no_grad():
    for unit in model.pip_units.values():
        for p in unit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    y = model(x, degradation="rain")
with tempfile.TemporaryDirectory() as folder:
    model.save_adapter(folder)
    again = pa.load_adapter(Net(), folder)
    again.backbone.load_state_dict(model.backbone.state_dict())
    with torch.no_grad():
        same = torch.equal(again(x, degradation="rain"), y)
sensor = pa.DegradationSensor(degradations=("noise", "rain"))
try:
    pa.data
    data_error = None
except ImportError as error:
    data_error = str(error)
try:
    pa.DegradationSensor(degradations=("noise", "rain"), statistics=True)
    statistics_error = None
except ImportError as error:
    statistics_error = str(error)
print(json.dumps({
    "package": pa.__file__,
    "reloaded_equal": same,
    "sensor_logits": list(sensor(x).shape),
    "psnr": float(pa.metrics.psnr(x, x.clamp(0.1, 0.9)).mean()),
    "unit": list(pa.PromptInPrompt(8, 2, prompt_dim=8, prompt_size=4)(
        torch.rand(1, 8, 8, 8), torch.tensor([[1.0, 0.0]])).shape),
    "train_only_present": [m for m in %s if importlib.util.find_spec(m)],
    "data_error": data_error,
    "statistics_error": statistics_error,
}))
"""


def build_dist(out_dir: Path) -> tuple[Path, Path]:
    """``python -m build`` of the project into ``out_dir``: the sdist, then the wheel built
    from the sdist (so the wheel proves the sdist complete). Returns (sdist, wheel)."""
    run([sys.executable, "-m", "build", "--outdir", out_dir, ROOT], timeout=600)
    (sdist,) = out_dir.glob("*.tar.gz")
    (wheel,) = out_dir.glob("*.whl")
    return sdist, wheel


def wheel_metadata(wheel: Path) -> dict[str, list[str]]:
    """The wheel's METADATA as header -> values (``Requires-Dist`` has one per requirement)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(name).decode())
    return {key: message.get_all(key) or [] for key in set(message.keys())}


def wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def sdist_files(sdist: Path) -> list[str]:
    """Paths in the sdist, without its top folder."""
    with tarfile.open(sdist) as archive:
        return [name.partition("/")[2] for name in archive.getnames()]


def requirements_of(wheel: Path, extras: Sequence[str] = ()) -> list[Requirement]:
    """The wheel's requirements for a plain install plus ``extras``."""
    wanted = ("", *extras)
    return [
        requirement
        for requirement in map(Requirement, wheel_metadata(wheel)["Requires-Dist"])
        if _applies(requirement, wanted)
        # a self-reference (``pip-adapter[train]`` inside ``examples``) is not a dependency
        and canonicalize_name(requirement.name) != "pip-adapter"
    ]


def floors(wheel: Path, extras: Sequence[str] = ()) -> dict[str, str]:
    """Each requirement's floor (its ``>=`` bound), by distribution name. A requirement that
    states none is an error: every dependency says which release it needs."""
    pins = {}
    for requirement in requirements_of(wheel, extras):
        bounds = [s.version for s in requirement.specifier if s.operator == ">="]
        if len(bounds) != 1:
            raise ValueError(f"{requirement} states no single floor (>=)")
        pins[canonicalize_name(requirement.name)] = bounds[0]
    return pins


def oldest_python(wheel: Path) -> Path:
    """An interpreter of the oldest Python minor version the wheel supports (its
    ``Requires-Python`` floor), found on PATH or among pyenv's versions; the running one if
    neither has it."""
    (spec,) = wheel_metadata(wheel)["Requires-Python"]
    (floor,) = [s.version for s in SpecifierSet(spec) if s.operator == ">="]
    name = "python" + ".".join(floor.split(".")[:2])
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(name), *sorted(pyenv.glob(f"{floor}*/bin/{name}"))]
    for candidate in filter(None, candidates):
        if run([candidate, "--version"], check=False).returncode == 0:
            return Path(candidate)
    return Path(sys.executable)


def _applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": extra}) for extra in extras)


def installed_closure(
    requirements: Iterable[Requirement], exclude: Iterable[str] = ()
) -> list[metadata.Distribution]:
    """The installed distributions that ``requirements`` need, transitively (markers and
    extras evaluated), except the names in ``exclude`` (and what only they need). A missing
    or mismatching distribution is an error: the environment running the tests lacks it."""
    skip = {canonicalize_name(name) for name in exclude}
    found: dict[str, metadata.Distribution] = {}
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in skip:
            continue
        dist = found.get(name) or metadata.distribution(requirement.name)
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise RuntimeError(f"{requirement} is not satisfied by the installed {dist.version}")
        if name in found:
            continue
        found[name] = dist
        wanted = ("", *requirement.extras)
        todo += [r for r in map(Requirement, dist.requires or []) if _applies(r, wanted)]
    return sorted(found.values(), key=lambda dist: canonicalize_name(dist.metadata["Name"]))


def link_distributions(dists: Iterable[metadata.Distribution], site_packages: Path) -> None:
    """Give ``site_packages`` every installed file of ``dists`` as a symbolic link, byte code
    included (valid there: a link has its target's time stamp); scripts outside site-packages
    are left out."""
    for dist in dists:
        for file in dist.files or []:
            if file.parts[0] == "..":
                continue
            target = site_packages / file
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink(Path(dist.locate_file(file)).resolve(), target)


def create_venv(path: Path, dists: Iterable[metadata.Distribution] = ()) -> Path:
    """A new virtual environment at ``path`` (without pip: the running pip serves it through
    ``--python``), holding ``dists`` as links. Returns its interpreter."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    python = path / "bin" / "python"
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    link_distributions(dists, Path(site.stdout.strip()))
    return python


def pip(python: Path, *args: str | os.PathLike[str], timeout: float = 600) -> str:
    """The running pip, acting on the environment of ``python``; returns its output."""
    return run([sys.executable, "-m", "pip", "--python", python, *args], timeout=timeout).stdout


def clean_env() -> dict[str, str]:
    """This process's environment without what would make another interpreter see the source
    tree or this environment (PYTHONPATH, VIRTUAL_ENV), one thread per process."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run(
    command: Sequence[str | os.PathLike[str]], timeout: float = 300, check: bool = True, **kwargs
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``clean_env()``; with ``check``, a failure shows its output."""
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=kwargs.pop("env", clean_env()),
        **kwargs,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{command} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result
