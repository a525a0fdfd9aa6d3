"""The papers' own evaluation code, where it differs from the book's protocol.

The book measures every model one way (:mod:`srlib.evaluate`): the LR image is what a PNG would
hold (rounded to 8 bits), and PSNR is taken on the rounded Y channel with ``scale`` pixels
cropped. The papers' test scripts differ in small ways that move a figure by hundredths of a
decibel, and a published figure is only reproduced by its own script:

``"matlab"`` -- SRCNN (``demo_SR.m``), FSRCNN (``demo_FSRCNN.m``) and VDSR: the Y channel of the
    uint8 image, downscaled and upscaled in floating point, **the LR image not rounded**; the
    output rounded to uint8; ``scale`` pixels shaved. (FSRCNN's x3 script also compares its
    output one pixel up and left of the ground truth, ``shave_x3``; srlib builds the authors' x3
    FSRCNN with that shift inside the network, see :mod:`srlib.authors`.)
``"lapsrn"`` -- LapSRN (``evaluate_LapSRN_dataset.m``, ``SR_LapSRN.m``): the LR image is made
    from the **RGB** image in floating point, not rounded; the network gets its **unrounded** Y;
    its output replaces Y in the bicubic upscaling of the LR image's YCbCr, which goes back to
    RGB and is rounded to uint8; PSNR is taken on the **unrounded** Y of both images.
``"edsr"`` -- EDSR, MDSR, DRN (EDSR-PyTorch's ``utility.calc_psnr``): the LR image read from the
    benchmark's PNG files (rounded), the network on RGB, PSNR on the **unrounded** Y of the
    rounded output.

:func:`evaluate_protocol` applies one of them and returns the same :class:`EvalResult` as
:func:`srlib.evaluate.evaluate` (``"book"`` is that function itself).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .color import quantize, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from .data import to_tensor
from .evaluate import EvalResult, evaluate, model_convention, super_resolve
from .imresize import imresize
from .metrics import mod_crop, psnr, ssim

__all__ = ["Protocol", "PROTOCOLS", "evaluate_protocol"]


@dataclass(frozen=True)
class Protocol:
    """How one paper's script measures: whether the LR image is rounded, whether Y is, and in
    which colour space the LR image is made (``"y"``: from the Y channel; ``"rgb"``: from RGB, the
    network then seeing its Y, LapSRN's way)."""

    name: str
    round_lr: bool
    round_y: bool
    lr_from: str  # "y" or "rgb"
    description: str


PROTOCOLS = {
    "book": Protocol("book", round_lr=True, round_y=True, lr_from="y",
                     description="the book's: LR rounded to 8 bits, rounded Y, border = scale"),
    "matlab": Protocol("matlab", round_lr=False, round_y=True, lr_from="y",
                       description="SRCNN/FSRCNN/VDSR test code: LR not rounded, rounded Y, border = scale"),
    "lapsrn": Protocol("lapsrn", round_lr=False, round_y=False, lr_from="rgb",
                       description="LapSRN test code: LR made in RGB, not rounded; unrounded Y; border = scale"),
    "edsr": Protocol("edsr", round_lr=True, round_y=False, lr_from="y",
                     description="EDSR-PyTorch test code: LR rounded (PNG), unrounded Y, border = scale"),
}


def _measure(sr: torch.Tensor, hr: torch.Tensor, scale: int, round_y: bool) -> tuple[float, float]:
    """PSNR and SSIM of the rounded output against the HR image, on Y (rounded or not)."""
    sr, hr = quantize(sr), quantize(hr)
    if sr.shape[1] == 3:
        sr, hr = rgb_to_y(sr, round_y), rgb_to_y(hr, round_y)
    return psnr(sr, hr, border=scale).item(), ssim(sr, hr, border=scale).item()


def _images_y(model, img: np.ndarray, scale: int, protocol: Protocol):
    """HR Y, bicubic and model output (on Y or RGB, as the model works) with the LR image made on Y."""
    upsampled, channels = model_convention(model)
    hr = to_tensor(mod_crop(img, scale), channels, dtype=torch.float64)
    lr = imresize(hr, 1 / scale)
    if protocol.round_lr:
        lr = quantize(lr)
    return hr, imresize(lr, scale), super_resolve(model, lr, scale, upsampled=upsampled)


def _images_rgb(model, img: np.ndarray, scale: int):
    """LapSRN's path: RGB HR, and the bicubic and model outputs as RGB images."""
    upsampled, _ = model_convention(model)
    hr = to_tensor(mod_crop(img, scale), "rgb", dtype=torch.float64)
    lr = rgb_to_ycbcr(imresize(hr, 1 / scale))  # LR made in RGB, not rounded, then its YCbCr
    bicubic = imresize(lr, scale)
    y = super_resolve(model, lr[:, :1], scale, upsampled=upsampled)
    sr = torch.cat([y, bicubic[:, 1:]], dim=1)
    return hr, ycbcr_to_rgb(bicubic), ycbcr_to_rgb(sr)


def evaluate_protocol(model, images: dict[str, np.ndarray], scale: int, protocol: str = "book", *,
                      label: str | None = None) -> EvalResult:
    """PSNR/SSIM of ``model`` (and bicubic) on ``images`` under one of :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "book":
        return evaluate(model, images, scale, label=label)
    spec = PROTOCOLS[protocol]
    result = EvalResult(label=label or getattr(model, "srlib_name", "model"), scale=scale)
    for name, img in images.items():
        grey = img.ndim == 2
        if spec.lr_from == "rgb" and not grey:
            hr, bicubic, sr = _images_rgb(model, img, scale)
        else:
            hr, bicubic, sr = _images_y(model, img, scale, spec)
        b_psnr, b_ssim = _measure(bicubic, hr, scale, spec.round_y)
        m_psnr, m_ssim = _measure(sr, hr, scale, spec.round_y)
        result.names.append(name)
        result.bicubic_psnr.append(b_psnr)
        result.bicubic_ssim.append(b_ssim)
        result.psnr.append(m_psnr)
        result.ssim.append(m_ssim)
    return result
