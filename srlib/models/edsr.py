"""EDSR: enhanced deep residual networks for single-image super-resolution.

Bee Lim, Sanghyun Son, Heewon Kim, Seungjun Nah, Kyoung Mu Lee. "Enhanced Deep Residual
Networks for Single Image Super-Resolution", CVPR Workshops (NTIRE) 2017.

EDSR (Sec. 3.1-3.2, Figs. 2-3) is a plain stack of residual blocks on the LR RGB image:

* ``MeanShift`` subtracts the mean colour of the training set (added back at the end);
* head: one conv 3x3 to ``n_feats`` channels;
* body: ``n_resblocks`` residual blocks conv-ReLU-conv **without batch normalisation**,
  each scaled by ``res_scale`` before the addition, then a conv 3x3, with a long skip
  connection around the whole body;
* tail: a sub-pixel (pixel-shuffle) upsampler and a conv 3x3 to RGB.

The baseline model has 16 blocks of 64 filters and no residual scaling; the paper model
has 32 blocks of 256 filters with ``res_scale = 0.1``, which the authors needed to train
such a wide network stably. Loss: L1 (Sec. 4.2), which they found to converge better
than L2. The x3 and x4 models are initialised from the trained x2 model
(:func:`srlib.models.common.copy_matching_weights` copies every layer whose shape matches:
the head, the body and the last convolution, and at x4 also the first of its two x2
upsampling stages, as the authors' code does; only x3's upsampler starts untrained).
"EDSR+" is self-ensemble at test time (:func:`srlib.inference.self_ensemble`).

Parameter counts (x2 / x3 / x4): paper model 40.7M / 43.7M / 43.1M, baseline 1.37M /
1.55M / 1.52M. Images here are in [0, 1] (the reference code works in [0, 255]), so the
mean shift subtracts the DIV2K mean colour expressed in [0, 1]; weights trained in the
[0, 255] convention do not transfer without rescaling.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelSpec, SRModel
from .common import MeanShift, ResBlock, Upsampler, conv


def loss(model: nn.Module, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 loss (Sec. 4.2)."""
    return F.l1_loss(model(net_input), hr)


SPEC = ModelSpec(
    name="edsr",
    paper_name="EDSR",
    paper=(
        "B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee. Enhanced Deep Residual Networks for Single "
        "Image Super-Resolution. CVPR Workshops (NTIRE) 2017."
    ),
    scales=(2, 3, 4),
    input="lr",
    channels=3,
    sizes={
        "paper": {"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1},
        "baseline": {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0},
        "quick": {"n_resblocks": 4, "n_feats": 32, "res_scale": 1.0},  # 122K / 168K / 159K parameters
    },
    size_notes={
        "paper": "32 residual blocks x 256 filters, residual scaling 0.1",
        "baseline": "16 residual blocks x 64 filters, no residual scaling",
        "quick": "4 residual blocks x 32 filters (121,987 / 168,227 / 158,979 parameters at x2 / x3 / x4)",
    },
    paper_params={
        "paper": {2: 40_700_000, 3: 43_700_000, 4: 43_100_000},
        "baseline": {2: 1_370_000, 3: 1_550_000, 4: 1_520_000},
    },
    loss=loss,
    description="Residual blocks without batch norm (optionally scaled by 0.1), long skip, pixel-shuffle "
                "upsampler; RGB, L1 loss.",
)


class EDSR(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 2, n_resblocks: int = 32, n_feats: int = 256, res_scale: float = 0.1,
                 batch_norm: bool = False):
        super().__init__(scale)
        channels = self.in_channels
        self.sub_mean = MeanShift(sign=-1)
        self.head = conv(channels, n_feats, 3)
        self.body = nn.Sequential(  # batch_norm=True: SRResNet's blocks, for the ablation of Sec. 3.1
            *(ResBlock(n_feats, 3, res_scale, batch_norm) for _ in range(n_resblocks)),
            conv(n_feats, n_feats, 3),
        )
        self.tail = nn.Sequential(Upsampler(self.scale, n_feats), conv(n_feats, channels, 3))
        self.add_mean = MeanShift(sign=+1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        features = self.head(self.sub_mean(x))
        features = features + self.body(features)  # long skip connection
        return self.add_mean(self.tail(features))
