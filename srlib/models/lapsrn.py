"""LapSRN: the Laplacian pyramid super-resolution network.

Wei-Sheng Lai, Jia-Bin Huang, Narendra Ahuja, Ming-Hsuan Yang. "Deep Laplacian Pyramid
Networks for Fast and Accurate Super-Resolution", CVPR 2017.

LapSRN enlarges the LR image progressively, x2 per pyramid level, so one x8 network also
produces x2 and x4 results (Sec. 3.1). Each level has two branches:

* feature extraction: ``d`` conv 3x3 layers (64 filters, LeakyReLU 0.2), a transposed
  convolution that doubles the feature resolution, and one conv layer that predicts the
  *residual* image (the level of the Laplacian pyramid). The up-sampled features flow on
  to the next level;
* image reconstruction: a transposed convolution (4x4, initialised as bilinear
  upsampling) doubles the current image, and the predicted residual is added.

Training uses the Charbonnier penalty ``rho(x) = sqrt(x^2 + eps^2)`` (eps = 1e-3) at every
level (Sec. 3.2), with targets obtained by bicubic downsampling of the HR image:
``hr`` at the last level, ``imresize(hr, 1/2)`` at the level before, and so on.

Details follow the authors' released MatConvNet code: a first conv 3x3 (+ LeakyReLU) on
the LR input; every convolution, including the feature upsampling, is 3x3 (the
transposed 3x3 convolution is cropped by one row/column at the bottom/right, which is
MatConvNet's ``crop [0 1 0 1]``); the feature upsampling is followed by a LeakyReLU; the
image upsampling has no bias. With ``d = 10`` the x4 model has 814K parameters (812K in
the paper, which counts weights only). The ``"paper"`` size has ``d = 10`` at x2 and x4 and
``d = 5`` at x8: the authors' released ``LapSRN_x8.mat`` (``pretrained_models/`` of their
repository) holds five convolutions per level (``level{1,2,3}_conv1..conv5``), 667K
parameters.

The loss follows the release too: the penalty is summed over the pixels of every level and
averaged over the batch, so each level weighs in proportion to its pixel count (1:4 for the
x2 and x4 outputs of a x4 network, 1:4:16 at x8). A mean per level would give the coarse
outputs 4 to 16 times more relative weight than the paper's training did.

Initialisation: the convolutions use He's initialisation for leaky ReLUs (Sec. 4.1 of the
paper cites He et al.); the release draws the very first convolution, on the LR input, from
a Gaussian with a standard deviation of 0.001 instead, about 460 times smaller than He's
0.46 for that layer (a fan-in of 9 pixels), so its first features start near zero. This file
keeps He's initialisation there as everywhere else, one rule for every layer.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import ModelSpec, SRModel
from .common import charbonnier, conv


def pyramid_targets(hr: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """HR image at every level: MATLAB-bicubic downscales by 2^(levels-1), ..., 2, then hr."""
    from srlib.imresize import imresize  # imported lazily: only the loss needs it

    with torch.no_grad():
        targets = [imresize(hr, scale=1 / 2 ** (levels - 1 - k)) for k in range(levels - 1)]
    return targets + [hr]


def loss(model: LapSRN, net_input: torch.Tensor, hr: torch.Tensor, penalty: str = "charbonnier") -> torch.Tensor:
    """Charbonnier loss summed over the pixels of every pyramid level, averaged over the batch (Sec. 3.2).

    ``penalty="l2"`` puts the squared error in place of the Charbonnier penalty, with the same
    sum over pixels and levels: the L2 loss the paper compares against.
    """
    if penalty not in ("charbonnier", "l2"):
        raise ValueError(f"penalty must be 'charbonnier' or 'l2', got {penalty!r}")
    outputs = model.forward_all(net_input)
    targets = pyramid_targets(hr, len(outputs))
    total = 0.0
    for output, target in zip(outputs, targets):
        if output.shape != target.shape:
            raise ValueError(
                f"LapSRN level output {tuple(output.shape)} does not match target {tuple(target.shape)}: "
                f"the HR size must be {model.scale} times the LR size"
            )
        target = target.to(output.dtype)
        if penalty == "l2":
            total = total + (output - target).pow(2).sum() / output.shape[0]
        else:
            total = total + charbonnier(output, target, reduction="sum_per_patch")
    return total


SPEC = ModelSpec(
    name="lapsrn",
    paper_name="LapSRN",
    paper=(
        "W.-S. Lai, J.-B. Huang, N. Ahuja, M.-H. Yang. Deep Laplacian Pyramid Networks for "
        "Fast and Accurate Super-Resolution. CVPR 2017."
    ),
    scales=(2, 4, 8),  # powers of two: one x2 pyramid level each
    input="lr",
    channels=1,
    sizes={
        "paper": {"depth": {2: 10, 4: 10, 8: 5}, "n_feats": 64},
        "quick": {"depth": 3, "n_feats": 32},  # 3 conv layers x 32 filters per level
    },
    size_notes={
        "paper": "d = 10 conv layers x 64 filters per pyramid level (d = 5 at x8, as released)",
        "quick": "d = 3 conv layers x 32 filters per level",
    },
    paper_params={"paper": {4: 812_000}},
    loss=loss,
    description="Progressive x2 levels: a feature branch predicts each level's residual, an image branch "
                "upsamples; Charbonnier loss at every level.",
)


def bilinear_kernel(size: int = 4) -> torch.Tensor:
    """The ``size x size`` kernel with which a stride-2 transposed conv is bilinear upsampling."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor
    return taps[:, None] * taps[None, :]


class PyramidLevel(nn.Module):
    """One x2 level: the feature-extraction branch and the image-reconstruction branch."""

    def __init__(self, n_feats: int, depth: int, channels: int):
        super().__init__()
        # Feature extraction: d conv layers, a x2 transposed conv, and the residual image.
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [conv(n_feats, n_feats, 3), nn.LeakyReLU(0.2, inplace=True)]
        self.feature_convs = nn.Sequential(*layers)
        self.feature_upsample = nn.ConvTranspose2d(n_feats, n_feats, 3, stride=2)
        self.feature_upsample_relu = nn.LeakyReLU(0.2)
        self.residual = conv(n_feats, channels, 3)
        # Image reconstruction: 4x4 stride-2 transposed conv cropped by one pixel on each side.
        self.image_upsample = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.image_upsample.weight.copy_(bilinear_kernel(4).expand_as(self.image_upsample.weight))

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = features.shape[-2:]
        features = self.feature_convs(features)
        # A 3x3 transposed conv with stride 2 gives 2h+1 rows; keep the first 2h.
        features = self.feature_upsample_relu(self.feature_upsample(features)[..., : 2 * h, : 2 * w])
        image = self.image_upsample(image) + self.residual(features)
        return features, image


class LapSRN(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 4, depth: int = 10, n_feats: int = 64):
        super().__init__(scale)
        self.levels_count = int(math.log2(self.scale))
        self.input_conv = nn.Sequential(conv(self.in_channels, n_feats, 3), nn.LeakyReLU(0.2, inplace=True))
        self.levels = nn.ModuleList(PyramidLevel(n_feats, depth, self.in_channels) for _ in range(self.levels_count))
        for name, module in self.named_modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and not name.endswith("image_upsample"):
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every level, from x2 up to ``x scale``."""
        self.check_input(x)
        features, image = self.input_conv(x), x
        outputs = []
        for level in self.levels:
            features, image = level(features, image)
            outputs.append(image)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]
