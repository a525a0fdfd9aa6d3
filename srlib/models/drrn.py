"""DRRN: deep recursive residual network.

Ying Tai, Jian Yang, Xiaoming Liu. "Image Super-Resolution via Deep Recursive Residual
Network", CVPR 2017.

DRRN combines VDSR's global residual with ResNet-style local residuals and DRCN-style
weight sharing (Sec. 3):

* a *residual unit* is two pre-activation convolutions, each "BN -> ReLU -> conv 3x3
  (128 filters)" (He et al. 2016, identity mappings);
* a *recursive block* starts with one convolution ``H_0 = f_in(x)`` and then applies ``U``
  residual units. The two convolutions of the units are **shared** by all units of the
  block, and every unit adds the block's input ``H_0`` rather than its own input
  (multi-path local residual learning: ``H_u = F(H_{u-1}) + H_0``);
* ``B`` blocks are stacked, a last pre-activation convolution maps to one channel, and the
  input is added back (global residual learning).

Depth ``d = (1 + 2U) B + 1``; DRRN_B1U9 has 20 layers and DRRN_B1U25 52, both with 297K
parameters because the units share weights. The loss is Caffe's Euclidean loss, half the
squared error summed over each patch and averaged over the batch
(:func:`~srlib.models.common.euclidean_loss`).

Following the authors' released Caffe model, the batch normalisation layers are *not*
shared: each unit has its own BN statistics and scale/shift (the features differ from
recursion to recursion), and the very first convolution is also pre-activated (BN-ReLU on
the input). The 297K of the paper counts convolution parameters; the per-unit BN adds
2 x 128 scale/shift values per BN layer (about 4.9K for B1U9, 13K for B1U25).

``local_residual`` selects the local skip for the review's ablation: ``"multi-path"`` (the
paper's ``H_u = F(H_{u-1}) + H_0``, the default), ``"chain"`` (ResNet's ``H_u = F(H_{u-1}) +
H_{u-1}``, the paper's DRRN_C) or ``"none"`` (``H_u = F(H_{u-1})``: a plain recursive stack).
The parameters are the same in all three.

One deliberate change: the last convolution starts at zero, so the untrained network
returns its input, the bicubic image (the other layers use the paper's MSRA
initialisation). With MSRA there too, the untrained network adds a residual of about
unit size, and a short CPU run spends hundreds of steps just removing it. In a test with
the "quick" size at x3 (Adam, lr 1e-3, batches of 16 patches of 48 pixels) the zero start
beat bicubic after 25 steps; the MSRA start was still 3 dB below bicubic after 400.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import ModelSpec, SRModel
from .common import conv, euclidean_loss


def loss(model: nn.Module, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Half the squared error, summed over each patch and averaged over the batch."""
    return euclidean_loss(model(net_input), hr)


SPEC = ModelSpec(
    name="drrn",
    paper_name="DRRN",
    paper="Y. Tai, J. Yang, X. Liu. Image Super-Resolution via Deep Recursive Residual Network. CVPR 2017.",
    scales=(2, 3, 4),
    input="upsampled",
    channels=1,
    sizes={
        "paper": {"blocks": 1, "units": 25, "n_feats": 128},  # DRRN_B1U25, the paper's best
        "B1U25": {"blocks": 1, "units": 25, "n_feats": 128},
        "B1U9": {"blocks": 1, "units": 9, "n_feats": 128},
        "quick": {"blocks": 1, "units": 4, "n_feats": 32},  # 10 layers x 32 filters: ~20K parameters
        "B1U9-narrow": {"blocks": 1, "units": 9, "n_feats": 32},
    },
    size_notes={
        "paper": "DRRN_B1U25: 1 recursive block of 25 units, 128 filters (52 layers)",
        "B1U25": "same as paper",
        "B1U9": "1 recursive block of 9 units, 128 filters (20 layers)",
        "quick": "B1U4 with 32 filters (10 layers, ~20K parameters)",
        "B1U9-narrow": "B1U9 with 32 filters (20 layers, 20,323 parameters; the reference model's size)",
    },
    paper_params={"paper": 297_000, "B1U25": 297_000, "B1U9": 297_000},  # convolution parameters
    loss=loss,
    description="Recursive blocks of pre-activation residual units sharing their two convolutions; "
                "every unit adds the block input; global residual.",
)


LOCAL_RESIDUALS = ("multi-path", "chain", "none")


def pre_activation(n_feats_in: int) -> nn.Sequential:
    """BN -> ReLU, the part of a pre-activation layer that is not shared."""
    return nn.Sequential(nn.BatchNorm2d(n_feats_in), nn.ReLU(inplace=True))


class RecursiveBlock(nn.Module):
    """``H_0 = conv(BN-ReLU(x))``, then ``U`` residual units ``H_u = F(H_{u-1}) + H_0``."""

    def __init__(self, in_channels: int, n_feats: int, units: int, local_residual: str = "multi-path"):
        super().__init__()
        self.local_residual = local_residual
        self.entry_norm = pre_activation(in_channels)
        self.entry_conv = conv(in_channels, n_feats, 3)
        # The two convolutions of a residual unit, shared by all U units of this block.
        self.shared_conv_a = conv(n_feats, n_feats, 3)
        self.shared_conv_b = conv(n_feats, n_feats, 3)
        # One BN-ReLU per convolution call, not shared (as in the released model).
        self.norms_a = nn.ModuleList(pre_activation(n_feats) for _ in range(units))
        self.norms_b = nn.ModuleList(pre_activation(n_feats) for _ in range(units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_input = self.entry_conv(self.entry_norm(x))  # H_0
        hidden = block_input
        for norm_a, norm_b in zip(self.norms_a, self.norms_b):  # residual unit u: F(H_{u-1})
            residual = self.shared_conv_a(norm_a(hidden))
            residual = self.shared_conv_b(norm_b(residual))
            if self.local_residual == "multi-path":
                hidden = residual + block_input  # multi-path local residual: add H_0, not H_{u-1}
            elif self.local_residual == "chain":
                hidden = residual + hidden  # ResNet's chain: add the unit's own input H_{u-1}
            else:
                hidden = residual  # no local residual
        return hidden


class DRRN(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 3, blocks: int = 1, units: int = 25, n_feats: int = 128,
                 local_residual: str = "multi-path"):
        if blocks < 1 or units < 1:
            raise ValueError(f"DRRN needs blocks >= 1 and units >= 1, got B={blocks}, U={units}")
        if local_residual not in LOCAL_RESIDUALS:
            raise ValueError(f"local_residual must be one of {LOCAL_RESIDUALS}, got {local_residual!r}")
        super().__init__(scale)  # bookkeeping only: the image size does not change
        channels = self.in_channels
        self.blocks = nn.Sequential(
            *(RecursiveBlock(channels if b == 0 else n_feats, n_feats, units, local_residual) for b in range(blocks))
        )
        self.exit_norm = pre_activation(n_feats)
        self.exit_conv = conv(n_feats, channels, 3)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")  # Caffe "msra"
                nn.init.zeros_(module.bias)
        # Start as the identity: the untrained network returns its (bicubic) input.
        nn.init.zeros_(self.exit_conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        features = self.blocks(x)
        return x + self.exit_conv(self.exit_norm(features))  # global residual learning
