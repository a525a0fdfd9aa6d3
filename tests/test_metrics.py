import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from conftest import require_data
from srlib.color import quantize, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from srlib.data import load_set, to_tensor
from srlib.degradations import bicubic_lr, upsample_bicubic
from srlib.metrics import crop_border, mod_crop, psnr, sr_metrics, ssim, ssim_map


def test_y_of_pure_colours_matches_bt601_studio_range():
    rgb = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    y = rgb_to_y(rgb.T.reshape(3, 5, 1), round_y=False).flatten() * 255
    assert torch.allclose(y, torch.tensor([16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], dtype=torch.float64))
    # MATLAB's uint8 convention rounds Y to an integer.
    assert torch.equal(rgb_to_y(rgb.T.reshape(3, 5, 1)).flatten() * 255, y.round())


def test_ycbcr_round_trip():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-12)


def test_quantize_rounds_to_8_bits_and_clips():
    x = torch.tensor([-0.1, 0.5 / 255, 1.4 / 255, 1.2])
    assert torch.equal(quantize(x) * 255, torch.tensor([0.0, 0.0, 1.0, 255.0]))


def test_psnr_by_hand():
    hr = torch.zeros(1, 1, 10, 10, dtype=torch.float64)
    sr = hr.clone()
    sr[..., 5, 5] = 10 / 255  # MSE = 100 / 100 = 1 on the 0..255 scale
    assert psnr(sr, hr).item() == pytest.approx(10 * np.log10(255**2))
    # The error sits at (5, 5); cropping 2 pixels keeps it on a 6x6 interior.
    assert psnr(sr, hr, border=2).item() == pytest.approx(10 * np.log10(255**2 / (100 / 36)))


def test_ssim_matches_scikit_image_on_the_interior():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (64, 72)).astype(np.float64)
    sr = np.clip(hr + rng.normal(0, 20, hr.shape), 0, 255)
    ours = ssim(torch.from_numpy(sr / 255)[None, None], torch.from_numpy(hr / 255)[None, None]).item()
    _, full_map = structural_similarity(sr, hr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=255, full=True)
    # scikit-image pads; its map on the 'valid' interior is exactly our map.
    assert ours == pytest.approx(full_map[5:-5, 5:-5].mean(), abs=1e-10)


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 20, 20, dtype=torch.float64)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))


def test_crops_and_errors():
    img = np.zeros((13, 10, 3), dtype=np.uint8)
    assert mod_crop(img, 4).shape == (12, 8, 3)
    assert mod_crop(torch.zeros(1, 3, 13, 10), 3).shape == (1, 3, 12, 9)
    assert crop_border(torch.zeros(1, 1, 10, 10), 2).shape == (1, 1, 6, 6)
    with pytest.raises(ValueError, match="smaller than the scale"):
        mod_crop(np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(TypeError, match="float images"):
        psnr(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="divided by 255"):
        sr_metrics(torch.zeros(1, 1, 16, 16), torch.full((1, 1, 16, 16), 200.0), 2)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


PUBLISHED_SET5_BICUBIC = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_bicubic_reproduces_published_baseline(scale):
    require_data("Set5")
    images = load_set("Set5")
    assert len(images) == 5
    psnrs, ssims = [], []
    for img in images.values():
        hr = to_tensor(mod_crop(img, scale), "rgb", dtype=torch.float64)
        up = upsample_bicubic(bicubic_lr(hr, scale), scale)
        p, s = sr_metrics(up, hr, scale)
        psnrs.append(p.item())
        ssims.append(s.item())
    want_psnr, want_ssim = PUBLISHED_SET5_BICUBIC[scale]
    print(f"Set5 x{scale}: PSNR {np.mean(psnrs):.4f} (published {want_psnr}), "
          f"SSIM {np.mean(ssims):.4f} (published {want_ssim})")
    assert abs(np.mean(psnrs) - want_psnr) <= 0.02
    assert abs(np.mean(ssims) - want_ssim) <= 0.002


def direct_ssim_map(sr, hr):
    """SSIM's definition written out: the whole 11x11 Gaussian window as one 2-D 'valid' filter."""
    from srlib.metrics import gaussian_window

    g = gaussian_window()
    window = torch.outer(g, g)[None, None]
    x, y = sr.flatten(0, 1)[:, None] * 255, hr.flatten(0, 1)[:, None] * 255

    def local_mean(t):
        return torch.nn.functional.conv2d(t, window)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x, var_y = local_mean(x * x) - mu_x**2, local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return out.reshape(*sr.shape[:2], *out.shape[-2:])


@pytest.mark.parametrize("shape", [(1, 1, 300, 40), (2, 3, 57, 83), (1, 1, 11, 11)],
                         ids=["many bands", "batch of colour images", "one position"])
def test_ssim_map_computed_by_bands_equals_the_whole_2d_filter(shape):
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(shape, generator=g, dtype=torch.float64)
    sr = (hr + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = ssim_map(sr, hr)
    assert ours.shape == (*shape[:2], shape[2] - 10, shape[3] - 10)
    assert (ours - direct_ssim_map(sr, hr)).abs().max() < 1e-12


def test_ssim_keeps_gradients():
    sr = torch.rand(1, 1, 30, 30, dtype=torch.float64, requires_grad=True)
    ssim(sr, torch.rand(1, 1, 30, 30, dtype=torch.float64)).sum().backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
