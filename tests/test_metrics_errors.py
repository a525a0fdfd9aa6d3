"""Numbers under bad input: NaN, infinities, wrong scales and 0..255 images give a clear ValueError, not a figure."""
import math

import numpy as np
import pytest
import torch

from srlib.imresize import imresize
from srlib.metrics import psnr, sr_metrics, ssim, ssim_map

# ---------------------------------------------------------------------------- imresize: pixels


def with_value(value, kind):
    img = np.full((8, 8), 0.5)
    img[3, 4] = value
    return torch.from_numpy(img)[None, None] if kind == "tensor" else img


@pytest.mark.parametrize("kind", ["array", "tensor"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_imresize_refuses_nan_and_infinite_pixels(value, kind):
    with pytest.raises(ValueError, match="contains NaN or infinite values"):
        imresize(with_value(value, kind), 0.5)


@pytest.mark.parametrize("kind", ["array", "tensor"])
def test_imresize_accepts_large_finite_pixels_whose_sum_overflows(kind):
    # The guard sums the pixels first; an overflowing sum must fall back to the exact test, not refuse.
    img = np.full((8, 8), 3e38, dtype=np.float32)
    img = torch.from_numpy(img)[None, None] if kind == "tensor" else img
    out = imresize(img, 0.5)
    assert out.shape[-2:] == (4, 4)


def test_imresize_keeps_working_on_ordinary_images():
    assert imresize(np.zeros((8, 8), np.uint8), 0.5).shape == (4, 4)
    assert imresize(torch.zeros(1, 1, 8, 8), scale=(2, 0.5)).shape == (1, 1, 16, 4)
    assert imresize(np.zeros((8, 8)), torch.tensor(2.0)).shape == (16, 16)
    assert imresize(np.zeros((8, 8)), torch.tensor([2.0, 0.5])).shape == (16, 4)


# ---------------------------------------------------------------------------- imresize: scales and sizes


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), -float("inf"), 0, -2, "2", True, 2j, [2, "a"],
                                   (2, 3, 4), (2, float("nan")), object(), torch.tensor([2.0, 3.0, 4.0])],
                         ids=["nan", "inf", "-inf", "zero", "negative", "text", "bool", "complex", "pair with text",
                              "three", "pair with nan", "object", "tensor of three"])
def test_imresize_refuses_bad_scales(scale):
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        imresize(np.zeros((8, 8)), scale)


@pytest.mark.parametrize("size", [(float("nan"), 4), (4.5, 4), (0, 4), (-4, 4), 4, ("8", "8"), (8,), (8, 8, 8)],
                         ids=["nan", "fraction", "zero", "negative", "one number", "text", "one", "three"])
def test_imresize_refuses_bad_output_sizes(size):
    with pytest.raises(ValueError, match="output_size must be two positive integers"):
        imresize(np.zeros((8, 8)), output_size=size)


# ---------------------------------------------------------------------------- PSNR and SSIM


def pair(value=None, where="sr", shape=(1, 1, 16, 16)):
    sr, hr = torch.full(shape, 0.25, dtype=torch.float64), torch.full(shape, 0.5, dtype=torch.float64)
    if value is not None:
        (sr if where == "sr" else hr)[0, 0, 3, 4] = value
    return sr, hr


METRICS = {"psnr": psnr, "ssim": ssim, "ssim_map": ssim_map}


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("value,where,phrase", [
    (float("nan"), "sr", "SR contains NaN or infinite values"),
    (float("inf"), "hr", "HR contains NaN or infinite values"),
    (-float("inf"), "sr", "SR contains NaN or infinite values"),
    (1.5, "sr", "outside [0, 1]; clamp"),
    (-0.2, "hr", "outside [0, 1]"),
    (1 + 1e-4, "sr", "outside [0, 1]"),
])
def test_metrics_refuse_nan_infinite_and_out_of_range_values(metric, value, where, phrase):
    with pytest.raises(ValueError) as refused:
        METRICS[metric](*pair(value, where))
    assert phrase in str(refused.value)


@pytest.mark.parametrize("metric", METRICS)
def test_metrics_refuse_images_on_the_8_bit_scale(metric):
    sr, hr = (torch.full((1, 1, 16, 16), v) for v in (100.0, 120.0))
    with pytest.raises(ValueError, match="must be divided by 255 first"):
        METRICS[metric](sr, hr)


@pytest.mark.parametrize("metric", METRICS)
def test_metrics_forgive_float_rounding(metric):
    sr, hr = pair(1 + 1e-9)
    hr[0, 0, 0, 0] = -1e-9
    assert torch.isfinite(METRICS[metric](sr, hr)).all()


@pytest.mark.parametrize("metric", ["psnr", "ssim"])
def test_metrics_want_tensors(metric):
    with pytest.raises(TypeError, match="expected tensors"):
        METRICS[metric](np.zeros((1, 1, 16, 16)), np.zeros((1, 1, 16, 16)))


def test_empty_images_are_refused():
    with pytest.raises(ValueError, match="the images are empty"):
        psnr(torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4))


def test_identical_images_have_an_infinite_psnr_per_image():
    sr, hr = pair()
    both = torch.cat([hr, sr])
    values = psnr(both, torch.cat([hr, hr]))
    assert math.isinf(values[0].item()) and values[0] > 0 and math.isfinite(values[1].item())
    assert math.isinf(sr_metrics(hr, hr, 2)[0].item())
    assert ssim(hr, hr).item() == pytest.approx(1.0)


def test_sr_metrics_refuses_a_nan_network_output():
    sr, hr = pair(float("nan"))
    with pytest.raises(ValueError, match="SR contains NaN"):
        sr_metrics(sr, hr, 2)
