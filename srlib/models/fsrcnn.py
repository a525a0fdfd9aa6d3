"""FSRCNN: a fast SRCNN that works on the low-resolution image.

Chao Dong, Chen Change Loy, Xiaoou Tang. "Accelerating the Super-Resolution Convolutional
Neural Network", ECCV 2016.

SRCNN spends almost all its computation on the upsampled image. FSRCNN (Sec. 3.2)
works on the LR image and only enlarges at the very end, with five parts:

1. feature extraction: conv 5x5, ``d`` filters;
2. shrinking: conv 1x1, ``s`` filters (``s << d``) to make the mapping cheap;
3. non-linear mapping: ``m`` layers of conv 3x3 with ``s`` filters;
4. expanding: conv 1x1 back to ``d`` filters;
5. deconvolution: a 9x9 transposed convolution with stride ``scale`` producing the HR
   image.

Every convolution except the last is followed by a PReLU (one slope per channel).
FSRCNN(d=56, s=12, m=4) is the paper's main model, FSRCNN-s is (32, 5, 1). The loss is
the mean squared error (Sec. 3.2).

Because all layers but the deconvolution work at LR resolution and are shared by all
scales, the paper trains a x3 model and transfers it to x2/x4 by replacing and fine-tuning
only the deconvolution (Sec. 3.4). :meth:`FSRCNN.replace_deconvolution` and
:meth:`FSRCNN.freeze_all_but_deconvolution` implement that trick.

Borders and the deconvolution's position follow the authors' test code (``FSRCNN.m`` and
``deconv.m`` of their FSRCNN_test package), whose geometry their released weights need:

* ``padding_mode="replicate"`` (the default) repeats the border pixel outwards (MATLAB's
  ``imfilter(..., 'same', 'replicate')``) and, before the deconvolution, extends the LR
  features by one replicated pixel, as ``deconv.m`` does, so the outermost HR pixels also
  receive the contribution of the pixel beyond the edge. With the released weights zero
  padding (``padding_mode="zeros"``) costs 0.4-0.9 dB on Set5;
* the transposed convolution's window: HR pixel ``o`` takes tap ``o - scale*i + deconv_offset``
  from LR pixel ``i``. ``deconv.m`` uses 4 at every scale, and the default (``deconv_offset=None``)
  does too, except at x3: the authors' x3 evaluation (``demo_FSRCNN.m`` with ``shave_x3``)
  compares their output one pixel up and left of the ground truth, so their x3 networks work as
  if the offset were 3, and so does srlib's (:mod:`srlib.authors` builds theirs the same way).
  The book's networks are thus built exactly as the authors' released ones at every scale. At
  x4 the window nearest the centre (``deconv_offset=3``) is one HR pixel away: the released x4
  model scores 26.2 dB in it instead of 30.7.

The paper's 12,464 parameters count weights only; biases and PReLU slopes add a few
hundred. The released models store one PReLU slope per layer; srlib keeps one per channel
(the paper's), and a converted model repeats the layer's slope.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelSpec, SRModel
from .common import conv


def loss(model: nn.Module, net_input: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error (Sec. 3.2)."""
    return F.mse_loss(model(net_input), hr)


SPEC = ModelSpec(
    name="fsrcnn",
    paper_name="FSRCNN",
    paper="C. Dong, C. C. Loy, X. Tang. Accelerating the Super-Resolution Convolutional Neural Network. ECCV 2016.",
    scales=(2, 3, 4),
    input="lr",
    channels=1,
    sizes={
        "paper": {"d": 56, "s": 12, "m": 4},
        "s": {"d": 32, "s": 5, "m": 1},  # FSRCNN-s, the paper's real-time variant
        # FSRCNN runs at LR resolution and is tiny: the CPU configuration is the paper's.
        "quick": {"d": 56, "s": 12, "m": 4},
    },
    size_notes={
        "paper": "FSRCNN(d=56, s=12, m=4)",
        "s": "FSRCNN-s(d=32, s=5, m=1), the real-time variant",
        "quick": "same as paper: FSRCNN runs at LR resolution and is tiny",
    },
    paper_params={"paper": 12_464, "s": 3_937},  # weights only, as the paper counts them
    loss=loss,
    description="Feature extraction, shrinking, mapping and expanding at LR resolution, "
                "then a 9x9 stride-`scale` deconvolution.",
)


def _deconvolution(d: int, channels: int, scale: int, context: int = 0, offset: int | None = None,
                   kernel_size: int = 9) -> nn.ConvTranspose2d:
    """Transposed conv whose output is exactly ``scale`` times its input before ``context`` extra
    LR pixels were added on each side; HR pixel ``o`` takes tap ``o - scale*i + offset`` from LR
    pixel ``i``: by default 4 (``deconv.m``), 3 at x3 (the authors' x3 evaluation). Initialised as in the
    paper."""
    if offset is None:
        offset = 3 if scale == 3 else 4
    # torch: HR pixel o takes tap o - scale*i' + padding from padded LR pixel i' = i + context, and
    # the output has (h + 2 context - 1) * scale - 2 * padding + kernel_size + output_padding pixels.
    padding = offset + scale * context
    output_padding = 2 * offset - kernel_size + scale
    if not 0 <= output_padding < scale:
        raise ValueError(f"deconv_offset {offset} cannot give a x{scale} output from a {kernel_size}x{kernel_size} "
                         f"kernel; use {kernel_size // 2}")
    layer = nn.ConvTranspose2d(d, channels, kernel_size, stride=scale, padding=padding, output_padding=output_padding)
    # The paper initialises the deconvolution with a small Gaussian (std 0.001).
    nn.init.normal_(layer.weight, std=0.001)
    nn.init.zeros_(layer.bias)
    return layer


class FSRCNN(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 3, d: int = 56, s: int = 12, m: int = 4, padding_mode: str = "replicate",
                 deconv_offset: int | None = None):
        super().__init__(scale)
        if padding_mode not in ("replicate", "zeros"):
            raise ValueError(f"padding_mode must be 'replicate' (the authors' test code) or 'zeros', "
                             f"got {padding_mode!r}")
        self.padding_mode, self.deconv_offset = padding_mode, deconv_offset
        channels = self.in_channels
        self.feature_extraction = nn.Sequential(conv(channels, d, 5, padding_mode=padding_mode), nn.PReLU(d))
        self.shrinking = nn.Sequential(conv(d, s, 1), nn.PReLU(s))
        mapping: list[nn.Module] = []
        for _ in range(m):
            mapping += [conv(s, s, 3, padding_mode=padding_mode), nn.PReLU(s)]
        self.mapping = nn.Sequential(*mapping)
        self.expanding = nn.Sequential(conv(s, d, 1), nn.PReLU(d))
        self.deconvolution = _deconvolution(d, channels, self.scale, self._context, deconv_offset)

    @property
    def _context(self) -> int:
        """LR pixels replicated on each side before the deconvolution (``deconv.m`` adds one)."""
        return 1 if self.padding_mode == "replicate" else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        features = self.feature_extraction(x)
        features = self.expanding(self.mapping(self.shrinking(features)))
        if self._context:
            features = F.pad(features, (self._context,) * 4, mode="replicate")
        return self.deconvolution(features)

    # --- the transfer trick of Sec. 3.4 -------------------------------------------------
    def replace_deconvolution(self, scale: int) -> FSRCNN:
        """Swap in a freshly initialised deconvolution for another ``scale``.

        All convolution layers keep their weights; ``self.scale`` and ``self.srlib_config``
        (used to rebuild checkpoints) follow the new scale.
        """
        scale = self.spec.check_scale(scale)
        old = self.deconvolution
        new = _deconvolution(old.in_channels, old.out_channels, scale, self._context, self.deconv_offset)
        self.deconvolution = new.to(old.weight.device, old.weight.dtype)
        self.scale = scale
        self.srlib_config["scale"] = scale
        return self

    def freeze_all_but_deconvolution(self, frozen: bool = True) -> list[nn.Parameter]:
        """Stop (or restart, with ``frozen=False``) gradients for every layer but the last.

        Returns the parameters that remain trainable, ready to give to an optimiser.
        """
        for name, parameter in self.named_parameters():
            if not name.startswith("deconvolution."):
                parameter.requires_grad_(not frozen)
        return [p for p in self.parameters() if p.requires_grad]


def replace_deconvolution(model: FSRCNN, scale: int, freeze: bool = True) -> FSRCNN:
    """Functional form of the transfer trick: new deconvolution for ``scale``, rest frozen."""
    model.replace_deconvolution(scale)
    if freeze:
        model.freeze_all_but_deconvolution()
    return model
