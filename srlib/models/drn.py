"""DRN: dual regression networks.

Yong Guo, Jian Chen, Jingdong Wang, Qi Chen, Jiezhang Cao, Zeshuai Deng, Yanwu Xu,
Mingkui Tan. "Closed-loop Matters: Dual Regression Networks for Single Image
Super-Resolution", CVPR 2020.

Super-resolution has infinitely many answers for one LR image. DRN (Sec. 3)
narrows the space by also learning the inverse map: besides the *primal* network
``P: LR -> HR`` it trains small *dual* networks ``D: HR -> LR`` and asks that
``D(P(x))`` gives the LR image back (a closed loop):

    L = sum_i  L_P(P(x_i), y_i) + lambda * L_D(D(P(x_i)), x_i),   lambda = 0.1, L1 losses.

The primal network is U-Net-like and works on the bicubic-upsampled input:

* bicubic upsampling of the LR image to the HR size (inside the model), mean shift, and a
  conv 3x3 head;
* ``log2(scale)`` down blocks: a stride-2 conv 3x3 + LeakyReLU(0.2) and a conv 3x3 that
  doubles the channels;
* as many up blocks: ``n_blocks`` RCABs (residual channel attention blocks), a x2
  pixel-shuffle upsampler and a 1x1 conv, whose output is concatenated with the down
  path's features of the same size;
* a conv 3x3 "tail" after the bottleneck and after every up block, so the network gives
  an image at every scale: LR size, x2, ..., x scale.

Each dual network is a stride-2 conv 3x3 (+ LeakyReLU) and a conv 3x3 that maps the
output at one scale to the next smaller scale. DRN-S has 16 base features and 30 RCABs
per up block at x4 (4.8M parameters) and 8 features at x8 (5.4M); DRN-L has 20 features
and 40 RCABs at x4 (9.8M), 10 and 36 at x8 (10.0M); the x8 settings are those of the
authors' released code. Those counts are the primal network's; each dual network adds
54 F parameters (864 for DRN-S at x4).

The loss follows the authors' released code: the primal L1 term covers every output
(HR target for the last, MATLAB-bicubic downscales of the HR image for the intermediate
ones, the LR input for the smallest), the dual L1 term covers every dual network. The
bicubic upsampling inside the model is PyTorch's (as in the reference code); it is part
of the network, not of the evaluation protocol. Channel attention pools over the whole
image, so tiled inference (``chop_forward``) is only approximately equal to a full
forward pass for this model.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .base import ModelSpec, SRModel
from .common import RCAB, MeanShift, Upsampler, conv

DUAL_WEIGHT = 0.1  # lambda of the training objective


def loss(model: DRN, net_input: torch.Tensor, hr: torch.Tensor, dual_weight: float = DUAL_WEIGHT) -> torch.Tensor:
    """Primal L1 at every scale + ``dual_weight`` x dual L1 (released-code form)."""
    from srlib.imresize import imresize  # imported lazily: only the loss needs it

    outputs = model.forward_all(net_input)
    phases = len(outputs) - 1
    # targets[k] is the image at level phases - k (smallest first), like the outputs.
    with torch.no_grad():
        middle = [imresize(hr, scale=1 / 2**level) for level in range(phases - 1, 0, -1)]
    targets = [net_input] + middle + [hr]
    for output, target in zip(outputs, targets):
        if output.shape != target.shape:
            raise ValueError(
                f"DRN output {tuple(output.shape)} does not match target {tuple(target.shape)}: "
                f"the HR size must be {model.scale} times the LR size"
            )
    primal = sum(F.l1_loss(output, target.to(output.dtype)) for output, target in zip(outputs, targets))
    dual = sum(F.l1_loss(down, target.to(down.dtype)) for down, target in zip(model.dual(outputs), targets[:-1]))
    return primal + dual_weight * dual


def close_loop(model: DRN, lr: torch.Tensor) -> torch.Tensor:
    """``D(P(x))``: super-resolve ``lr``, then take the result back down through every dual network."""
    image = model(lr)
    for dual in reversed(model.dual_models):  # the last dual network takes the largest image
        image = dual(image)
    return image


def unpaired_loss(model: DRN, lr: torch.Tensor) -> torch.Tensor:
    """The closed-loop loss of an LR image without its HR partner: L1 of ``D(P(x))`` against ``x``."""
    return F.l1_loss(close_loop(model, lr), lr)


def semi_supervised_loss(unpaired, ratio: float, batch_size: int = 16, dual_weight: float = DUAL_WEIGHT) -> Callable:
    """A ``loss_fn(model, net_input, hr)`` for :func:`srlib.train.fit` that mixes paired and unpaired data.

    A batch of ``batch_size`` images holds ``round(ratio * batch_size)`` unpaired LR patches, drawn
    here from the dataset ``unpaired`` (its HR halves are never used), and the paired batch that
    ``fit`` gives (of the other ``batch_size - n_unpaired``: give ``fit`` that batch size). Per image,
    as in the paper's semi-supervised objective, a paired image costs ``L_P + dual_weight * L_D`` and
    an unpaired one ``dual_weight * L_D``.

    The unpaired patches are drawn from torch's global generator, which ``fit`` seeds and keeps in
    its checkpoints, so a resumed run draws what the uninterrupted one would. Under torchrun every
    process draws the same indices for the whole step and takes its own part, as ``fit`` does with
    the paired batch: the processes train on different unpaired patches.
    """
    n_unpaired = round(ratio * batch_size)

    def mixed(model: DRN, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if n_unpaired < batch_size and net_input.shape[0] != batch_size - n_unpaired:
            raise ValueError(f"semi_supervised_loss({ratio}, batch_size={batch_size}) expects paired batches of "
                             f"{batch_size - n_unpaired}, got {net_input.shape[0]}: give fit "
                             f"batch_size={batch_size - n_unpaired}")
        paired = loss(model, net_input, hr, dual_weight) if n_unpaired < batch_size else 0.0
        if n_unpaired == 0:
            return paired
        rank, processes = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        indices = torch.randint(len(unpaired), (processes * n_unpaired,)).tolist()  # the whole step's draw
        lr, _ = unpaired.batch(indices[rank * n_unpaired: (rank + 1) * n_unpaired])
        share = n_unpaired / batch_size
        return (1 - share) * paired + share * dual_weight * unpaired_loss(model, lr.to(net_input.device))

    return mixed


SPEC = ModelSpec(
    name="drn",
    paper_name="DRN",
    paper=(
        "Y. Guo, J. Chen, J. Wang, Q. Chen, J. Cao, Z. Deng, Y. Xu, M. Tan. Closed-loop "
        "Matters: Dual Regression Networks for Single Image Super-Resolution. CVPR 2020."
    ),
    scales=(4, 8),
    input="lr",
    channels=3,
    # A value given as {scale: value} is picked for the scale being built. The x8 networks use
    # fewer base features because the bottleneck has 2^3 times as many channels.
    sizes={
        "paper": {"n_feats": {4: 16, 8: 8}, "n_blocks": 30},  # DRN-S
        "large": {"n_feats": {4: 20, 8: 10}, "n_blocks": {4: 40, 8: 36}},  # DRN-L
        # DRN-S with 8 RCABs per up block instead of 30: 1.53M parameters at x4, a third of the time.
        "small": {"n_feats": {4: 16, 8: 8}, "n_blocks": 8},
        "quick": {"n_feats": {4: 8, 8: 4}, "n_blocks": 2},  # two RCABs per up block
    },
    size_notes={
        "paper": "DRN-S: 16 base features and 30 RCABs per up block (x4); 8 and 30 (x8)",
        "large": "DRN-L: 20 base features and 40 RCABs (x4); 10 and 36 (x8)",
        "small": "DRN-S's features with 8 RCABs per up block instead of 30",
        "quick": "8 base features (x4) or 4 (x8), 2 RCABs per up block",
    },
    paper_params={"paper": {4: 4_800_000, 8: 5_400_000}, "large": {4: 9_800_000, 8: 10_000_000}},
    loss=loss,
    description="U-Net-like primal network on the bicubic-upsampled input with RCAB up blocks and outputs at "
                "every scale, plus dual networks mapping each output back down; L1 + 0.1 L1(dual).",
)


def down_block(in_channels: int, hidden: int, out_channels: int, negative_slope: float = 0.2) -> nn.Sequential:
    """Halve the resolution: stride-2 conv 3x3 + LeakyReLU, then conv 3x3 (no biases)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1, bias=False),
        nn.LeakyReLU(negative_slope, inplace=True),
        nn.Conv2d(hidden, out_channels, 3, padding=1, bias=False),
    )


class DRN(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 4, n_feats: int = 16, n_blocks: int = 30, reduction: int = 16):
        super().__init__(scale)
        channels = self.in_channels
        self.phases = phases = int(math.log2(self.scale))
        # The primal network P. Its first layer is the bicubic upsampling to the HR size.
        self.upsample_input = nn.Upsample(scale_factor=self.scale, mode="bicubic", align_corners=False)
        self.sub_mean = MeanShift(sign=-1)
        self.add_mean = MeanShift(sign=+1)
        self.head = conv(channels, n_feats, 3)

        # Level k has resolution HR / 2^k and, on the way down, n_feats * 2^k channels.
        width = lambda k: n_feats * 2**k  # noqa: E731  (channels at level k)
        self.down = nn.ModuleList(down_block(width(k), width(k), width(k + 1)) for k in range(phases))

        # Up block from level k+1 to level k, for k = phases-1 down to 0. Its input is the
        # bottleneck (width(phases)) or a concatenation of two width(k+1) tensors.
        self.up = nn.ModuleList()
        for k in reversed(range(phases)):
            up_channels = width(phases) if k == phases - 1 else 2 * width(k + 1)
            self.up.append(nn.Sequential(
                *(RCAB(up_channels, 3, reduction) for _ in range(n_blocks)),
                Upsampler(2, up_channels),
                nn.Conv2d(up_channels, width(k), 1),
            ))

        # One image-producing conv for the bottleneck and one after each up block.
        self.tails = nn.ModuleList([conv(width(phases), channels, 3)])
        for k in reversed(range(phases)):
            self.tails.append(conv(2 * width(k), channels, 3))

        # The dual networks D: dual_models[i] maps the output at level phases-1-i down one level.
        self.dual_models = nn.ModuleList(down_block(channels, n_feats, channels) for _ in range(phases))

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images at every scale, smallest first: ``[LR size, x2, ..., x scale]``."""
        self.check_input(x)
        features = self.head(self.sub_mean(self.upsample_input(x)))
        skips = []
        for down in self.down:
            skips.append(features)
            features = down(features)
        outputs = [self.add_mean(self.tails[0](features))]
        for up, tail, skip in zip(self.up, self.tails[1:], reversed(skips)):
            features = torch.cat([up(features), skip], dim=1)
            outputs.append(self.add_mean(tail(features)))
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]

    def dual(self, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Map every output but the smallest one scale down: ``D(P(x))``."""
        return [dual(output) for dual, output in zip(self.dual_models, outputs[1:])]

    def primal_parameters(self):
        """Parameters of the primal network only (the count the paper reports)."""
        return (p for name, p in self.named_parameters() if not name.startswith("dual_models."))
