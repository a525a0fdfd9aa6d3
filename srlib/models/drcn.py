"""DRCN: a deeply-recursive network with recursive supervision.

Jiwon Kim, Jung Kwon Lee, Kyoung Mu Lee. "Deeply-Recursive Convolutional Network for Image
Super-Resolution", CVPR 2016.

DRCN makes a network deep without adding parameters by applying the *same* convolution
many times (Sec. 3.1):

* embedding net ``f1``: two 3x3 conv layers (256 filters, ReLU) turn the bicubic-upsampled
  Y image ``x`` into features ``H_0``;
* inference net ``f2``: one 3x3 conv layer with 256 filters and ReLU, applied ``D = 16``
  times with shared weights: ``H_d = max(0, W * H_{d-1} + b)``;
* reconstruction net ``f3``: two 3x3 conv layers (256 filters + ReLU, then 1 filter) map
  features back to an image.

The advanced model (Sec. 3.2) adds two things that make it trainable:

* recursive supervision: the (shared) reconstruction net is applied after *every*
  recursion, ``y_d = x + f3(H_d)`` (the ``x +`` is the skip connection from the input), and
  the final output is a learned weighted average ``y = sum_d w_d y_d``;
* the loss (Sec. 3.3) supervises both:
  ``L = alpha * sum_d 1/(2D) ||y - y_d||^2 + (1 - alpha) * 1/2 ||y - y_hat||^2``
  (+ weight decay, which belongs to the optimiser).

``alpha`` weights the intermediate ("companion") objective. The paper lowers it as
training goes on, starting from the intermediate predictions, which are easy to train,
and ending on the final ensemble; the text does not pin down a schedule, and public
re-implementations decay it linearly from 1 to 0. :func:`loss` does the same: ``alpha =
max(0, 1 - step / alpha_decay_steps)`` where ``step`` counts training-mode loss calls
(stored in the model's state, so it survives checkpoints). Set ``model.alpha`` to a
number, or pass ``alpha=`` to :func:`loss`, to override the schedule.

Both squared errors are summed over the pixels of each patch and averaged over the batch
(the ``||.||^2`` of the paper and its MatConvNet code; :func:`~srlib.models.common.euclidean_loss`).

Initialisation (Sec. 4.1): the recursive convolution starts as the identity, all weights
zero except the centre tap that connects a channel to itself, and zero biases. Since the
hidden state is non-negative after the embedding's ReLU, the untrained recursion then
passes it on unchanged, and its norm neither grows nor shrinks over 16 recursions. He
initialisation there (``recursive_init="he"``) applies the same random matrix 16 times, and the
norm of ``H_d`` swings with it (in the lab it falls to about half and recovers). The other
layers use He initialisation.

With 256 filters DRCN has 1,775,105 convolution parameters (the paper's 1.77M) plus the
16 ensemble weights. Notes: there is no ReLU on the reconstructed residual (a ReLU there
could not produce the negative corrections the skip connection needs); the ensemble
weights start at ``1/D``.

Ablations (the paper's basic model of Sec. 3.1 and the two parts it adds): with
``recursive_supervision=False`` the reconstruction net runs once, after the last recursion,
and its prediction is the output (no ensemble weights; the loss is the final term alone);
with ``skip=False`` every prediction is ``f3(H_d)``, without the input added.
:meth:`DRCN.prediction` makes the model return one recursion's prediction ``y_d`` instead of
the ensemble, to measure it like any model.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from .base import ModelSpec, SRModel
from .common import conv, euclidean_loss


def loss(model: DRCN, net_input: torch.Tensor, hr: torch.Tensor, alpha: float | None = None) -> torch.Tensor:
    """Recursive-supervision loss (Sec. 3.3), without the weight-decay term.

    ``alpha`` defaults to ``model.current_alpha()``; a training-mode call with gradients
    enabled advances the schedule by one step.
    """
    if alpha is None:
        alpha = model.current_alpha()
        if model.training and torch.is_grad_enabled():
            model.supervision_step += 1
    predictions, final = model.forward_all(net_input)
    intermediate = sum(euclidean_loss(y_d, hr) for y_d in predictions) / len(predictions)
    final_term = euclidean_loss(final, hr)
    return alpha * intermediate + (1 - alpha) * final_term


SPEC = ModelSpec(
    name="drcn",
    paper_name="DRCN",
    paper=(
        "J. Kim, J. K. Lee, K. M. Lee. Deeply-Recursive Convolutional Network for Image "
        "Super-Resolution. CVPR 2016."
    ),
    scales=(2, 3, 4),
    input="upsampled",
    channels=1,
    sizes={
        "paper": {"n_feats": 256, "recursions": 16, "alpha_decay_steps": 10_000},
        # 16 filters, 8 recursions: ~7K parameters. DRCN's cost is in the recursions (every
        # one also runs the reconstruction net), so the width has to go down a lot for a CPU.
        "quick": {"n_feats": 16, "recursions": 8, "alpha_decay_steps": 100},
        "narrow": {"n_feats": 32, "recursions": 16, "alpha_decay_steps": 1_000},
    },
    size_notes={
        "paper": "256 filters, 16 recursions",
        "quick": "16 filters, 8 recursions (~7K parameters); alpha reaches 0 after 100 steps",
        "narrow": "32 filters, the paper's 16 recursions (28,369 parameters; the reference model's size)",
    },
    paper_params={"paper": 1_770_000},
    loss=loss,
    description="Embedding net, one 3x3 conv applied 16 times with shared weights, shared reconstruction "
                "after every recursion, learned ensemble.",
)


class DRCN(SRModel):
    spec = SPEC

    def __init__(self, scale: int = 3, n_feats: int = 256, recursions: int = 16, alpha_decay_steps: int = 10_000,
                 recursive_init: str = "identity", recursive_supervision: bool = True, skip: bool = True):
        if recursions < 1:
            raise ValueError(f"DRCN needs at least one recursion, got {recursions}")
        if recursive_init not in ("identity", "he"):
            raise ValueError(f"recursive_init must be 'identity' (the paper's) or 'he', got {recursive_init!r}")
        super().__init__(scale)  # bookkeeping only: the image size does not change
        channels = self.in_channels
        self.recursions = recursions
        self.recursive_supervision, self.skip = recursive_supervision, skip
        self.read_out: int | None = None  # None: the output is the ensemble (see prediction())
        self.alpha_decay_steps = alpha_decay_steps
        self.alpha: float | None = None  # None: follow the linear decay schedule
        self.embedding = nn.Sequential(  # embedding net f1
            conv(channels, n_feats, 3), nn.ReLU(inplace=True),
            conv(n_feats, n_feats, 3), nn.ReLU(inplace=True),
        )
        # Inference net f2: the one layer that is applied D times, H_d = max(0, W * H_{d-1} + b).
        self.recursive_conv = conv(n_feats, n_feats, 3)
        self.recursive_relu = nn.ReLU(inplace=True)
        self.reconstruction = nn.Sequential(  # reconstruction net f3, shared by all recursions
            conv(n_feats, n_feats, 3), nn.ReLU(inplace=True),
            conv(n_feats, channels, 3),
        )
        if recursive_supervision:
            self.ensemble_weights = nn.Parameter(torch.full((recursions,), 1.0 / recursions))
        # How many training steps the loss has seen; drives the alpha schedule.
        self.register_buffer("supervision_step", torch.zeros((), dtype=torch.long))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if recursive_init == "identity":
            with torch.no_grad():
                self.recursive_conv.weight.zero_()
                centre = self.recursive_conv.kernel_size[0] // 2
                self.recursive_conv.weight[range(n_feats), range(n_feats), centre, centre] = 1.0

    def _predict(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """One prediction ``y_d`` from the hidden state ``H_d``: the shared reconstruction net f3."""
        residual = self.reconstruction(hidden)
        return x + residual if self.skip else residual  # skip connection

    def forward_all(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Return ``([y_1, ..., y_D], y)``: every recursion's prediction and the ensemble.

        Without recursive supervision: ``([y_D], y_D)``, the basic model's single prediction."""
        self.check_input(x)
        hidden = self.embedding(x)
        predictions = []
        for d in range(1, self.recursions + 1):
            hidden = self.recursive_relu(self.recursive_conv(hidden))  # the same weights every time
            if self.recursive_supervision or d == self.recursions:
                predictions.append(self._predict(x, hidden))
        if not self.recursive_supervision:
            return predictions, predictions[-1]
        final = sum(w * y for w, y in zip(self.ensemble_weights, predictions))
        return predictions, final

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.read_out is None:
            return self.forward_all(x)[1]
        self.check_input(x)  # y_d alone: stop after recursion d
        hidden = self.embedding(x)
        for _ in range(self.read_out):
            hidden = self.recursive_relu(self.recursive_conv(hidden))
        return self._predict(x, hidden)

    @contextmanager
    def prediction(self, d: int) -> Iterator[DRCN]:
        """Inside ``with model.prediction(d):`` the model outputs ``y_d``, recursion ``d``'s prediction (1..D)."""
        if not 1 <= d <= self.recursions or (not self.recursive_supervision and d != self.recursions):
            first = 1 if self.recursive_supervision else self.recursions
            raise ValueError(f"this DRCN predicts after recursions {first}..{self.recursions}, not {d}")
        self.read_out = d
        try:
            yield self
        finally:
            self.read_out = None

    def current_alpha(self) -> float:
        """The alpha the loss will use now (see the module docstring)."""
        if self.alpha is not None:
            return float(self.alpha)
        if self.alpha_decay_steps <= 0:
            return 0.0
        return max(0.0, 1.0 - int(self.supervision_step) / self.alpha_decay_steps)
