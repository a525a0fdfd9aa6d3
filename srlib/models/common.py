"""Building blocks shared by the models of the zoo.

Most super-resolution networks after 2016 are assembled from the same few parts, so they
live here once:

* :func:`conv` -- a 2-D convolution with "same" padding, so that stacking layers never
  shrinks the image (the convention of EDSR-PyTorch's ``default_conv``);
* :class:`ResBlock` -- conv-ReLU-conv plus identity, without batch normalisation and with
  an optional residual scaling (Lim et al., EDSR, CVPRW 2017, Sec. 3.1 and Fig. 2);
* :class:`Upsampler` -- sub-pixel convolution: a convolution producing ``r^2`` times the
  channels followed by a pixel shuffle (Shi et al., ESPCN, CVPR 2016, Sec. 2.2);
* :class:`MeanShift` -- subtract / add the mean RGB colour of the training set;
* :class:`ChannelAttention` and :class:`RCAB` -- squeeze-and-excitation style channel
  attention inside a residual block (Zhang et al., RCAN, ECCV 2018, Sec. 3.3-3.4), used
  by DRN;
* :func:`charbonnier` -- the robust L1 penalty of LapSRN;
* :func:`euclidean_loss` -- half the squared error summed over each patch, the loss of the
  Caffe and MatConvNet code of VDSR, DRCN and DRRN.

Everything works on float tensors of shape ``(N, C, H, W)`` with values in ``[0, 1]``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "conv",
    "ResBlock",
    "Upsampler",
    "MeanShift",
    "ChannelAttention",
    "RCAB",
    "charbonnier",
    "euclidean_loss",
    "copy_matching_weights",
    "DIV2K_RGB_MEAN",
]

# Mean colour of the DIV2K training images, in [0, 1] (the values EDSR-PyTorch and DRN use).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
         padding_mode: str = "zeros") -> nn.Conv2d:
    """A convolution with stride 1 and 'same' padding (odd kernel sizes).

    ``padding_mode`` is torch's: ``"zeros"``, or ``"replicate"`` for the border handling of
    MATLAB's ``imfilter(..., 'replicate')`` (SRCNN's and FSRCNN's test code)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias,
                     padding_mode=padding_mode)


class ResBlock(nn.Module):
    """EDSR's residual block: ``x + res_scale * conv(relu(conv(x)))``.

    No batch normalisation: Lim et al. (Sec. 3.1) observe that BN removes the range
    flexibility of the features and costs as much memory as the convolutions, with no
    benefit for super-resolution. ``res_scale`` (0.1 in the 256-filter EDSR) keeps the
    residual branch small so that very wide networks train stably (Szegedy et al. 2017).
    ``batch_norm=True`` puts a batch normalisation after each convolution, as in SRResNet's
    block (Ledig et al. 2017), for comparison.
    """

    def __init__(self, n_feats: int, kernel_size: int = 3, res_scale: float = 1.0, batch_norm: bool = False):
        super().__init__()

        def norm() -> list[nn.Module]:  # nothing by default, so the layers keep their names (body.0, body.2)
            return [nn.BatchNorm2d(n_feats)] if batch_norm else []

        self.body = nn.Sequential(
            conv(n_feats, n_feats, kernel_size),
            *norm(),
            nn.ReLU(inplace=True),
            conv(n_feats, n_feats, kernel_size),
            *norm(),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """Sub-pixel convolution upsampling by ``scale`` in {2, 3, 4, 8, ...}.

    A convolution maps ``n_feats`` channels to ``r^2 * n_feats`` and ``PixelShuffle(r)``
    rearranges each group of ``r^2`` channels into an ``r x r`` block of pixels. Scales
    that are powers of two use repeated x2 stages (x4 = x2 then x2), which costs fewer
    parameters than one x4 stage (16 times the channels); x3 uses a single stage.
    """

    def __init__(self, scale: int, n_feats: int, kernel_size: int = 3):
        if scale & (scale - 1) == 0:  # a power of two
            stages = [2] * int(math.log2(scale))
        elif scale == 3:
            stages = [3]
        else:
            raise ValueError(f"Upsampler supports scales 3 and powers of two, got {scale}")
        layers: list[nn.Module] = []
        for r in stages:
            layers += [conv(n_feats, r * r * n_feats, kernel_size), nn.PixelShuffle(r)]
        super().__init__(*layers)


class MeanShift(nn.Module):
    """Subtract (``sign=-1``) or add back (``sign=+1``) a fixed mean colour.

    Centring the input helps the first layers, and adding the mean back at the end lets
    the network predict zero-mean values. EDSR-PyTorch writes this as a frozen 1x1
    convolution; a buffer is simpler and keeps it out of the parameter count.
    """

    def __init__(self, mean=DIV2K_RGB_MEAN, sign: int = -1):
        super().__init__()
        self.register_buffer("shift", sign * torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.shift


class ChannelAttention(nn.Module):
    """Channel attention (RCAN, Zhang et al. 2018, Sec. 3.3).

    Global average pooling summarises each channel by one number; a bottleneck of two
    1x1 convolutions (reduction ``reduction``) and a sigmoid turn these into per-channel
    weights in (0, 1) that rescale the features. Note that the pooling makes the output
    depend on the whole image, not only on a neighbourhood.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.weights = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(self.pool(x))


class RCAB(nn.Module):
    """Residual channel attention block: ``x + CA(conv(relu(conv(x))))``."""

    def __init__(self, n_feats: int, kernel_size: int = 3, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            conv(n_feats, n_feats, kernel_size),
            nn.ReLU(inplace=True),
            conv(n_feats, n_feats, kernel_size),
            ChannelAttention(n_feats, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def charbonnier(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3,
                reduction: str = "mean") -> torch.Tensor:
    """Charbonnier penalty ``sqrt((x - y)^2 + eps^2)``, a differentiable L1.

    ``reduction="mean"`` averages over every value; ``"sum_per_patch"`` sums over the pixels of
    each patch and averages over the batch (LapSRN's released code), so that a larger image
    counts in proportion to its pixels.
    """
    penalty = torch.sqrt((prediction - target) ** 2 + eps * eps)
    if reduction == "mean":
        return penalty.mean()
    if reduction == "sum_per_patch":
        return penalty.sum() / prediction.shape[0]
    raise ValueError(f"reduction must be 'mean' or 'sum_per_patch', got {reduction!r}")


def euclidean_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1/(2N) sum_i ||prediction_i - target_i||^2``: summed over the pixels of each patch, averaged over the batch.

    This is Caffe's ``EuclideanLoss`` and the loss VDSR, DRCN and DRRN were trained with. It
    differs from :func:`torch.nn.functional.mse_loss` (a mean over pixels) by a factor of
    ``2 / (C * H * W)``: with 41x41 patches the gradients are 840 times larger. Adam does not
    notice (it divides by the gradients' own size), but the papers' SGD at a rate of 0.1 with
    gradient clipping only behaves as published at this scale.
    """
    return 0.5 * (prediction - target).pow(2).sum() / prediction.shape[0]


@torch.no_grad()
def copy_matching_weights(destination: nn.Module, source: nn.Module) -> list[str]:
    """Copy every parameter/buffer of ``source`` whose name and shape exist in ``destination``.

    This is how EDSR initialises its x3 and x4 models from the trained x2 model (Sec. 4.2):
    the body is shared, only the upsampler differs. Returns the names that were copied.
    """
    own = destination.state_dict()
    copied = []
    for name, tensor in source.state_dict().items():
        if name in own and own[name].shape == tensor.shape:
            own[name].copy_(tensor)
            copied.append(name)
    return copied
