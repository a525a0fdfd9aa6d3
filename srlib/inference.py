"""Inference helpers: tiled forward passes for large images, and self-ensemble.

``chop_forward`` splits a large input into tiles, runs the model on each tile *with a
margin* of surrounding pixels, and keeps only the centre of each result. A convolutional
network's output pixel depends only on input pixels within its receptive field, so when
the margin (``overlap``) is at least the receptive-field radius, the kept centres are
exactly what the full forward pass would have produced (up to float rounding): tiling
changes memory use, not results. The radius is computed from the network's layers
(:func:`srlib.profile.receptive_radius`). Two caveats:

* call ``model.eval()`` first: batch normalisation in training mode uses statistics of
  the whole input, so it is not local;
* networks with global operations (DRN's channel attention pools over the whole image)
  have no finite receptive field; for them tiling is an approximation (and a warning
  says so).

``self_ensemble`` is the geometric self-ensemble of EDSR+ (Lim et al. 2017, Sec. 4.3,
after Timofte et al. 2016): run the model on the 8 flips/rotations of the input, undo each
transformation on the output, and average.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
from torch import nn

from .profile import receptive_radius

__all__ = ["chop_forward", "self_ensemble", "output_factor"]


def output_factor(model: nn.Module, scale: int | None = None) -> int:
    """How many output pixels per input pixel: 1 for upsampled-input models, else the scale."""
    if getattr(model, "input_kind", "lr") == "upsampled":
        return 1
    return int(scale if scale is not None else model.scale)


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
        radius = receptive_radius(model, channels=x.shape[1])
        if math.isinf(radius):
            overlap = 16
            warnings.warn(
                f"{type(model).__name__} has a global operation (e.g. channel attention); "
                f"tiled inference with overlap={overlap} only approximates the full forward pass",
                stacklevel=2,
            )
        else:
            overlap = math.ceil(radius) + 1
    if tile < 1 or overlap < 0:
        raise ValueError(f"need tile >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    height, width = x.shape[-2:]
    result = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            # The tile with its margin, clipped to the image.
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            b0, r0 = min(bottom + overlap, height), min(right + overlap, width)
            out = model(x[..., t0:b0, l0:r0])
            if result is None:
                result = out.new_zeros(*out.shape[:-2], height * factor, width * factor)
            result[..., top * factor : bottom * factor, left * factor : right * factor] = out[
                ..., (top - t0) * factor : (bottom - t0) * factor, (left - l0) * factor : (right - l0) * factor
            ]
    return result


def _transform(x: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, rotations, dims=(-2, -1))
    return x.flip(-1) if flip else x


def _untransform(y: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    y = y.flip(-1) if flip else y
    return torch.rot90(y, -rotations, dims=(-2, -1))


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
    for rotations in range(4):
        for flip in (False, True):
            y = _untransform(forward(_transform(x, rotations, flip)), rotations, flip)
            total = y if total is None else total + y
    return total / 8
