"""Image files as untrusted input: deep and float formats, corrupt files, bombs, odd paths."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pip_adapter.data import read_image, write_image

RNG = np.random.default_rng(0)
DEEP = (RNG.integers(0, 65536, (6, 5, 3))).astype(np.uint16)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def sixteen_bit_png(
    array: np.ndarray, width: int | None = None, height: int | None = None
) -> bytes:
    """A 16-bit PNG (grey, RGB or RGBA) written by the spec; Pillow cannot write colour ones.

    ``width`` / ``height`` override the size in the header (to make a decompression bomb)."""
    rows, cols, channels = array.shape
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(rows))
    header = struct.pack(">IIBBBBB", width or cols, height or rows, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def one_line_value_error(path: Path, match: str = "") -> None:
    with pytest.raises(ValueError, match=match) as caught:
        read_image(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message


# ---- formats that must read correctly ------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_colour_png_reads_at_the_right_scale(tmp_path, channels):
    alpha = np.full((6, 5, 1), 1000, np.uint16)  # a nearly transparent alpha is dropped
    pixels = DEEP if channels == 3 else np.concatenate([DEEP, alpha], axis=-1)
    (tmp_path / "deep.png").write_bytes(sixteen_bit_png(pixels))
    image = read_image(tmp_path / "deep.png")
    expected = torch.from_numpy(DEEP / 65535.0).permute(2, 0, 1).float()
    assert image.shape == (3, 6, 5) and image.dtype == torch.float32
    assert (image - expected).abs().max() <= 1 / 255  # Pillow decodes them at 8-bit precision


@pytest.mark.parametrize("planar", ["contig", "separate"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_sixteen_bit_tiff_reads_at_full_precision(tmp_path, channels, planar):
    pixels = np.concatenate([DEEP, DEEP[..., :1]], axis=-1)[..., :channels]
    photometric = "minisblack" if channels == 1 else "rgb"
    extra = {"extrasamples": ["unassalpha"]} if channels == 4 else {}
    data = pixels[..., 0] if channels == 1 else pixels
    if planar == "separate" and channels > 1:
        data = np.moveaxis(data, -1, 0)
    tifffile.imwrite(
        tmp_path / "deep.tif", data, photometric=photometric, planarconfig=planar, **extra
    )
    image = read_image(tmp_path / "deep.tif")
    expected = torch.from_numpy(pixels[..., [0, 0, 0] if channels == 1 else [0, 1, 2]] / 65535.0)
    assert torch.allclose(image, expected.permute(2, 0, 1).float(), atol=1e-6)


def test_float_tiff_is_read_as_values_in_0_1_and_clamped(tmp_path):
    values = RNG.random((6, 5, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", values, photometric="rgb")
    assert torch.equal(
        read_image(tmp_path / "float.tif"), torch.from_numpy(values).permute(2, 0, 1)
    )
    grey = np.linspace(-0.5, 1.5, 30, dtype=np.float32).reshape(6, 5)
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    image = read_image(tmp_path / "grey.tif")
    assert torch.equal(image[0], image[2]) and image.min() == 0 and image.max() == 1
    assert torch.allclose(image[0], torch.from_numpy(grey).clamp(0, 1))
    grey[2, 2] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", grey)
    one_line_value_error(tmp_path / "nan.tif", "non-finite")


def test_sixteen_bit_grey_png_and_eight_bit_tiff_still_read(tmp_path):
    Image.fromarray(DEEP[..., 0]).save(tmp_path / "grey16.png")
    assert read_image(tmp_path / "grey16.png")[1, 2, 3].item() == pytest.approx(
        DEEP[2, 3, 0] / 65535
    )
    pixels = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "plain.tif", compression="tiff_lzw")
    expected = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    assert torch.equal(read_image(tmp_path / "plain.tif"), expected)


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int16])
def test_integer_tiffs_other_than_8_and_16_bit_unsigned_are_refused(tmp_path, dtype):
    tifffile.imwrite(tmp_path / "int.tif", (np.arange(30).reshape(6, 5) * 1000).astype(dtype))
    one_line_value_error(tmp_path / "int.tif", "integer samples are not supported")


def test_big_but_legal_image_reads(tmp_path):
    big = np.zeros((2000, 3000, 3), np.uint8)
    big[::7, ::5] = 200
    Image.fromarray(big).save(tmp_path / "big.png")
    image = read_image(tmp_path / "big.png")
    assert image.shape == (3, 2000, 3000) and image.max() == pytest.approx(200 / 255)


# ---- files that must be refused in one line ------------------------------------------------


def test_broken_files_give_one_line_value_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    one_line_value_error(tmp_path / "empty.png", "not a valid image")
    (tmp_path / "notes.png").write_text("these are my notes, not a picture\n")
    one_line_value_error(tmp_path / "notes.png", "not a valid image")
    photo = RNG.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg")):
        data = encoded(photo, fmt)
        (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
        one_line_value_error(tmp_path / f"cut{suffix}", "not a valid image")
    (tmp_path / "folder.png").mkdir()
    one_line_value_error(tmp_path / "folder.png", "folder")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    # a tiny file whose header claims 40000×40000 pixels
    bomb = sixteen_bit_png(DEEP, width=40_000, height=40_000)
    (tmp_path / "bomb.png").write_bytes(bomb)
    one_line_value_error(tmp_path / "bomb.png", "decompression bomb")
    # between the limit and twice the limit PIL only warns: refused too; under it, read
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "warned.png")
    one_line_value_error(tmp_path / "warned.png", "decompression bomb")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "fine.png")
    assert read_image(tmp_path / "fine.png").shape == (3, 30, 30)
    tifffile.imwrite(tmp_path / "deep.tif", np.zeros((30, 40), np.uint16))
    one_line_value_error(tmp_path / "deep.tif", "decompression bomb")


def test_write_image_refuses_folders_and_unknown_suffixes(tmp_path):
    ramp = torch.linspace(0.1, 0.9, 16)
    image = torch.stack(
        [
            ramp.view(16, 1).expand(16, 16),
            ramp.view(1, 16).expand(16, 16),
            1 - ramp.view(16, 1).expand(16, 16),
        ]
    )
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(ValueError, match="a folder of that name exists"):
        write_image(image, tmp_path / "taken.png")
    with pytest.raises(ValueError, match=r"unknown suffix '\.txt'.*\.png"):
        write_image(image, tmp_path / "out.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.png"]
    for suffix in (".png", ".JPG", ".tif", ".bmp", ".webp"):
        write_image(image, tmp_path / "out" / f"picture{suffix}")
        error = (read_image(tmp_path / "out" / f"picture{suffix}") - image).abs()
        if suffix in (".JPG", ".webp"):  # lossy
            assert error.mean() < 0.03
        else:  # 8-bit
            assert error.max() < 0.5 / 255 + 1e-6
    assert not [p for p in (tmp_path / "out").iterdir() if p.suffix == ".tmp"]  # written atomically


# ---- random corruptions: a one-line ValueError or a correct image, nothing else ------------

VALID = {
    "png": encoded(RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8), "PNG"),
    "jpg": encoded(RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8), "JPEG"),
}


@st.composite
def corrupted(draw):
    suffix = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[suffix])
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return suffix, bytes(data)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=corrupted())
def test_corrupted_files_read_correctly_or_fail_in_one_line(tmp_path, case):
    suffix, data = case
    path = tmp_path / f"case.{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except ValueError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        return
    assert image.dtype == torch.float32 and image.dim() == 3 and image.shape[0] == 3
    assert image.shape[1] >= 1 and image.shape[2] >= 1
    assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1


# ---- training and evaluation data are checked up front -------------------------------------


def photo_folder(root: Path) -> Path:
    root.mkdir()
    for index in range(4):
        pixels = RNG.integers(0, 256, (48, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"good{index}.png")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_text("not a photo")
    Image.fromarray(np.zeros((5, 60, 3), np.uint8)).save(root / "strip.png")
    return root


def test_a_folder_with_bad_images_gets_one_error_listing_them(tmp_path):
    from pip_adapter.data import SyntheticAllInOne
    from pip_adapter.data.sources import eval_data, training_data

    folder = photo_folder(tmp_path / "photos")
    for build in (
        lambda: SyntheticAllInOne(folder, ("noise",), patch_size=32),
        lambda: training_data(str(folder), ("noise",), patch_size=32),
    ):
        with pytest.raises(ValueError, match="3 of 7 images cannot be used") as caught:
            build()
        message = str(caught.value)
        assert "\n" not in message and "good" not in message
        for name in ("empty.png", "notes.jpg", "strip.png"):
            assert name in message
        assert "60×5 pixels, under the minimum side of 8" in message
    (folder / "empty.png").unlink()
    (folder / "notes.jpg").unlink()
    # the same file name with new content is checked again (the check caches per file version)
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(folder / "strip.png")
    train, evaluation = training_data(str(folder), ("noise", "blur"), patch_size=32)
    assert train[0][0].shape == (3, 32, 32) and len(evaluation) > 0
    (folder / "good0.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match="images cannot be used.*good0.png"):
        training_data(str(folder), ("noise",), patch_size=32)
    from pip_adapter.data import list_images, split_train_test

    (folder / "good0.png").unlink()
    _, held_out = split_train_test(list_images(folder))
    held_out[0].write_bytes(b"broken")
    with pytest.raises(ValueError, match=f"1 of {len(held_out)} images cannot be used"):
        eval_data(str(folder), ("noise",))


def test_small_images_are_padded_for_training_and_used_whole_for_evaluation():
    from pip_adapter.data import SYNTHETIC_DEGRADATIONS, SyntheticAllInOne, build_eval_set

    with pytest.raises(
        ValueError, match=r"images\[1\] is 5×5 pixels: under the minimum side of 16"
    ):
        SyntheticAllInOne([torch.rand(3, 40, 40), torch.rand(3, 5, 5)], ("noise",), patch_size=64)
    small = SyntheticAllInOne([torch.rand(3, 20, 17)], ("blur", "rain"), patch_size=64)
    assert small[0][0].shape == small[1][1].shape == (3, 64, 64)
    images = [torch.rand(3, 20, 30), torch.rand(3, 300, 10), torch.rand(3, 1, 1)]
    evaluation = build_eval_set(images, SYNTHETIC_DEGRADATIONS, crop=256)
    shapes = {tuple(clean.shape) for clean in evaluation.clean}
    assert shapes == {(3, 20, 30), (3, 256, 10), (3, 1, 1)}
    for degraded, clean, _ in evaluation:
        assert degraded.shape == clean.shape
