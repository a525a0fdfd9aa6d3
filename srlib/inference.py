"""Inference helpers: tiled inference for large images, and self-ensemble.

Tiling cuts the input into ``tile`` x ``tile`` pieces, runs each piece *with a margin* of
surrounding pixels, and keeps only the centre of each result. A convolutional network's
output pixel depends only on input pixels within its receptive field, so when the margin is
at least the receptive-field radius, the kept centres are exactly what the whole image would
have given (up to float rounding): tiling changes memory use, not results. The radius is
computed from the network's layers (:func:`srlib.profile.receptive_radius`). Two levels use it:

* :func:`chop_forward` runs the network itself on a tensor, tile by tile;
* :func:`upscale_tiled` runs the whole upscaling of a photograph
  (:func:`srlib.evaluate.upscale_image`, colour conversion and bicubic included) on pieces of
  the low-resolution image and pastes them into a preallocated uint8 result, so that memory is
  that of one tile plus the result. Its margin (:func:`tile_margin`) adds the two pixels the
  bicubic kernel reaches.

Two caveats: call ``model.eval()`` first (batch normalisation in training mode uses statistics
of the whole input, so it is not local), and networks with global operations (DRN's channel
attention pools over the whole image) have no finite receptive field: for them tiling with a
margin of :data:`GLOBAL_MARGIN` pixels is an approximation, and a warning says so.

``self_ensemble`` is the geometric self-ensemble of EDSR+ (Lim et al. 2017, Sec. 4.3,
after Timofte et al. 2016): run the model on the 8 flips/rotations of the input, undo each
transformation on the output, and average.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from .data import dihedral
from .profile import receptive_radius

__all__ = ["chop_forward", "upscale_tiled", "tile_margin", "self_ensemble", "output_factor"]

BICUBIC_REACH = 3  # LR pixels the bicubic kernel (4 taps, MATLAB's placement) can reach, rounded up
GLOBAL_MARGIN = 32  # for networks with a global operation, whose receptive field is the whole image


def output_factor(model: nn.Module, scale: int | None = None) -> int:
    """How many output pixels per input pixel: 1 for upsampled-input models, else the scale."""
    if getattr(model, "input_kind", "lr") == "upsampled":
        return 1
    return int(scale if scale is not None else model.scale)


def _radius(model: nn.Module, channels: int | None = None) -> float | None:
    """The receptive-field radius in network-input pixels, or None (with a warning) if it is global."""
    radius = receptive_radius(model) if channels is None else receptive_radius(model, channels=channels)
    if math.isinf(radius):
        warnings.warn(f"{type(model).__name__} has a global operation (e.g. channel attention); tiles with a "
                      f"margin of {GLOBAL_MARGIN} pixels only approximate the whole image", stacklevel=3)
        return None
    return radius


def tile_margin(model: nn.Module) -> int:
    """How many LR pixels of context a tile of :func:`upscale_tiled` needs for its centre to come out
    as in the whole image."""
    from .evaluate import model_convention

    radius = _radius(model)
    if radius is None:
        return GLOBAL_MARGIN
    upsampled, _ = model_convention(model)
    if upsampled:  # the network sees the bicubic-upsampled image: its radius is in HR pixels
        return math.ceil(radius / int(model.scale)) + BICUBIC_REACH
    return max(math.ceil(radius), BICUBIC_REACH)


def _tiles(height: int, width: int, tile: int, margin: int, factor: int) -> Iterator[tuple]:
    """For each tile: its input box with the margin (top, bottom, left, right, clipped to the image),
    and the rows and columns of the result it fills, and of the tile's output that fill them."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            t0, l0 = max(top - margin, 0), max(left - margin, 0)
            box = (t0, min(bottom + margin, height), l0, min(right + margin, width))
            filled = slice(top * factor, bottom * factor), slice(left * factor, right * factor)
            kept = (slice((top - t0) * factor, (bottom - t0) * factor),
                    slice((left - l0) * factor, (right - l0) * factor))
            yield box, filled, kept


@torch.no_grad()
def chop_forward(
    model: nn.Module,
    x: torch.Tensor,
    scale: int | None = None,
    tile: int = 64,
    overlap: int | None = None,
) -> torch.Tensor:
    """Forward ``x`` through ``model`` tile by tile; same result as ``model(x)``.

    ``tile`` is the size of the kept centre of each tile and ``overlap`` the margin added
    on every side, both in input pixels. ``overlap=None`` uses the receptive-field radius
    (+1). ``scale`` defaults to ``model.scale``; models with bicubic-upsampled input
    return images of the input size whatever the scale.
    """
    factor = output_factor(model, scale)
    if overlap is None:
        radius = _radius(model, channels=x.shape[1])
        overlap = GLOBAL_MARGIN if radius is None else math.ceil(radius) + 1
    if tile < 1 or overlap < 0:
        raise ValueError(f"need tile >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    height, width = x.shape[-2:]
    result = None
    for (t0, b0, l0, r0), (rows, cols), (kept_rows, kept_cols) in _tiles(height, width, tile, overlap, factor):
        out = model(x[..., t0:b0, l0:r0])
        if result is None:
            result = out.new_zeros(*out.shape[:-2], height * factor, width * factor)
        result[..., rows, cols] = out[..., kept_rows, kept_cols]
    return result


def upscale_tiled(model: nn.Module, img: np.ndarray, *, tile: int = 512, overlap: int | None = None,
                  self_ensemble: bool = False) -> np.ndarray:
    """:func:`srlib.evaluate.upscale_image`, applied to ``tile`` x ``tile`` pieces of ``img`` (LR pixels).

    Each piece is upscaled with ``overlap`` pixels of margin on every side (default:
    :func:`tile_margin`) and only its centre is kept. An image no larger than one tile is
    upscaled whole. Returns a uint8 image ``scale`` times larger, like ``upscale_image``.
    """
    from .evaluate import upscale_image

    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be a whole number of pixels >= 1, got {tile!r}")
    if overlap is not None and overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap!r}")
    height, width = img.shape[:2]
    if height <= tile and width <= tile:
        return upscale_image(model, img, self_ensemble=self_ensemble)
    overlap = tile_margin(model) if overlap is None else overlap
    scale = int(model.scale)
    out = np.empty((height * scale, width * scale) + img.shape[2:], dtype=np.uint8)
    for (t0, b0, l0, r0), (rows, cols), (kept_rows, kept_cols) in _tiles(height, width, tile, overlap, scale):
        out[rows, cols] = upscale_image(model, img[t0:b0, l0:r0], self_ensemble=self_ensemble)[kept_rows, kept_cols]
    return out


@torch.no_grad()
def self_ensemble(
    model: nn.Module,
    x: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Average of the model's outputs over the 8 flips/rotations of ``x`` ("EDSR+").

    ``forward`` replaces ``model(t)``, e.g. ``lambda t: chop_forward(model, t)`` for large
    images.
    """
    forward = forward or model
    total = None
    for k in range(8):
        y = dihedral(forward(dihedral(x, k)), k, inverse=True)
        total = y if total is None else total + y
    return total / 8
