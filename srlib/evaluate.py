"""Evaluate a model (or plain bicubic) on a list of images under the standard protocol.

For every HR image: mod-crop to the scale, make the LR image with the chosen degradation
(MATLAB bicubic by default, quantised), run the network on its input (the LR image, or its
bicubic upscaling for pre-upsampling networks), quantise the output, and measure PSNR and
SSIM on the Y channel with ``scale`` pixels cropped from the border
(:func:`srlib.metrics.sr_metrics`). The bicubic upscaling of the same LR image is measured
alongside, so every table carries its own baseline.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from . import ledger
from .color import quantize
from .data import to_tensor
from .degradations import degrade, network_input, upsample_bicubic
from .device import one_thread
from .metrics import measure, mod_crop, quantize_measured, to_y
from .table import table

__all__ = ["model_convention", "super_resolve", "evaluate", "EvalResult", "protocol_images", "upscale_image"]


def model_convention(model) -> tuple[bool, str]:
    """(takes a pre-upsampled input?, ``"y"`` or ``"rgb"``) for a model of :mod:`srlib.models`.

    Every srlib model declares ``input_kind`` and ``in_channels`` itself, so a variant such as
    ESPCN's HR-space twin is handled like any other model.
    """
    if not (hasattr(model, "input_kind") and hasattr(model, "in_channels")):
        raise ValueError("this model was not built with srlib.models.build, so its input convention is unknown; "
                         "pass upsampled=... and channels=... explicitly.")
    return model.input_kind == "upsampled", "y" if model.in_channels == 1 else "rgb"


@torch.no_grad()
def super_resolve(model, lr: torch.Tensor, scale: int, upsampled: bool | None = None,
                  chop: bool | int = False, self_ensemble: bool = False) -> torch.Tensor:
    """Run ``model`` on an LR batch ``(N, C, h, w)`` in [0, 1] and return the SR batch (unclamped).

    ``chop`` runs the network tile by tile (``True`` or a tile size in LR pixels) for images
    too large for memory; ``self_ensemble`` averages the 8 flips/rotations ("+" models).
    """
    if upsampled is None:
        upsampled, _ = model_convention(model)
    return _forward(model, network_input(lr.double(), scale, upsampled), scale, upsampled, chop, self_ensemble)


@torch.no_grad()
def _forward(model, x: torch.Tensor, scale: int, upsampled: bool, chop: bool | int = False,
             self_ensemble: bool = False) -> torch.Tensor:
    """:func:`super_resolve` on the network's input ``x`` itself (float64, made by :func:`network_input`)."""
    from .inference import chop_forward
    from .inference import self_ensemble as ensemble

    device = next(model.parameters()).device
    x = x.float().to(device)
    was_training = model.training
    model.eval()
    try:
        def forward(t):
            if chop:
                kwargs = {} if chop is True else {"tile": int(chop)}
                return chop_forward(model, t, 1 if upsampled else scale, **kwargs)
            return model(t)

        out = ensemble(forward, x) if self_ensemble else forward(x)
    finally:
        model.train(was_training)
    return out.double().cpu()


def _mean_psnr(values: list[float], what: str) -> float:
    """Mean PSNR over a set. An image reconstructed exactly has PSNR = inf, which would make the mean
    inf and hide every other image: it is left out of the mean, and a warning says so."""
    finite = [v for v in values if v != math.inf]
    if len(finite) < len(values):
        warnings.warn(f"{len(values) - len(finite)} of {len(values)} images are reconstructed exactly "
                      f"({what} PSNR = inf) and are left out of the mean", stacklevel=3)
    return float(np.mean(finite)) if finite else math.inf


@dataclass
class EvalResult:
    """Per-image and mean PSNR/SSIM of a model and of bicubic upscaling."""

    label: str
    scale: int
    names: list[str] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    bicubic_psnr: list[float] = field(default_factory=list)
    bicubic_ssim: list[float] = field(default_factory=list)

    @property
    def mean_psnr(self) -> float:
        return _mean_psnr(self.psnr, self.label)

    @property
    def mean_ssim(self) -> float:
        return float(np.mean(self.ssim))

    @property
    def mean_bicubic_psnr(self) -> float:
        return _mean_psnr(self.bicubic_psnr, "bicubic")

    @property
    def mean_bicubic_ssim(self) -> float:
        return float(np.mean(self.bicubic_ssim))

    @property
    def gain(self) -> float:
        """Mean PSNR gain over bicubic, in dB."""
        return self.mean_psnr - self.mean_bicubic_psnr

    def rows(self) -> list[tuple]:
        body = list(zip(self.names, self.bicubic_psnr, self.bicubic_ssim, self.psnr, self.ssim))
        return body + [("mean", self.mean_bicubic_psnr, self.mean_bicubic_ssim, self.mean_psnr, self.mean_ssim)]

    def _table(self, **options) -> str:
        header = ["image", "bicubic PSNR", "bicubic SSIM", f"{self.label} PSNR", f"{self.label} SSIM"]
        return table(header, self.rows(), ["", ".2f", ".4f", ".2f", ".4f"],
                     title=f"x{self.scale}, Y channel, border {self.scale}", **options)

    def __str__(self) -> str:
        return self._table()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self._table(html=True, bold_rows=[len(self.names)])  # the mean


def evaluate(model, images: dict[str, np.ndarray], scale: int, *, label: str | None = None,
             degradation: str = "bicubic", upsampled: bool | None = None, channels: str | None = None,
             chop: bool | int = False, self_ensemble: bool = False, progress: bool = False) -> EvalResult:
    """PSNR/SSIM of ``model`` and of bicubic on ``images`` (uint8 HR images) at ``scale``.

    ``model`` may be ``None`` or ``"bicubic"`` to measure bicubic upscaling alone (on the Y
    channel unless ``channels="rgb"``: the same figures as the bicubic column of a Y model's
    table). A model built by :mod:`srlib.models` knows whether it wants Y or RGB and an LR or
    pre-upsampled input; for other modules pass ``upsampled`` and ``channels``.

    Grayscale images are their own Y channel, as in the papers' MATLAB code; converting them
    to RGB first would squeeze them into the studio range 16-235 and raise PSNR by 1.3 dB. An RGB
    model gets the gray image in all three channels, and the mean of its three output channels is
    measured against it: the same HR and bicubic images as for a Y model, so one bicubic figure
    serves both.
    """
    bicubic_only = model is None or (isinstance(model, str) and model == "bicubic")
    if isinstance(model, str) and not bicubic_only:
        raise ValueError(f"model must be an nn.Module, None or 'bicubic', got {model!r}.")
    if not bicubic_only and (upsampled is None or channels is None):
        conv_up, conv_ch = model_convention(model)
        upsampled = conv_up if upsampled is None else upsampled
        channels = conv_ch if channels is None else channels
    channels = channels or "y"  # the protocol measures Y; a grayscale image is its own Y (as in MATLAB)
    if not isinstance(images, dict) or not images:
        raise ValueError("images must be a non-empty dict name -> uint8 image (see srlib.data.load_set).")
    result = EvalResult(label=label or ("bicubic" if bicubic_only else getattr(model, "srlib_name", "model")),
                        scale=scale)
    items = images.items()
    if progress:
        from .progress import progress_bar
        items = progress_bar(iterable=items, desc=f"evaluate x{scale}", unit="image", leave=False)
    with ledger.measuring(None if bicubic_only else model) as counted:  # SRLIB_COST_LEDGER
        for name, img in items:
            hr, bicubic, sr = _protocol(None if bicubic_only else model, img, scale, degradation, upsampled,
                                        channels, chop, self_ensemble)
            # What sr_metrics does, with each step done once per image: the HR image comes from 8-bit
            # pixels (already on the 8-bit grid and in range) and is converted to Y once for both
            # columns; bicubic output is finite by construction; only the network's output is checked.
            with one_thread():
                hr = to_y(hr)
                b_psnr, b_ssim = measure(to_y(quantize(bicubic)), hr, scale)
                m_psnr, m_ssim = (b_psnr, b_ssim) if bicubic_only else measure(to_y(quantize_measured(sr)), hr, scale)
            result.names.append(name)
            result.bicubic_psnr.append(b_psnr.item())
            result.bicubic_ssim.append(b_ssim.item())
            result.psnr.append(m_psnr.item())
            result.ssim.append(m_ssim.item())
    if ledger.active() and counted.outermost and not bicubic_only:
        ledger.record(kind="evaluate", model=result.label, images=len(images), macs=counted.macs)
    return result


def _protocol(model, img: np.ndarray, scale: int, degradation: str, upsampled: bool | None, channels: str,
              chop: bool | int = False, self_ensemble: bool = False):
    """HR (mod-cropped), bicubic and model output (None without a model) of one image, as measured."""
    gray_for_rgb = img.ndim == 2 and channels == "rgb"  # measured as its own Y (see evaluate)
    with one_thread():
        hr = to_tensor(mod_crop(img, scale), "y" if gray_for_rgb else channels, dtype=torch.float64)
        lr = degrade(hr, scale, degradation)
        bicubic = upsample_bicubic(lr, scale)  # the baseline, and a pre-upsampling network's input: made once
    if model is None:
        return hr, bicubic, None
    if upsampled is None:
        upsampled, _ = model_convention(model)
    net_input = bicubic if upsampled else lr
    sr = _forward(model, net_input.repeat(1, 3, 1, 1) if gray_for_rgb else net_input, scale, upsampled, chop,
                  self_ensemble)
    return hr, bicubic, sr.mean(dim=1, keepdim=True) if gray_for_rgb else sr


def protocol_images(model, img: np.ndarray, scale: int, *, label: str | None = None, degradation: str = "bicubic",
                    upsampled: bool | None = None, channels: str | None = None) -> dict[str, torch.Tensor]:
    """The images :func:`evaluate` measures for one HR photograph, quantised to 8 bits as measured.

    Returns ``{"HR": ..., "bicubic": ..., label: ...}`` (label defaults to the model's name),
    each ``(1, C, H, W)`` on the model's channels: the Y channel for a Y model. Shown with
    :func:`srlib.plots.compare` (``scale=scale``), their PSNR is exactly the one in the tables.
    """
    conv_up, conv_ch = model_convention(model)
    upsampled = conv_up if upsampled is None else upsampled
    hr, bicubic, sr = _protocol(model, img, scale, degradation, upsampled, channels or conv_ch)
    label = label or getattr(model, "srlib_name", "model")
    return {"HR": hr, "bicubic": quantize(bicubic), label: quantize(sr)}


def upscale_image(model, img: np.ndarray, *, chop: bool | int = False, self_ensemble: bool = False) -> np.ndarray:
    """Super-resolve a real uint8 image (no degradation: the image itself is the LR input).

    Y-channel models upscale the luminance; the colour channels (Cb, Cr) are upscaled with
    MATLAB bicubic, the usual practice of the papers' demos. Returns a uint8 image.
    """
    from .color import rgb_to_ycbcr, ycbcr_to_rgb
    from .metrics import as_numpy_uint8

    scale = int(model.scale)
    upsampled, channels = model_convention(model)
    rgb = to_tensor(img, "rgb", dtype=torch.float64) if img.ndim == 3 else None
    if channels == "y" and rgb is not None:
        ycbcr = rgb_to_ycbcr(rgb)
        y = super_resolve(model, ycbcr[:, :1], scale, upsampled, chop, self_ensemble)
        chroma = upsample_bicubic(ycbcr[:, 1:], scale)
        out = ycbcr_to_rgb(torch.cat([y, chroma], dim=1))
    elif channels == "y":
        out = super_resolve(model, to_tensor(img, "y", dtype=torch.float64), scale, upsampled, chop, self_ensemble)
    else:
        out = super_resolve(model, to_tensor(img, "rgb", dtype=torch.float64), scale, upsampled, chop, self_ensemble)
        if img.ndim == 2:
            out = out.mean(dim=1, keepdim=True)  # a grayscale photo stays grayscale
    return as_numpy_uint8(out)
