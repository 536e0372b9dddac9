"""Property-based tests of the file readers under random corruption (hypothesis).

Whatever is done to an adapter config, a sensor config, a bundle's backbone.json, a
safetensors file or an image, reading it gives either a correct result or a one-line
ValueError / FileNotFoundError, and writes nothing.
"""

import contextlib
import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.bundle import load_bundle, save_bundle
from pip_adapter.data import read_image
from pip_adapter.weights import read_safetensors

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
READ_ERRORS = (ValueError, FileNotFoundError)

# JSON values, biased towards those that test bounds and types
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.sampled_from([0, -1, 1, 2, 3, 8, 16, 513, 4096, 10**9])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["16", "auto", "input", "tokens", "image", "NAFNet", "../x", "/etc/passwd"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def paths(value, prefix=()):
    """Every location in a JSON document, as a tuple of keys / indices."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


@st.composite
def mutated_json(draw, document):
    """``document`` with one location replaced, removed, or given an extra key."""
    document = json.loads(json.dumps(document))
    where = draw(st.sampled_from([p for p in paths(document) if p]))
    parent = document
    for step in where[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "remove":
        del parent[where[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    else:
        parent[where[-1]] = draw(JSON_VALUES)
    return document


@st.composite
def mutated_bytes(draw, data: bytes):
    """``data`` truncated, with bytes overwritten, or with bytes inserted."""
    action = draw(st.sampled_from(["truncate", "overwrite", "insert"]))
    at = draw(st.integers(0, len(data)))
    if action == "truncate":
        return data[:at]
    chunk = draw(st.binary(min_size=1, max_size=16))
    if action == "overwrite":
        return data[:at] + chunk + data[at + len(chunk) :]
    return data[:at] + chunk + data[at:]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
    }


def read_or_refuse(read, folder: Path):
    """``read()``'s result, or None after a one-line error; ``folder`` must be unchanged."""
    before = snapshot(folder)
    try:
        result = read()
    except READ_ERRORS as err:
        assert "\n" not in str(err) and str(err), repr(err)
        event(f"refused ({type(err).__name__})")  # pytest --hypothesis-show-statistics
        result = None
    else:
        event("read")
    assert snapshot(folder) == before, "reading changed the files"
    return result


@contextlib.contextmanager
def copy_of(folder: Path):
    with tempfile.TemporaryDirectory() as scratch:
        yield shutil.copytree(folder, Path(scratch) / folder.name)


def works(model, finite: bool = True) -> None:
    """A loaded model restores: the right shape, and finite values unless its weights may be
    any finite numbers (random bytes in a weights file can be 1e38s that overflow)."""
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        y = model(x, degradation=model.degradations[0])
    assert y.shape == x.shape
    assert torch.isfinite(y).all() or not finite


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Two bundles of a tiny NAFNet + PIP: without and with a sensor."""
    root = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    model = pa.inject_pip(build_backbone("nafnet", "tiny"))
    plain = save_bundle(
        model, root / "plain", backbone="nafnet", size="tiny", save_backbone_weights=True
    )
    model.sensor = pa.DegradationSensor(crop_size=16)
    sensed = save_bundle(
        model, root / "sensed", backbone="nafnet", size="tiny", save_backbone_weights=True
    )
    return plain, sensed


def fuzz_json(bundle: Path, name: str, data) -> None:
    """Load ``bundle`` with its file ``name`` replaced by a mutation of it."""
    document = json.loads((bundle / name).read_text())
    mutated = data.draw(mutated_json(document))
    with copy_of(bundle) as folder:
        (folder / name).write_text(json.dumps(mutated))
        model = read_or_refuse(lambda: load_bundle(folder), folder)
        if model is not None:
            works(model)


@FUZZ
@given(data=st.data())
def test_adapter_config(bundles, data):
    fuzz_json(bundles[0], "adapter_config.json", data)


@settings(FUZZ, max_examples=20)  # each example builds a timm network
@given(data=st.data())
def test_sensor_config(bundles, data):
    fuzz_json(bundles[1], "sensor_config.json", data)


@FUZZ
@given(data=st.data())
def test_backbone_recipe(bundles, data):
    fuzz_json(bundles[0], "backbone.json", data)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["adapter_config.json", "backbone.json"]))
def test_config_bytes(bundles, data, name):
    broken = data.draw(mutated_bytes((bundles[0] / name).read_bytes()))
    with copy_of(bundles[0]) as folder:
        (folder / name).write_bytes(broken)
        model = read_or_refuse(lambda: load_bundle(folder), folder)
        if model is not None:
            works(model)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["adapter", "backbone"]))
def test_safetensors_files(bundles, data, name):
    path = bundles[0] / f"{name}.safetensors"
    broken = data.draw(mutated_bytes(path.read_bytes()))
    with copy_of(bundles[0]) as folder:
        (folder / path.name).write_bytes(broken)
        tensors = read_or_refuse(lambda: read_safetensors(folder / path.name, name), folder)
        if tensors is not None:
            assert all(t.isfinite().all() for t in tensors.values() if t.is_floating_point())
        model = read_or_refuse(lambda: load_bundle(folder), folder)
        if model is not None:
            works(model, finite=False)


def encoded(kind: str) -> bytes:
    """A small image file of ``kind``, as bytes."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    if kind == "png16":
        Image.fromarray(rng.integers(0, 65536, (12, 10), dtype=np.uint16)).save(buffer, "PNG")
    elif kind == "tiff-float":
        import tifffile

        tifffile.imwrite(buffer, rng.random((12, 10, 3), dtype=np.float32), photometric="rgb")
    else:
        rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
        rgb.save(buffer, {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}[kind])
    return buffer.getvalue()


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["png", "jpeg", "tiff", "png16", "tiff-float"]))
def test_images(data, kind):
    broken = data.draw(mutated_bytes(encoded(kind)))
    suffix = {"jpeg": ".jpg", "png16": ".png", "tiff-float": ".tif"}.get(kind, f".{kind}")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"image{suffix}"
        path.write_bytes(broken)
        image = read_or_refuse(lambda: read_image(path), Path(scratch))
    if image is not None:
        assert image.dtype == torch.float32 and image.dim() == 3 and image.shape[0] == 3
        assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
