"""ESPCN: the efficient sub-pixel convolutional network.

Wenzhe Shi, Jose Caballero, Ferenc Huszar, Johannes Totz, Andrew P. Aitken, Rob Bishop,
Daniel Rueckert, Zehan Wang. "Real-Time Single Image and Video Super-Resolution Using an
Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016.

All convolutions run on the LR image. The last layer outputs ``r^2 C`` channels and the
*periodic shuffling* operator PS (Sec. 2.2, Eq. 4) rearranges them into an ``rH x rW``
image: the "sub-pixel convolution layer". The network of the experiments is
``l = 3`` layers with ``(f1, n1) = (5, 64)``, ``(f2, n2) = (3, 32)`` and ``f3 = 3``, tanh
activations, on the Y channel, trained with the pixel-wise mean squared error.

This is the paper's network, not the common tutorial variant with ReLU activations and a
different layer count; the tanh is part of what was published. Counting the layers above
gives 21,284 / 22,729 / 24,752 parameters (with biases) at x2 / x3 / x4; only the last
layer depends on the scale.

``space="hr"`` builds the comparison the paper's speed argument rests on (Sec. 2.2): the
same layers applied to the bicubic-upsampled image, with one output channel and no
shuffle, i.e. the network working in HR space. The spec describes ESPCN itself
(``input="lr"``); the twin reports ``model.input_kind == "upsampled"``, computed from its
``space``, which :func:`srlib.evaluate.evaluate` reads. Give its training patches with
``upsampled=True`` (:class:`srlib.data.PatchDataset`). The flag is stored in
``model.srlib_config``, so checkpoints rebuild the right variant.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelSpec, SRModel
from .common import conv


def loss(model: nn.Module, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Pixel-wise mean squared error."""
    return F.mse_loss(model(net_input), hr)


SPEC = ModelSpec(
    name="espcn",
    paper_name="ESPCN",
    paper=(
        "W. Shi, J. Caballero, F. Huszar, J. Totz, A. P. Aitken, R. Bishop, D. Rueckert, "
        "Z. Wang. Real-Time Single Image and Video Super-Resolution Using an Efficient "
        "Sub-Pixel Convolutional Neural Network. CVPR 2016."
    ),
    scales=(2, 3, 4),
    input="lr",
    channels=1,
    sizes={
        "paper": {"n1": 64, "n2": 32},
        # ESPCN is tiny and runs at LR resolution: the CPU configuration is the paper's.
        "quick": {"n1": 64, "n2": 32},
    },
    size_notes={
        "paper": "(f1, n1) = (5, 64), (f2, n2) = (3, 32), f3 = 3, tanh",
        "quick": "same as paper: ESPCN runs at LR resolution and is tiny",
    },
    paper_params={},  # no published count to compare with; see the docstring
    loss=loss,
    description="conv5x5(64)-tanh, conv3x3(32)-tanh, conv3x3(r^2) on the LR Y channel, then periodic shuffling.",
)


class ESPCN(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 3, n1: int = 64, n2: int = 32, space: str = "lr"):
        if space not in ("lr", "hr"):
            raise ValueError(f"space must be 'lr' (ESPCN) or 'hr' (the same layers on the upsampled "
                             f"image), got {space!r}")
        super().__init__(scale)
        self.space = space
        channels = self.in_channels
        self.conv1 = conv(channels, n1, 5)  # (f1, n1) = (5, 64)
        self.tanh1 = nn.Tanh()
        self.conv2 = conv(n1, n2, 3)  # (f2, n2) = (3, 32)
        self.tanh2 = nn.Tanh()
        if space == "lr":
            # The sub-pixel convolution layer: r^2 C channels, rearranged by the periodic
            # shuffling operator PS (Eq. 4) into an rH x rW image.
            self.conv3 = conv(n2, channels * scale * scale, 3)
            self.periodic_shuffling = nn.PixelShuffle(scale)
        else:  # HR space: the input is already upsampled, one output value per pixel, no shuffle
            self.conv3 = conv(n2, channels, 3)
            self.periodic_shuffling = nn.Identity()

    @property
    def input_kind(self) -> str:
        """The twin in HR space takes the bicubic-upsampled image; ESPCN itself the LR image."""
        return "upsampled" if self.space == "hr" else self.spec.input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        features = self.tanh1(self.conv1(x))
        features = self.tanh2(self.conv2(features))
        return self.periodic_shuffling(self.conv3(features))
