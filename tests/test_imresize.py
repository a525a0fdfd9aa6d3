import csv

import numpy as np
import pytest
import torch

from conftest import require_data
from srlib.imresize import cubic, imresize, resize_matrix


def matlab_cases():
    folder = require_data("matlab_imresize")
    arrays = np.load(folder / "cases.npz")
    with open(folder / "cases.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return arrays, rows


def test_matches_matlab_outputs_to_1e10():
    arrays, rows = matlab_cases()
    assert len(rows) == 16
    for row in rows:
        x = arrays["input_" + row["input"]]
        expected = arrays["expected_" + row["case"]]
        size = tuple(int(v) for v in row["output_size"].split("x"))
        aa = row["antialiasing"] == "true"
        out = imresize(x, output_size=size, antialiasing=aa)
        assert out.shape == expected.shape, row["case"]
        assert np.abs(out - expected).max() < 1e-10, row["case"]
        # The batched torch path gives the same numbers.
        t = torch.from_numpy(x.copy())
        t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
        out_t = imresize(t, output_size=size, antialiasing=aa)[0]
        out_t = out_t[0] if x.ndim == 2 else out_t.permute(1, 2, 0)
        assert np.abs(out_t.numpy() - expected).max() < 1e-10, row["case"]


def test_kernel_is_keys_cubic_with_a_minus_half():
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    # Interpolating kernel: 1 at 0, 0 at the integers, -0.0625 at 1.5 for a = -0.5.
    assert np.allclose(cubic(x), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0])


def test_weights_rows_sum_to_one_and_mirror_at_the_border():
    m = resize_matrix(10, 5)
    assert np.allclose(m.sum(axis=1), 1.0)
    # Downscaling by 2 with anti-aliasing: taps reach beyond the image and fold back inside.
    assert m.shape == (5, 10) and (m[0, :3] != 0).all()


def test_constant_image_stays_constant_and_sizes_follow_ceil():
    x = np.full((7, 9), 0.3)
    for s in (0.5, 1 / 3, 2.0, 1.7):
        out = imresize(x, s)
        assert out.shape == (int(np.ceil(7 * s)), int(np.ceil(9 * s)))
        assert np.allclose(out, 0.3)


def test_scale_one_is_identity():
    x = np.random.default_rng(0).random((6, 5, 3))
    assert np.allclose(imresize(x, 1.0), x)


def test_uint8_in_uint8_out_rounded():
    x = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = imresize(x, 0.5)
    ref = np.clip(np.round(imresize(x.astype(np.float64), 0.5)), 0, 255)
    assert out.dtype == np.uint8 and np.array_equal(out, ref)


def test_batched_float32_matches_float64_and_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 20, 24, generator=g, dtype=torch.float64)
    out64 = imresize(x, 0.25)
    out32 = imresize(x.float(), 0.25)
    assert out64.shape == (3, 2, 5, 6) and out32.dtype == torch.float32
    assert torch.allclose(out32.double(), out64, atol=1e-5)
    single = imresize(x[1, 0].numpy(), 0.25)
    assert np.abs(single - out64[1, 0].numpy()).max() < 1e-12


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="exactly one"):
        imresize(np.zeros((4, 4)), 2, output_size=(8, 8))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="floating point"):
        imresize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 2)
    with pytest.raises(TypeError, match="dtype"):
        imresize(np.zeros((4, 4), dtype=np.int16), 2)
    with pytest.raises(ValueError, match="positive"):
        imresize(np.zeros((4, 4)), -2)
    with pytest.raises(ValueError, match="shape"):
        imresize(np.zeros((2, 4, 4, 3)), 2)
