"""SRCNN: the first convolutional network for super-resolution.

Chao Dong, Chen Change Loy, Kaiming He, Xiaoou Tang. "Learning a Deep Convolutional
Network for Image Super-Resolution", ECCV 2014; extended as "Image Super-Resolution Using
Deep Convolutional Networks", IEEE TPAMI 38(2), 2016.

The network (TPAMI Sec. 3.1, Eqs. 1-3) reads a bicubic-upsampled luminance image Y and
applies three layers, each interpreted as a step of sparse-coding super-resolution:

1. patch extraction and representation: ``F1(Y) = max(0, W1 * Y + B1)``, ``n1`` filters
   of size ``f1 x f1``;
2. non-linear mapping: ``F2(Y) = max(0, W2 * F1(Y) + B2)``, ``n2`` filters of size
   ``f2 x f2``;
3. reconstruction: ``F(Y) = W3 * F2(Y) + B3``, one filter of size ``f3 x f3``.

The variants are named ``f1-f2-f3``: the ECCV paper's 9-1-5 and the TPAMI paper's 9-5-5
(both with n1 = 64, n2 = 32). The loss is the mean squared error (Eq. 4).

Borders. The original convolutions had no padding: a 33x33 training patch gave a 21x21
output and the loss was computed on the centre of the label, so the network never saw a
padded border. At test time the authors' code (``SRCNN.m`` of their SRCNN_v1 test package)
keeps the image size by filtering every layer with MATLAB's ``imfilter(..., 'same',
'replicate')``: the border pixel is repeated outwards. Here every convolution uses 'same'
padding so that output and input have the same size, and by default it repeats the border as
the authors' test code does (``padding_mode="replicate"``); ``padding_mode="zeros"`` pads with
zeros, the convention of every later model. The choice matters near the edge: a 9-5-5 network
sees 8 pixels on each side of the centre (receptive field 9 + 5 + 5 - 2 = 17 pixels; 6 for
9-1-5) and the standard evaluation crops only ``scale`` of them, so a frame of 5-6 pixels
depends on the padding. With the authors' released weights, which never saw a padded border,
zeros cost 3 to 8 dB on Set5, below bicubic (the book's SRCNN chapter measures it); the
interior of the image is the same.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelSpec, SRModel
from .common import conv


def loss(model: nn.Module, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the output and the HR image (TPAMI Eq. 4)."""
    return F.mse_loss(model(net_input), hr)


SPEC = ModelSpec(
    name="srcnn",
    paper_name="SRCNN",
    paper=(
        "C. Dong, C. C. Loy, K. He, X. Tang. Learning a Deep Convolutional Network for Image "
        "Super-Resolution. ECCV 2014; Image Super-Resolution Using Deep Convolutional Networks. "
        "IEEE TPAMI 38(2), 2016."
    ),
    scales=(2, 3, 4),
    input="upsampled",
    channels=1,
    sizes={
        "paper": {"variant": "9-5-5", "n1": 64, "n2": 32},
        "9-5-5": {"variant": "9-5-5", "n1": 64, "n2": 32},
        "9-1-5": {"variant": "9-1-5", "n1": 64, "n2": 32},
        # SRCNN is already small (57K parameters, three layers); the CPU configuration is the
        # paper's network itself.
        "quick": {"variant": "9-5-5", "n1": 64, "n2": 32},
    },
    size_notes={
        "paper": "9-5-5 with n1 = 64, n2 = 32 (TPAMI 2016)",
        "9-5-5": "same as paper",
        "9-1-5": "the ECCV 2014 network: a 1x1 non-linear mapping layer",
        "quick": "same as paper: SRCNN already fits a CPU budget",
    },
    # Weights only, as counted in the papers (8,032 for 9-1-5, 57,184 for 9-5-5).
    paper_params={"paper": 57_184, "9-5-5": 57_184, "9-1-5": 8_032},
    loss=loss,
    description="Three convolutions (patch extraction, non-linear mapping, reconstruction) "
                "on the bicubic-upsampled Y channel.",
)


class SRCNN(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 3, variant: str = "9-5-5", n1: int = 64, n2: int = 32,
                 padding_mode: str = "replicate"):
        super().__init__(scale)  # bookkeeping only: the network never changes the image size
        try:
            f1, f2, f3 = (int(k) for k in variant.split("-"))
        except ValueError:
            raise ValueError(f"variant must look like '9-5-5' (three odd kernel sizes), got {variant!r}") from None
        if min(f1, f2, f3) < 1 or not (f1 % 2 and f2 % 2 and f3 % 2):
            raise ValueError(f"kernel sizes must be odd and positive, got {variant!r}")
        if padding_mode not in ("replicate", "zeros"):
            raise ValueError(f"padding_mode must be 'replicate' (the authors' test code) or 'zeros', "
                             f"got {padding_mode!r}")
        self.patch_extraction = conv(self.in_channels, n1, f1, padding_mode=padding_mode)  # F1 = max(0, W1 * Y + B1)
        self.patch_extraction_relu = nn.ReLU(inplace=True)
        self.nonlinear_mapping = conv(n1, n2, f2, padding_mode=padding_mode)  # F2 = max(0, W2 * F1 + B2)
        self.nonlinear_mapping_relu = nn.ReLU(inplace=True)
        self.reconstruction = conv(n2, self.in_channels, f3, padding_mode=padding_mode)  # F = W3 * F2 + B3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        features = self.patch_extraction_relu(self.patch_extraction(x))
        features = self.nonlinear_mapping_relu(self.nonlinear_mapping(features))
        return self.reconstruction(features)
