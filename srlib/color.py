"""Colour conversion and quantisation, following MATLAB's conventions.

Super-resolution papers report PSNR/SSIM on the luminance channel Y of YCbCr (ITU-R
BT.601, "studio range" 16..235), computed like MATLAB's ``rgb2ycbcr``:

    Y = 16 + (65.481 R + 128.553 G + 24.966 B)        (R, G, B in [0, 1])

MATLAB returns Y as uint8 when its input is uint8, i.e. *rounded to an integer*. The
published bicubic baselines (Set5 33.66 / 30.39 / 28.42 dB) are reproduced with that
rounding, so ``rgb_to_y`` rounds by default (``round_y=True``); pass ``round_y=False`` for
the unrounded variant some Python code bases use (it differs by about 0.01 dB).

Tensors here are float in [0, 1] with channels in dimension -3: ``(..., 3, H, W)``.
"""
from __future__ import annotations

import math

import torch

__all__ = ["rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb", "quantize", "check_unit_range"]

# BT.601 studio-range coefficients as MATLAB writes them, for R, G, B in [0, 1] -> 0..255.
_YCBCR_FROM_RGB = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=torch.float64,
)
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)


# How far outside [0, 1] float rounding may push a value (colour conversions, resizing) before
# it is taken for a mistake.
RANGE_TOLERANCE = 1e-6


def check_unit_range(img: torch.Tensor, what: str = "HR") -> None:
    """Refuse images that are not on the [0, 1] scale every function of srlib expects: NaN and
    infinities (a diverged network), the 0..255 scale, and values outside [0, 1] by more than
    float rounding."""
    # One pass gives both bounds; NaN propagates into them and an infinity is a bound.
    low, high = (v.item() for v in torch.aminmax(img))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{what} contains NaN or infinite values; PSNR and SSIM are undefined "
                         "(a diverged network gives NaN: check the model's output).")
    if high > 2:  # far beyond rounding: the 8-bit scale
        raise ValueError(f"{what} values span [{low:.3g}, {high:.3g}]: images on the 0..255 scale must be "
                         "divided by 255 first (expected [0, 1]).")
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(f"{what} values span [{low:.3g}, {high:.3g}], outside [0, 1]; clamp network output "
                         "with srlib.color.quantize (as sr_metrics does) before measuring it.")


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid and clip, as saving to PNG would; stays float in [0, 1]."""
    out = img.clamp(0, 1)  # a new tensor: the steps below can work in place, on it alone
    if not out.is_floating_point():  # an integer tensor becomes float on division, so not in place
        return out.mul(255).round().div(255)
    return out.mul_(255).round_().div_(255)


def _check_rgb(img: torch.Tensor) -> None:
    if img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(f"expected RGB with 3 channels in dimension -3, got shape {tuple(img.shape)}.")


def rgb_to_ycbcr(img: torch.Tensor, round_y: bool = False) -> torch.Tensor:
    """RGB ``(..., 3, H, W)`` in [0, 1] to YCbCr ``(..., 3, H, W)`` scaled to [0, 1] (value / 255)."""
    _check_rgb(img)
    m = _YCBCR_FROM_RGB.to(img.device, img.dtype)
    out = torch.einsum("ij,...jhw->...ihw", m, img) + _YCBCR_OFFSET.to(img.device, img.dtype)[:, None, None]
    if round_y:
        out = out.round()
    return out / 255


def ycbcr_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (no clipping)."""
    _check_rgb(img)
    m = torch.linalg.inv(_YCBCR_FROM_RGB).to(img.device, img.dtype)
    shifted = img * 255 - _YCBCR_OFFSET.to(img.device, img.dtype)[:, None, None]
    return torch.einsum("ij,...jhw->...ihw", m, shifted)


def rgb_to_y(img: torch.Tensor, round_y: bool = True) -> torch.Tensor:
    """Luminance Y ``(..., 1, H, W)`` in [0, 1] (value / 255) from RGB ``(..., 3, H, W)`` in [0, 1].

    With ``round_y=True`` (default) Y is rounded to an integer 0..255 first, as MATLAB's
    ``rgb2ycbcr`` does for uint8 images; the input should already be quantised
    (see :func:`quantize`) for that to mean what MATLAB means.
    """
    _check_rgb(img)
    coeffs = _YCBCR_FROM_RGB[0].to(img.device, img.dtype)
    y = 16 + torch.einsum("j,...jhw->...hw", coeffs, img).unsqueeze(-3)
    if round_y:
        y = y.round()
    return y / 255
