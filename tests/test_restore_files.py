"""``pip-adapter restore`` on real files: every input processed, nothing replaced without
--overwrite, one line per failure, distinct outputs for clashing names, no partial files."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.bundle import save_bundle
from pip_adapter.cli import main
from pip_adapter.cli.batch import collect_inputs, output_names
from pip_adapter.data import read_image, write_image


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny NAFNet + PIP bundle (weights included), trained for no step: quick to load."""
    torch.manual_seed(0)
    model = pa.inject_pip(build_backbone("nafnet", "tiny"))
    directory = tmp_path_factory.mktemp("bundle") / "adapter"
    return save_bundle(model, directory, backbone="nafnet", size="tiny", save_backbone_weights=True)


def restore(bundle, *args) -> int:
    return main(["restore", *map(str, args), "--adapter", str(bundle), "--degradation", "rain"])


def expected_output(bundle, path: Path) -> torch.Tensor:
    """What the model makes of ``path``, as the 8-bit PNG restore writes."""
    model = pa.bundle.load_bundle(bundle).eval()
    with torch.no_grad():
        restored = model(read_image(path)[None], degradation="rain")[0]
    return (restored.clamp(0, 1) * 255).round() / 255


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def rgb(seed: int, size=(20, 28)) -> torch.Tensor:
    return torch.rand(3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def mixed(tmp_path):
    """Two input folders: good images, clashing names (y.jpg / y.png; x.png in both folders),
    and corrupt files (empty, truncated, text named .png)."""
    first, second = tmp_path / "in" / "a", tmp_path / "in" / "b"
    write_image(rgb(0), first / "x.png")
    write_image(rgb(1), first / "y.png")
    Image.fromarray((rgb(2).permute(1, 2, 0) * 255).byte().numpy()).save(first / "y.jpg")
    write_image(rgb(3, (9, 13)), first / "odd.png")
    write_image(rgb(4), second / "x.png")
    (first / "empty.png").write_bytes(b"")
    good = (first / "x.png").read_bytes()
    (first / "truncated.png").write_bytes(good[: len(good) // 2])
    (second / "text.png").write_text("not an image\n")
    return tmp_path / "in"


GOOD = {
    # input -> output, by the naming rule (y.jpg keeps its extension; x.png goes into a/, b/)
    "a/x.png": "a/x.png",
    "b/x.png": "b/x.png",
    "a/y.png": "y.png",
    "a/y.jpg": "y.jpg.png",
    "a/odd.png": "odd.png",
}
CORRUPT = ("a/empty.png", "a/truncated.png", "b/text.png")


def test_a_folder_of_good_corrupt_and_clashing_files(bundle, mixed, tmp_path, capsys):
    originals = snapshot(mixed)
    out = tmp_path / "out"
    assert restore(bundle, mixed / "a", mixed / "b", "-o", out) == 1
    captured = capsys.readouterr()
    assert snapshot(mixed) == originals  # no input changed
    assert sorted(snapshot(out)) == sorted(GOOD.values())  # every good one, nothing else
    for source, target in GOOD.items():
        restored = read_image(out / target)
        torch.testing.assert_close(restored, expected_output(bundle, mixed / source))
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(CORRUPT) + 1  # one line per failure, then the summary
    for name, line in zip(CORRUPT, errors, strict=False):
        assert line.startswith(f"pip-adapter restore: {mixed / name}: ")
    assert errors[-1] == f"pip-adapter restore: 5 restored, 3 failed, of 8 images (into {out})"
    assert "Traceback" not in captured.err
    assert captured.out.count(" -> ") == len(GOOD)

    # again into the same folder: every output exists, nothing is replaced
    before = snapshot(out)
    assert restore(bundle, mixed / "a", mixed / "b", "-o", out) == 1
    err = capsys.readouterr().err
    assert err.count("exists; pass --overwrite to replace it") == len(GOOD)
    assert "0 restored, 8 failed" in err
    assert snapshot(out) == before and snapshot(mixed) == originals

    # with --overwrite the outputs are replaced (atomically: no temporary left behind)
    (out / "y.png").write_bytes(b"stale")
    assert restore(bundle, mixed / "a", mixed / "b", "-o", out, "--overwrite") == 1
    assert "5 restored, 3 failed" in capsys.readouterr().err
    assert snapshot(out) == before and snapshot(mixed) == originals
    assert not list(out.rglob("*.tmp"))


def test_all_good_inputs_exit_zero_with_a_summary(bundle, tmp_path, capsys):
    write_image(rgb(0), tmp_path / "in" / "a.png")
    write_image(rgb(1), tmp_path / "in" / "b.png")
    assert restore(bundle, tmp_path / "in", "-o", tmp_path / "out") == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith(
        f"2 restored, 0 failed, of 2 images (into {tmp_path / 'out'})"
    )
    assert captured.err == ""


def test_output_into_the_input_folder_never_replaces_an_input(bundle, tmp_path, capsys):
    folder = tmp_path / "photos"
    write_image(rgb(0), folder / "x.png")
    Image.fromarray((rgb(1).permute(1, 2, 0) * 255).byte().numpy()).save(folder / "y.jpg")
    write_image(rgb(2), folder / "y.png")  # the name y.jpg's output would take ...
    write_image(rgb(3), folder / "y.jpg.png")  # ... and the next one too
    originals = snapshot(folder)
    assert restore(bundle, folder, "-o", folder) == 1
    err = capsys.readouterr().err
    for name in ("x.png", "y.png", "y.jpg.png"):
        assert f"the output {folder / name} is the input itself; pass --overwrite" in err
    assert "1 restored, 3 failed, of 4 images" in err
    after = snapshot(folder)
    assert {k: after[k] for k in originals} == originals  # no input changed
    # y.jpg's output could take neither y.png nor y.jpg.png (inputs): a sub-folder it is
    assert sorted(set(after) - set(originals)) == ["photos/y.jpg.png"]
    # --overwrite restores in place: an input is replaced by its own output, never another's
    assert restore(bundle, folder, "-o", folder, "--overwrite") == 0
    capsys.readouterr()
    replaced = snapshot(folder)
    assert replaced["y.jpg"] == originals["y.jpg"]
    assert all(replaced[name] != originals[name] for name in ("x.png", "y.png", "y.jpg.png"))
    torch.testing.assert_close(
        read_image(folder / "photos" / "y.jpg.png"), expected_output(bundle, folder / "y.jpg")
    )


def test_output_names_that_are_folders_and_an_output_that_is_a_file(bundle, tmp_path, capsys):
    write_image(rgb(0), tmp_path / "in" / "a.png")
    write_image(rgb(1), tmp_path / "in" / "b.png")
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    (tmp_path / "out" / "a.png" / "keep.txt").write_text("mine")
    assert restore(bundle, tmp_path / "in", "-o", tmp_path / "out", "--overwrite") == 1
    err = capsys.readouterr().err
    assert f"the output {tmp_path / 'out' / 'a.png'} is a folder; it is left as it is" in err
    assert (tmp_path / "out" / "a.png" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "out" / "b.png").is_file()
    (tmp_path / "file").write_text("mine")
    assert restore(bundle, tmp_path / "in", "-o", tmp_path / "file") == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"pip-adapter restore: error: -o {tmp_path / 'file'} is a file; it must name a folder"
    )
    assert (tmp_path / "file").read_text() == "mine"


def test_a_failed_write_leaves_no_partial_file_and_the_rest_goes_on(
    bundle, tmp_path, capsys, monkeypatch
):
    for name in ("a", "b", "c"):
        write_image(rgb(0), tmp_path / "in" / f"{name}.png")
    save = Image.Image.save

    def disk_full_on_b(self, fp, *args, **kwargs):
        if ".b.png." in str(fp):  # the temporary file of b.png
            Path(fp).write_bytes(b"\x89PNG half")
            raise OSError(28, "No space left on device")
        return save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", disk_full_on_b)
    assert restore(bundle, tmp_path / "in", "-o", tmp_path / "out") == 1
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_sixteen_bit_and_float_images_are_restored_from_their_true_values(bundle, tmp_path):
    """Deep images decode to their values in [0, 1] (not black, not clipped white) and are
    restored from them, all the way through the command line."""
    values = rgb(5)
    hwc = values.permute(1, 2, 0).numpy()
    tifffile.imwrite(tmp_path / "float.tif", hwc.astype(np.float32), photometric="rgb")
    tifffile.imwrite(
        tmp_path / "rgb16.tif", np.round(hwc * 65535).astype(np.uint16), photometric="rgb"
    )
    grey16 = np.round(hwc[..., 0] * 65535).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    truth = {"float.tif": values, "rgb16.tif": values, "grey16.png": values[:1].expand(3, -1, -1)}
    for name, expected in truth.items():
        torch.testing.assert_close(read_image(tmp_path / name), expected, atol=1e-5, rtol=0)
    out = tmp_path / "out"
    assert restore(bundle, *(tmp_path / name for name in truth), "-o", out) == 0
    for name in truth:
        restored = read_image(out / f"{Path(name).stem}.png")
        torch.testing.assert_close(restored, expected_output(bundle, tmp_path / name))


def test_naming_rule():
    root = Path("/data")
    cases = {
        # plain: stem + .png
        ("p/a.jpg", "p/b.png"): ["a.png", "b.png"],
        # the same stem: a PNG keeps its name, another format keeps its extension
        ("p/y.jpg", "p/y.png", "p/y.tif"): ["y.jpg.png", "y.png", "y.tif.png"],
        # the same name in two folders: sub-folders, as few as tell them apart
        ("p/a/x.png", "p/b/x.png"): ["a/x.png", "b/x.png"],
        ("p/a/s/x.png", "q/a/s/x.png", "q/b/x.png"): ["p/a/s/x.png", "q/a/s/x.png", "b/x.png"],
        # names that differ only in case clash on macOS and Windows: numbered in the end
        ("p/X.png", "p/x.png"): ["X.png", "x-2.png"],
    }
    for inputs, expected in cases.items():
        names = output_names([root / p for p in inputs], Path("/out"))
        assert [str(n.relative_to("/out")) for n in names] == expected, inputs


def test_an_output_never_takes_another_inputs_name(tmp_path):
    folder = tmp_path / "f"
    for name in ("y.jpg", "y.jpg.png", "y.png"):
        write_image(rgb(0), folder / name)
    inputs = collect_inputs([folder, folder / "y.png"])  # y.png named twice: restored once
    names = output_names(inputs, folder)
    assert len(inputs) == 3 and len({str(n).casefold() for n in names}) == 3
    for source, target in zip(inputs, names, strict=True):
        assert target == source or target not in inputs


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tile", "0"], "--tile must be a positive"),
        (["--tile", "8", "--overlap", "8"], "--overlap"),
    ],
)
def test_bad_tile_options_are_refused_once(bundle, tmp_path, capsys, options, message):
    write_image(rgb(0), tmp_path / "a.png")
    assert restore(bundle, tmp_path / "a.png", "-o", tmp_path / "out", *options) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_a_bogus_device_is_refused_in_one_line_before_any_output(bundle, tmp_path, capsys):
    write_image(rgb(0), tmp_path / "a.png")
    args = ["restore", str(tmp_path / "a.png"), "--adapter", str(bundle), "--device", "bogus"]
    assert main([*args, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pip-adapter restore: error: --device 'bogus' is not a device; use one of "
        "cpu, cuda, cuda:1, mps"
    )
    assert not (tmp_path / "out").exists()
