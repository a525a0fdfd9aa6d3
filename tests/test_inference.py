"""Tiled upscaling (srlib.inference.upscale_tiled): the same image as upscaling it whole, with bounded memory."""
import numpy as np
import pytest
import torch

from srlib.evaluate import upscale_image
from srlib.inference import tile_margin, upscale_tiled
from srlib.models import build


def model(name: str, scale: int = 3):
    torch.manual_seed(0)
    return build(name, scale, size="quick").eval()


IMAGES = {
    "rgb": np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8),
    "gray": np.random.default_rng(1).integers(0, 256, (29, 40), dtype=np.uint8),
}


@pytest.mark.parametrize("kind", IMAGES)
@pytest.mark.parametrize("tile", [8, 13])
def test_tiles_equal_the_whole_image_for_lr_input(kind, tile):
    espcn = model("espcn")
    whole = upscale_image(espcn, IMAGES[kind])
    tiled = upscale_tiled(espcn, IMAGES[kind], tile=tile)
    assert tiled.dtype == np.uint8 and tiled.shape == whole.shape
    assert np.array_equal(tiled, whole)


@pytest.mark.parametrize("kind", IMAGES)
def test_tiles_nearly_equal_the_whole_image_for_upsampled_input(kind):
    srcnn = model("srcnn")
    whole = upscale_image(srcnn, IMAGES[kind])
    tiled = upscale_tiled(srcnn, IMAGES[kind], tile=10)
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1  # at most one grey level (float rounding)


def test_one_tile_is_the_whole_image():
    espcn = model("espcn", 2)
    assert np.array_equal(upscale_tiled(espcn, IMAGES["rgb"], tile=64), upscale_image(espcn, IMAGES["rgb"]))


def test_margins_cover_the_receptive_field():
    assert tile_margin(model("espcn")) == 4  # 5x5, 3x3 and 3x3 convolutions at LR resolution
    assert tile_margin(model("srcnn")) == 3 + 3  # its radius of 8 HR pixels is 3 LR pixels, plus bicubic's reach


@pytest.mark.parametrize("tile,overlap", [(0, None), (-4, None), (8.5, None), (True, None), (8, -1)])
def test_bad_tiles_are_refused(tile, overlap):
    with pytest.raises(ValueError, match="tile must be|overlap must be"):
        upscale_tiled(model("espcn"), IMAGES["rgb"], tile=tile, overlap=overlap)
