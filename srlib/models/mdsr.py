"""MDSR: one multi-scale network for x2, x3 and x4.

Bee Lim, Sanghyun Son, Heewon Kim, Seungjun Nah, Kyoung Mu Lee. "Enhanced Deep Residual
Networks for Single Image Super-Resolution", CVPR Workshops (NTIRE) 2017, Sec. 3.3.

Super-resolution at different scales is largely the same problem, so MDSR shares one deep
body between scales and keeps only small scale-specific parts:

* per-scale *pre-processing* modules: two residual blocks with 5x5 kernels each, which
  reduce the variance between input scales (a larger receptive field early on);
* a shared body of ``n_resblocks`` EDSR residual blocks (80 blocks x 64 filters in the
  paper) followed by a conv 3x3, with a long skip connection;
* per-scale pixel-shuffle upsamplers, then a shared conv to RGB.

During training each mini-batch uses a single scale chosen at random, and only that
scale's modules (and the shared ones) receive gradients. ``PatchDataset(images, scales=(2, 3,
4), ...)`` draws such batches, and :func:`loss` reads each batch's scale from its sizes (HR
side / LR side) and runs the matching head: ``fit`` then trains all three scales with no
special loop. Outside training, ``model(x)`` uses ``model.scale`` (change it with
:meth:`MDSR.set_scale`), or ``model(x, scale=4)`` for one call. Loss: L1. The paper reports
about 8.0M parameters for the whole multi-scale model (this implementation: 7.95M).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelSpec, SRModel
from .common import MeanShift, ResBlock, Upsampler, conv


def loss(model: nn.Module, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 loss at the batch's own scale, ``hr`` side / ``net_input`` side."""
    scale, remainder = divmod(hr.shape[-1], net_input.shape[-1])
    if remainder or hr.shape[-2] != scale * net_input.shape[-2]:
        raise ValueError(f"MDSR: HR {tuple(hr.shape[-2:])} is not an integer multiple of LR "
                         f"{tuple(net_input.shape[-2:])}")
    return F.l1_loss(model(net_input, scale=scale), hr)


SPEC = ModelSpec(
    name="mdsr",
    paper_name="MDSR",
    paper=(
        "B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee. Enhanced Deep Residual Networks for Single "
        "Image Super-Resolution (MDSR, Sec. 3.3). CVPR Workshops (NTIRE) 2017."
    ),
    scales=(2, 3, 4),
    input="lr",
    channels=3,
    sizes={
        "paper": {"n_resblocks": 80, "n_feats": 64},
        # EDSR baseline's body (16 x 64) shared by three scales: 3.23M parameters, 1.2M in the heads.
        "baseline": {"n_resblocks": 16, "n_feats": 64},
        "quick": {"n_resblocks": 4, "n_feats": 32},  # 0.59M parameters, most in the 5x5 heads
    },
    size_notes={
        "paper": "80 shared residual blocks x 64 filters, heads and upsamplers for x2, x3, x4",
        "baseline": "16 shared residual blocks x 64 filters, as EDSR baseline (3.23M parameters)",
        "quick": "4 shared residual blocks x 32 filters (~0.59M parameters, mostly the 5x5 heads)",
    },
    paper_params={"paper": 8_000_000},
    loss=loss,
    description="EDSR body shared by x2/x3/x4 with per-scale 5x5 pre-processing blocks and per-scale "
                "upsamplers; RGB, L1 loss.",
)


class MDSR(SRModel):
    spec = SPEC
    varying_parameters = True  # a step trains the head of its batch's scale only (srlib.distributed)

    def __init__(self, scale: int = 2, n_resblocks: int = 80, n_feats: int = 64, scales=SPEC.scales):
        super().__init__(scale)
        channels = self.in_channels
        self.scales = tuple(int(s) for s in scales)
        self.sub_mean = MeanShift(sign=-1)
        self.head = conv(channels, n_feats, 3)
        # Scale-specific pre-processing modules; ModuleDict keys must be strings: "2", "3", "4".
        self.pre_process = nn.ModuleDict(
            {str(s): nn.Sequential(ResBlock(n_feats, 5), ResBlock(n_feats, 5)) for s in self.scales}
        )
        self.body = nn.Sequential(  # shared by all scales
            *(ResBlock(n_feats, 3) for _ in range(n_resblocks)),
            conv(n_feats, n_feats, 3),
        )
        self.upsample = nn.ModuleDict({str(s): Upsampler(s, n_feats) for s in self.scales})
        self.tail = conv(n_feats, channels, 3)
        self.add_mean = MeanShift(sign=+1)
        self.set_scale(self.scale)

    def set_scale(self, scale: int) -> MDSR:
        """Select which pre-processing head and upsampler ``forward`` uses (and ``srlib_config`` records)."""
        if scale not in self.scales:
            raise ValueError(f"MDSR was built for scales {self.scales}, got {scale}")
        self.scale = scale
        self.srlib_config["scale"] = scale
        return self

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """Enlarge ``x`` by ``scale`` (default: ``model.scale``) with that scale's head and upsampler."""
        self.check_input(x)
        scale = self.scale if scale is None else scale
        if scale not in self.scales:
            raise ValueError(f"MDSR was built for scales {self.scales}, got {scale}")
        key = str(scale)
        features = self.pre_process[key](self.head(self.sub_mean(x)))
        features = features + self.body(features)  # long skip connection
        return self.add_mean(self.tail(self.upsample[key](features)))
