import numpy as np
import pytest
import torch
from PIL import Image

from srlib.data import (
    TEST_SAMPLES,
    TRAIN_SAMPLES,
    VALIDATION_SAMPLES,
    PatchDataset,
    center_crops,
    data_root,
    load_image,
    load_set,
    sample_images,
    to_tensor,
)
from srlib.degradations import bicubic_lr, blur_lr, degrade, noisy_lr, upsample_bicubic
from srlib.imresize import imresize


def test_embedded_split_is_disjoint_and_loads():
    splits = [set(TRAIN_SAMPLES), set(VALIDATION_SAMPLES), set(TEST_SAMPLES)]
    assert sum(map(len, splits)) == len(set.union(*splits))  # no photograph plays two roles
    assert list(sample_images("val")) == list(VALIDATION_SAMPLES)
    test = sample_images("test")
    assert list(test) == list(TEST_SAMPLES)
    for img in test.values():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    train = sample_images("train")
    assert any(img.ndim == 2 for img in train.values())  # grayscale photographs are kept as such
    with pytest.raises(ValueError, match="split"):
        sample_images("validation")


def test_no_training_photograph_is_mostly_black():
    """Patches are drawn in proportion to area: a mostly black image would fill batches with nothing."""
    for name, img in sample_images("train").items():
        gray = img if img.ndim == 2 else img.mean(axis=2)
        assert (gray < 16).mean() < 0.3, f"{name} is mostly black"


def test_center_crops():
    img = np.arange(10 * 12, dtype=np.uint8).reshape(10, 12)
    crops = center_crops({"a": img}, 4)
    assert np.array_equal(crops["a"], img[3:7, 4:8])
    with pytest.raises(ValueError, match="smaller than the crop"):
        center_crops({"a": img}, 11)


def test_data_root_from_argument_environment_and_default(monkeypatch, tmp_path):
    monkeypatch.delenv("SRLIB_DATA", raising=False)
    assert data_root().as_posix() == "data"
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("elsewhere").as_posix() == "elsewhere"


def test_missing_set_names_the_download_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_scripts/download.py Set14"):
        load_set("Set14", root=tmp_path)


def _save(path, arr, mode=None):
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def test_load_image_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    assert np.array_equal(load_image(_save(tmp_path / "rgb.png", rgb)), rgb)
    gray = rgb[:, :, 0]
    assert load_image(_save(tmp_path / "gray.png", gray)).shape == (8, 9)
    opaque = np.dstack([rgb, np.full((8, 9), 255, np.uint8)])
    assert np.array_equal(load_image(_save(tmp_path / "opaque.png", opaque)), rgb)
    transparent = opaque.copy()
    transparent[0, 0, 3] = 10
    with pytest.raises(ValueError, match="transparent"):
        load_image(_save(tmp_path / "transparent.png", transparent))
    sixteen = (gray.astype(np.uint16) * 257)
    Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    assert np.array_equal(load_image(tmp_path / "sixteen.png"), gray)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


def test_load_set_reads_a_folder(tmp_path):
    (tmp_path / "Tiny").mkdir()
    for i in range(3):
        _save(tmp_path / "Tiny" / f"im{i}.png", np.full((6, 6, 3), i, np.uint8))
    (tmp_path / "Tiny" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="skipped 1 hidden or non-image"):  # skipped, and said so
        images = load_set("Tiny", root=tmp_path)
    assert list(images) == ["im0", "im1", "im2"]


def test_to_tensor_channels_and_errors():
    rgb = np.zeros((4, 5, 3), np.uint8)
    assert to_tensor(rgb, "rgb").shape == (1, 3, 4, 5)
    y = to_tensor(rgb, "y", dtype=torch.float64)
    assert y.shape == (1, 1, 4, 5) and torch.allclose(y, torch.full_like(y, 16 / 255))
    assert to_tensor(rgb[:, :, 0], "rgb").shape == (1, 3, 4, 5)
    with pytest.raises(TypeError, match="uint8"):
        to_tensor(rgb.astype(np.float32), "rgb")
    with pytest.raises(ValueError, match="channels"):
        to_tensor(rgb, "lab")


def test_patch_pairs_line_up_with_the_exact_degradation():
    img = np.random.default_rng(0).integers(0, 256, (60, 66, 3), dtype=np.uint8)
    ds = PatchDataset({"a": img}, scale=3, patch_size=24, channels="rgb", augment=False)
    x, y = ds[5]
    assert x.shape == (3, 8, 8) and y.shape == (3, 24, 24)
    hr = to_tensor(img, "rgb", dtype=torch.float64)
    lr = bicubic_lr(hr, 3)[0].float()
    # The LR patch is a window of the LR image made from the whole HR image.
    found = [(i, j) for i in range(lr.shape[1] - 7) for j in range(lr.shape[2] - 7)
             if torch.equal(lr[:, i:i + 8, j:j + 8], x)]
    assert found
    i, j = found[0]
    assert torch.equal(hr[0, :, 3 * i:3 * i + 24, 3 * j:3 * j + 24].float(), y)
    assert torch.equal(ds[5][0], x)  # a patch is a pure function of its index


def test_augmentation_applies_the_same_symmetry_to_both():
    img = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    ds = PatchDataset({"a": img}, scale=2, patch_size=48, channels="y", upsampled=True)
    for i in range(16):
        x, y = ds[i]
        # For a full-image patch the input must stay aligned with the target under any symmetry.
        assert torch.allclose(upsample_bicubic(bicubic_lr(y[None].double(), 2), 2)[0].float(), x, atol=1e-5)


def test_multiscale_upsampled_patches_have_one_size():
    img = np.random.default_rng(2).integers(0, 256, (72, 72), dtype=np.uint8)
    ds = PatchDataset([img], scales=(2, 3, 4), patch_size=41, channels="y", upsampled=True)
    shapes = {tuple(ds[i][0].shape) for i in range(10)}
    assert shapes == {(1, 41, 41)}


def test_images_smaller_than_the_patch_are_left_out_with_one_warning():
    rng = np.random.default_rng(3)
    images = {"big": rng.integers(0, 256, (96, 100), dtype=np.uint8), "t20": np.zeros((78, 78), np.uint8),
              "tiny": np.zeros((40, 50), np.uint8)}
    with pytest.warns(UserWarning, match=r"2 of 3 images are smaller than the 96-pixel patch and are left out "
                                         r"\(t20, tiny\)") as caught:
        ds = PatchDataset(images, scale=4, patch_size=96)
    assert len(caught) == 1 and ds.patch_size == 96 and len(ds.pairs[4]) == 1
    assert ds[0][1].shape == (1, 96, 96)


def test_a_patch_no_image_holds_is_capped_with_a_warning():
    images = {"a": np.zeros((78, 90), np.uint8), "b": np.zeros((50, 60, 3), np.uint8),
              "c": np.zeros((80, 99), np.uint8)}
    with pytest.warns(UserWarning, match="patch size 384 capped at 76, the largest that half of the images hold; "
                                         "1 of 3 images"):
        ds = PatchDataset(images, scale=4, patch_size=384, channels="rgb")
    assert ds.patch_size == 76 and ds[0][0].shape == (3, 19, 19) and ds[0][1].shape == (3, 76, 76)
    with pytest.raises(ValueError, match="half of the images are smaller than one patch of 12 pixels"):
        PatchDataset([np.zeros((10, 10), np.uint8)], scales=(3, 4), patch_size=48)


def test_patch_dataset_bad_input():
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="divide by the scale"):
        PatchDataset({"a": img}, scale=3, patch_size=32)
    with pytest.raises(ValueError, match="divide by every scale"):
        PatchDataset({"a": img}, scales=(2, 3), patch_size=10)
    with pytest.raises(ValueError, match="degradation"):
        PatchDataset({"a": img}, scale=2, patch_size=16, degradation="jpeg")
    with pytest.raises(ValueError, match="at least one"):
        PatchDataset({}, scale=2)


def test_degradations():
    hr = torch.rand(1, 3, 24, 24, dtype=torch.float64)
    for kind in ("bicubic", "blur", "noise"):
        lr = degrade(hr, 4, kind)
        assert lr.shape == (1, 3, 6, 6)
        assert torch.equal(lr, (lr * 255).round() / 255)  # quantised like a PNG
    assert torch.equal(bicubic_lr(hr, 2), ((imresize(hr, 0.5).clamp(0, 1) * 255).round() / 255))
    flat = torch.full((1, 1, 16, 16), 0.5, dtype=torch.float64)
    assert torch.allclose(blur_lr(flat, 2), torch.full((1, 1, 8, 8), 128 / 255, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    noisy = noisy_lr(flat, 2, sigma=30, generator=g)
    assert 20 < (noisy * 255 - 128).std().item() < 40
    with pytest.raises(ValueError, match="mod-crop"):
        bicubic_lr(torch.rand(1, 1, 10, 10), 3)
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(hr, 2, "jpeg")
    with pytest.raises(ValueError, match="divided by 255"):
        bicubic_lr(hr * 255, 2)
