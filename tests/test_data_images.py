"""Image files under bad input: EXIF orientation, decompression bombs, unreadable files, clutter in set folders."""
import io
import warnings

import numpy as np
import pytest
from PIL import Image

from srlib.data import load_image, load_set, max_image_pixels

RGB = (np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 5)


def png_bytes(arr: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **save)
    return buf.getvalue()


def write(path, data: bytes):
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- EXIF orientation

UPRIGHT = {  # EXIF orientation -> what the stored pixels become when turned upright
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_is_applied(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = write(tmp_path / "phone.png", png_bytes(RGB, exif=exif))
    assert np.array_equal(load_image(path), UPRIGHT[orientation](RGB))


def test_exif_orientation_of_a_grayscale_jpeg(tmp_path):
    gray = np.full((8, 16), 200, np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(gray).save(tmp_path / "scan.jpg", exif=exif, quality=100)
    assert load_image(tmp_path / "scan.jpg").shape == (16, 8)


# ---------------------------------------------------------------------------- decompression bombs


@pytest.mark.parametrize("side", [12, 20])  # 144 pixels: refused by our check; 400: by Pillow's (twice the limit)
def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch, side):
    monkeypatch.setenv("SRLIB_MAX_IMAGE_PIXELS", "100")
    path = write(tmp_path / "bomb.png", png_bytes(np.zeros((side, side), np.uint8)))
    with pytest.raises(ValueError, match="more than the 100 allowed") as refused:
        load_image(path)
    message = str(refused.value)
    assert str(path) in message and f"{side * side:,} pixels" in message and "SRLIB_MAX_IMAGE_PIXELS" in message


def test_raising_the_limit_lets_a_trusted_image_through(tmp_path, monkeypatch):
    path = write(tmp_path / "big.png", png_bytes(np.zeros((20, 20), np.uint8)))
    monkeypatch.setenv("SRLIB_MAX_IMAGE_PIXELS", "400")
    assert load_image(path).shape == (20, 20)


def test_pillows_guard_is_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("SRLIB_MAX_IMAGE_PIXELS", raising=False)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert max_image_pixels() == 100
    with pytest.raises(ValueError, match="decompression bombs"):
        load_image(write(tmp_path / "bomb.png", png_bytes(np.zeros((20, 20), np.uint8))))
    assert Image.MAX_IMAGE_PIXELS == 100  # load_image leaves Pillow's setting as it was


@pytest.mark.parametrize("value", ["lots", "-5", "0", "1e9"])
def test_a_bad_pixel_limit_is_explained(tmp_path, monkeypatch, value):
    monkeypatch.setenv("SRLIB_MAX_IMAGE_PIXELS", value)
    with pytest.raises(ValueError, match="SRLIB_MAX_IMAGE_PIXELS must be a whole number of pixels"):
        load_image(write(tmp_path / "a.png", png_bytes(RGB)))


# ---------------------------------------------------------------------------- unreadable files

GOOD = png_bytes(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("name,content", [
    ("empty.png", b""),
    ("truncated.png", GOOD[: len(GOOD) // 2]),
    ("header_only.png", GOOD[:33]),
    ("corrupt_pixels.png", GOOD[:200] + bytes(b ^ 0xFF for b in GOOD[200:260]) + GOOD[260:]),
    ("truncated.jpg", jpeg_bytes()[:300]),
    ("notes.png", b"meeting notes, not a picture"),
    ("page.jpg", b"<html><body>Please log in</body></html>"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_unreadable_files_are_named_in_a_clear_error(tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match="cannot read it as an image") as refused:
        load_image(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)
    assert path.read_bytes() == content


def test_a_folder_or_missing_file_is_not_an_image(tmp_path):
    (tmp_path / "album.png").mkdir()
    for path in (tmp_path / "album.png", tmp_path / "missing.png"):
        with pytest.raises(FileNotFoundError, match=f"no image file at {path}"):
            load_image(path)


# ---------------------------------------------------------------------------- set folders


def make_set(root, *extra: str):
    folder = root / "Mine"
    folder.mkdir()
    for i in range(2):
        write(folder / f"im{i}.png", png_bytes(np.full((6, 6, 3), i, np.uint8)))
    for name in extra:
        if name.endswith("/"):
            (folder / name).mkdir()
        else:
            write(folder / name, b"\x00\x05\x16\x07 AppleDouble" if name.startswith("._") else b"clutter")
    return folder


@pytest.mark.parametrize("clutter", ["._im0.png", ".DS_Store", "Thumbs.db", "README.txt", "desktop.ini",
                                     "scores.csv", "originals/", ".hidden.png"])
def test_set_folders_skip_hidden_and_other_files_with_a_warning(tmp_path, clutter):
    make_set(tmp_path, clutter)
    with pytest.warns(UserWarning, match=r"skipped 1 hidden or non-image entries \(" + clutter.replace(".", r"\.")):
        images = load_set("Mine", root=tmp_path)
    assert list(images) == ["im0", "im1"]


def test_a_clean_set_folder_loads_without_warnings(tmp_path):
    make_set(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(load_set("Mine", root=tmp_path)) == ["im0", "im1"]


def test_a_folder_of_clutter_only(tmp_path):
    (tmp_path / "Mine").mkdir()
    write(tmp_path / "Mine" / ".DS_Store", b"x")
    with pytest.warns(UserWarning, match="skipped 1"), pytest.raises(FileNotFoundError, match="holds no images"):
        load_set("Mine", root=tmp_path)


def test_a_damaged_image_in_a_set_is_an_error_not_a_gap(tmp_path):
    folder = make_set(tmp_path)
    write(folder / "im2.png", GOOD[:100])
    with pytest.raises(ValueError, match="im2.png: cannot read it as an image"):
        load_set("Mine", root=tmp_path)
