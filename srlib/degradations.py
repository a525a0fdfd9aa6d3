"""Degradation models: how a low-resolution (LR) image is made from a high-resolution one.

The nine papers of this book train and test on **BI**, bicubic downscaling (MATLAB's
``imresize``). Later work, DRN among it, also discusses harder degradations, and the book
uses them to show what a model trained on one degradation does on another:

* ``"bicubic"`` (BI): ``LR = imresize(HR, 1/s)``;
* ``"blur"`` (BD): Gaussian blur (7x7, sigma 1.6) then keep every ``s``-th pixel, the
  setting of Zhang et al. (SRMD, RDN);
* ``"noise"`` (DN): bicubic downscaling then additive Gaussian noise (sigma 30 on 0..255
  by default).

All functions take and return float tensors ``(N, C, H, W)`` in [0, 1]. The LR image is
quantised to 8 bits, as if it had been saved to a PNG file (the protocol's step 3).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .color import check_unit_range, quantize
from .imresize import imresize
from .metrics import gaussian_window

__all__ = ["DEGRADATIONS", "degrade", "bicubic_lr", "blur_lr", "noisy_lr", "upsample_bicubic", "network_input"]

DEGRADATIONS = ("bicubic", "blur", "noise")


def _check(hr: torch.Tensor, scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}.")
    if hr.dim() != 4 or not hr.is_floating_point():
        raise ValueError(f"expected a float tensor (N, C, H, W) in [0, 1], got {tuple(hr.shape)} {hr.dtype}.")
    check_unit_range(hr)
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} does not divide by the scale {scale}: mod-crop it first "
                         "(srlib.metrics.mod_crop).")


def bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """BI: MATLAB bicubic downscaling by ``scale`` (with anti-aliasing), quantised."""
    _check(hr, scale)
    return quantize(imresize(hr, 1 / scale))


def blur_lr(hr: torch.Tensor, scale: int, sigma: float = 1.6, size: int = 7) -> torch.Tensor:
    """BD: Gaussian blur (``size`` x ``size``, ``sigma``) with mirrored borders, then subsample."""
    _check(hr, scale)
    c = hr.shape[1]
    g = gaussian_window(size, sigma).to(hr.device, hr.dtype)
    pad = size // 2
    x = F.pad(hr, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    # Keep the pixel nearest the centre of each s x s cell.
    offset = (scale - 1) // 2
    return quantize(x[..., offset::scale, offset::scale])


def noisy_lr(hr: torch.Tensor, scale: int, sigma: float = 30.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """DN: bicubic downscaling, then Gaussian noise of standard deviation ``sigma`` (0..255 units)."""
    _check(hr, scale)
    lr = imresize(hr, 1 / scale)
    noise = torch.randn(lr.shape, generator=generator, dtype=lr.dtype, device="cpu").to(lr.device)
    return quantize(lr + noise * sigma / 255)


def degrade(hr: torch.Tensor, scale: int, kind: str = "bicubic", **kwargs) -> torch.Tensor:
    """Make the LR image with one of :data:`DEGRADATIONS`."""
    makers = {"bicubic": bicubic_lr, "blur": blur_lr, "noise": noisy_lr}
    if kind not in makers:
        raise ValueError(f"unknown degradation {kind!r}; choose one of {', '.join(DEGRADATIONS)}.")
    return makers[kind](hr, scale, **kwargs)


def upsample_bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB bicubic upscaling: the baseline, and the input of pre-upsampling networks."""
    return imresize(lr, scale)


def network_input(lr: torch.Tensor, scale: int, upsampled: bool) -> torch.Tensor:
    """What a network takes: the LR image itself, or (SRCNN, VDSR, ...) its bicubic upscaling."""
    return upsample_bicubic(lr, scale) if upsampled else lr
