"""VDSR: a very deep network that learns the residual.

Jiwon Kim, Jung Kwon Lee, Kyoung Mu Lee. "Accurate Image Super-Resolution Using Very Deep
Convolutional Networks", CVPR 2016.

Sec. 3.1: ``d = 20`` layers of 3x3 convolutions with 64 filters and ReLU, except
the last layer which outputs one channel. The network predicts the residual ``r = y - x``
between the HR image and the bicubic-upsampled input, so the output is ``x + f(x)``
("global residual learning"): the input already carries the low frequencies and the
network only has to add detail. Loss: ``1/2 ||r - f(x)||^2`` (Sec. 3.2), summed over the
pixels of each 41x41 patch and averaged over the mini-batch, as in the authors' MatConvNet
training (:func:`~srlib.models.common.euclidean_loss`). Because ``r - f(x) = y - (x + f(x))``
it is computed on the output.

Training details that belong to the training loop, not to this module: the high learning
rate (0.1) made possible by adjustable gradient clipping (clip the gradient to
``[-theta/lr, theta/lr]``), and one model trained on a mixture of x2, x3 and x4 images
(Sec. 3). The summed loss matters for the first: its gradients are about 840 times those of
a per-pixel mean, and the rate of 0.1 and the clipping threshold are tuned to that size. The
model works at every scale; ``scale`` is kept for bookkeeping only. Weights use He
initialisation, as in the paper.

Depth and receptive field (Sec. 2.1): every 3x3 layer widens the field by one pixel on each
side, so ``D`` layers see ``(2D + 1) x (2D + 1)`` input pixels, 41x41 for ``D = 20``. Count the
layers as the convolutions: the first (1 -> 64), ``D - 2`` middle ones (64 -> 64) and the last
(64 -> 1) make ``D``; with ``D = 20`` there are 665,921 weights and biases.

``residual=False`` drops the global skip: the same layers then predict the HR image itself, the
"non-residual" network the paper compares against (Fig. 4 and Table 1).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import ModelSpec, SRModel
from .common import conv, euclidean_loss


def loss(model: nn.Module, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Half the squared error of the output, summed over each patch (equivalently, of the residual)."""
    return euclidean_loss(model(net_input), hr)


SPEC = ModelSpec(
    name="vdsr",
    paper_name="VDSR",
    paper=(
        "J. Kim, J. K. Lee, K. M. Lee. Accurate Image Super-Resolution Using Very Deep "
        "Convolutional Networks. CVPR 2016."
    ),
    scales=(2, 3, 4),
    input="upsampled",
    channels=1,
    sizes={
        "paper": {"depth": 20, "n_feats": 64},
        "quick": {"depth": 8, "n_feats": 32},  # 8 layers x 32 filters: 56,097 parameters
        "narrow": {"depth": 20, "n_feats": 32},  # the paper's depth at a quarter of its cost per step
    },
    size_notes={
        "paper": "20 layers x 64 filters",
        "quick": "8 layers x 32 filters (56,097 parameters)",
        "narrow": "20 layers x 32 filters (167,073 parameters; the reference model's size)",
    },
    paper_params={"paper": 665_000},
    loss=loss,
    description="20 conv3x3(64)+ReLU layers predicting the residual added to the bicubic-upsampled Y input.",
)


class VDSR(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 3, depth: int = 20, n_feats: int = 64, residual: bool = True):
        if depth < 2:
            raise ValueError(f"VDSR needs at least 2 layers, got depth={depth}")
        super().__init__(scale)  # bookkeeping only: one VDSR handles every scale
        self.global_residual = residual  # False: the same layers learn the image itself (Fig. 4, Table 1)
        channels = self.in_channels
        layers: list[nn.Module] = [conv(channels, n_feats, 3), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [conv(n_feats, n_feats, 3), nn.ReLU(inplace=True)]
        layers.append(conv(n_feats, channels, 3))
        self.residual = nn.Sequential(*layers)  # f(x), the predicted r = y - x (or y itself)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if not self.global_residual:
            return self.residual(x)  # the "non-residual" network of the paper's comparison
        return x + self.residual(x)  # global residual learning
