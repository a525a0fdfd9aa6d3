"""Upscaling a large photograph tile by tile, so that memory stays bounded.

:func:`srlib.evaluate.upscale_image` works on the whole image at once: the image in float64,
its YCbCr conversion, the network's input, every feature map of the network and the float64
result all exist together, which for a 3000 x 3000 photograph at x3 is many gigabytes.
:func:`upscale_tiled` cuts the low-resolution image into tiles, upscales each one (colour
conversion included) with a margin of surrounding pixels, and pastes the centre of each
result into a preallocated uint8 image. Memory is then that of one tile plus the result.

The margin makes the seams invisible: an output pixel depends only on the input pixels
within the network's receptive field, plus the two pixels the bicubic kernel reaches (for
the colour channels, and for networks that take the bicubic-upsampled image). With a margin
that wide, the kept centre is what the whole image would have given, up to float rounding
(:func:`tile_margin` computes it from the network's layers).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

__all__ = ["upscale_tiled", "tile_margin"]

BICUBIC_REACH = 3  # LR pixels the bicubic kernel (4 taps, MATLAB's placement) can reach, rounded up
GLOBAL_MARGIN = 32  # for networks with a global operation, whose receptive field is the whole image


def tile_margin(model: torch.nn.Module) -> int:
    """How many LR pixels of context a tile needs for its centre to come out as in the whole image."""
    from .evaluate import model_convention
    from .profile import receptive_radius

    upsampled, _ = model_convention(model)
    radius = receptive_radius(model)  # in the network's input pixels
    if math.isinf(radius):
        warnings.warn(f"{type(model).__name__} has a global operation (e.g. channel attention); tiles with a "
                      f"margin of {GLOBAL_MARGIN} pixels only approximate the whole image", stacklevel=3)
        return GLOBAL_MARGIN
    if upsampled:  # the network sees the bicubic-upsampled image: its radius is in HR pixels
        return math.ceil(radius / int(model.scale)) + BICUBIC_REACH
    return max(math.ceil(radius), BICUBIC_REACH)


def upscale_tiled(model: torch.nn.Module, img: np.ndarray, *, tile: int = 512, overlap: int | None = None,
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
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            # The tile with its margin, clipped to the image.
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            b0, r0 = min(bottom + overlap, height), min(right + overlap, width)
            sr = upscale_image(model, img[t0:b0, l0:r0], self_ensemble=self_ensemble)
            out[top * scale: bottom * scale, left * scale: right * scale] = sr[
                (top - t0) * scale: (bottom - t0) * scale, (left - l0) * scale: (right - l0) * scale]
    return out
