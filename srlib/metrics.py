"""PSNR and SSIM under the super-resolution evaluation protocol.

The protocol every paper in this book reports (and that :func:`sr_metrics` applies):

1. the SR output is quantised to 8 bits (:func:`srlib.color.quantize`);
2. RGB images are converted to the Y channel (:func:`srlib.color.rgb_to_y`);
   single-channel images are taken as Y;
3. ``scale`` pixels are cropped from every border (:func:`crop_border`);
4. PSNR = 10 log10(255^2 / MSE) and SSIM (Wang et al. 2004: 11x11 Gaussian window,
   sigma 1.5, 'valid' filtering) per image, averaged over a set by the caller.

All functions take batched tensors ``(N, C, H, W)`` in [0, 1] and compute in float64; values
outside [0, 1] by more than float rounding, NaN and infinities are refused.
"""
from __future__ import annotations

import numpy as np
import torch

from .color import check_unit_range, quantize, rgb_to_y
from .device import one_thread

__all__ = ["mod_crop", "crop_border", "psnr", "ssim", "ssim_map", "sr_metrics", "to_y", "gaussian_window"]


def mod_crop(img, scale: int):
    """Cut the bottom/right so height and width divide by ``scale`` (numpy HxW[xC] or tensor (..., H, W))."""
    if isinstance(img, torch.Tensor):
        h, w = img.shape[-2:]
        if h < scale or w < scale:
            raise ValueError(f"image of size {h}x{w} is smaller than the scale {scale}.")
        return img[..., : h - h % scale, : w - w % scale]
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"image of size {h}x{w} is smaller than the scale {scale}.")
    return img[: h - h % scale, : w - w % scale]


def crop_border(img: torch.Tensor, border: int) -> torch.Tensor:
    """Remove ``border`` pixels from each side of ``(..., H, W)``."""
    if border == 0:
        return img
    h, w = img.shape[-2:]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"cannot crop a border of {border} from an image of size {h}x{w}.")
    return img[..., border:-border, border:-border]


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    if not (isinstance(sr, torch.Tensor) and isinstance(hr, torch.Tensor)):
        raise TypeError(f"expected tensors (N, C, H, W) in [0, 1], got {type(sr).__name__} and {type(hr).__name__}; "
                        "convert 8-bit images with srlib.data.to_tensor (it divides by 255).")
    if not (sr.is_floating_point() and hr.is_floating_point()):
        raise TypeError(f"expected float images in [0, 1], got {sr.dtype} and {hr.dtype}; "
                        "convert 8-bit images with srlib.data.to_tensor (it divides by 255).")
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}.")
    if sr.dim() != 4:
        raise ValueError(f"expected batched images (N, C, H, W), got shape {tuple(sr.shape)}.")
    if sr.numel() == 0:
        raise ValueError(f"the images are empty: shape {tuple(sr.shape)}.")


def psnr(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Per-image PSNR in dB of ``(N, C, H, W)`` images in [0, 1]; returns shape ``(N,)``.

    Identical images have no error, and their PSNR is ``inf``; a mean over a set must leave them
    out or say so. NaN, infinite or out-of-range values (e.g. 0..255) are a ``ValueError``.
    """
    _check_pair(sr, hr)
    check_unit_range(sr, "SR")
    check_unit_range(hr, "HR")
    return _psnr(sr.double(), hr.double(), border)


def _psnr(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """PSNR of float64 images already checked."""
    diff = crop_border(sr - hr, border) * 255
    mse = diff.pow_(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(255.0**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``size`` taps (float64): SSIM's window, BD's blur."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


_SSIM_TAPS = gaussian_window().tolist()  # Wang et al.'s window: 11 taps, sigma 1.5


def _gaussian_valid(stats: torch.Tensor) -> torch.Tensor:
    """Filter float64 ``(..., H, W)`` with SSIM's 11x11 Gaussian at the 'valid' positions only.

    The 2-D Gaussian is separable: one 1-D filter along the rows, then one along the columns,
    22 multiply-adds per pixel instead of 121. Each 1-D filter is a sum of the 11 shifted
    slices of its input, weighted by the taps.
    """
    g = _SSIM_TAPS
    w = stats.shape[-1] - len(g) + 1
    rows = stats[..., 0:w] * g[0]
    for k in range(1, len(g)):
        rows.add_(stats[..., k: k + w], alpha=g[k])
    h = stats.shape[-2] - len(g) + 1
    out = rows[..., 0:h, :] * g[0]
    for k in range(1, len(g)):
        out.add_(rows[..., k: k + h, :], alpha=g[k])
    return out


def ssim_map(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> torch.Tensor:
    """The local SSIM of ``(N, C, H, W)`` images in [0, 1]: shape ``(N, C, H - 10, W - 10)``.

    Gaussian window 11x11, sigma 1.5, 'valid' filtering (no padding), constants
    C1 = (0.01 * 255)^2 and C2 = (0.03 * 255)^2, as in Wang et al. (2004). NaN, infinite or
    out-of-range values (e.g. 0..255) are a ``ValueError``.
    """
    _check_pair(sr, hr)
    check_unit_range(sr, "SR")
    check_unit_range(hr, "HR")
    return _ssim_map(sr.double(), hr.double(), border)


def _ssim_map(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """SSIM map of float64 images already checked."""
    sr, hr = crop_border(sr, border), crop_border(hr, border)
    n, c, h, w = sr.shape
    if h < 11 or w < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 after cropping, got {h}x{w}.")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    # Band by band, about 32,000 pixels of each statistic at a time: the filter's 22 passes
    # then run over data that stays in the processor's cache (three times faster than whole
    # images on a CPU), and each band's result is exactly what the whole image would give.
    band = max(8, 32768 // (n * c * w))
    bands = []
    with one_thread():  # dozens of short passes per band: see srlib.device.one_thread
        for top in range(0, h - 10, band):
            x, y = sr[..., top: top + band + 10, :] * 255, hr[..., top: top + band + 10, :] * 255
            # The five local statistics are filtered in one batch.
            mu_x, mu_y, xx, yy, xy = _gaussian_valid(torch.stack([x, y, x * x, y * y, x * y]))
            mu_xy, mu_xx, mu_yy = mu_x * mu_y, mu_x.square(), mu_y.square()
            numerator = (2 * mu_xy + c1) * (2 * (xy - mu_xy) + c2)
            denominator = (mu_xx + mu_yy + c1) * ((xx - mu_xx) + (yy - mu_yy) + c2)
            bands.append(numerator / denominator)
    return torch.cat(bands, dim=-2)


def ssim(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Per-image SSIM (the mean of :func:`ssim_map` over positions and channels); shape ``(N,)``."""
    return ssim_map(sr, hr, border).mean(dim=(1, 2, 3))


def to_y(img: torch.Tensor, round_y: bool = True) -> torch.Tensor:
    """Y channel of quantised RGB ``(N, 3, H, W)``; single-channel input is returned as is."""
    if img.shape[-3] == 1:
        return img
    return rgb_to_y(img, round_y=round_y)


def sr_metrics(sr: torch.Tensor, hr: torch.Tensor, scale: int, y_channel: bool = True,
               round_y: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """PSNR and SSIM per image, following the whole protocol (quantise, Y, crop ``scale``).

    ``sr`` may be unclamped network output; ``hr`` should be the (mod-cropped) ground truth.
    Returns two tensors of shape ``(N,)``.
    """
    _check_pair(sr, hr)
    check_unit_range(hr)
    sr, hr = quantize_measured(sr), quantize(hr.double())
    if y_channel:
        sr, hr = to_y(sr, round_y), to_y(hr, round_y)
    return measure(sr, hr, scale)


def quantize_measured(sr: torch.Tensor) -> torch.Tensor:
    """``sr`` (network output, unclamped) quantised to 8 bits in float64, as it is measured.

    Quantising clips infinities into [0, 1]; NaN is what remains to refuse, and one sum finds it.
    """
    out = quantize(sr.double())
    if not torch.isfinite(out.sum()):
        check_unit_range(out, "SR")
    return out


def measure(sr: torch.Tensor, hr: torch.Tensor, border: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PSNR and SSIM per image of float64 images already quantised, on the channels measured.

    Nothing is checked here: the callers (:func:`sr_metrics`, :func:`srlib.evaluate.evaluate`)
    check their input once, where it enters.
    """
    return _psnr(sr, hr, border), _ssim_map(sr, hr, border).mean(dim=(1, 2, 3))


def as_numpy_uint8(img: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` or ``(1, C, H, W)`` float tensor in [0, 1] to an ``(H, W[, C])`` uint8 array."""
    t = img.detach()
    if t.dim() == 4:
        t = t[0]
    arr = quantize(t.double()).mul(255).round().byte().cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
