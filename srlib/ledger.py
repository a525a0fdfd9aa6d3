"""What a notebook's computations cost, counted while it runs.

With ``SRLIB_COST_LEDGER=FILE`` set, :func:`srlib.train.fit` and :func:`srlib.evaluate.evaluate`
append one JSON line per call to FILE with the multiply-accumulates (MACs) of what they compute,
counted by hooks on the real forward passes (the convolution and linear layers, as
:mod:`srlib.profile` counts them). A training records the MACs of one step's loss and of one
validation, and how many steps and validations it was asked for: a run that ``SRLIB_MAX_STEPS``
stops after two steps still records what its whole budget costs. ``benchmarks/budgets.py`` turns
a notebook's ledger into minutes on a GPU.
"""
from __future__ import annotations

import contextlib
import json
import os
from typing import Iterator

from torch import nn

from .profile import LayerCall, _macs_of

__all__ = ["active", "measuring", "record"]

_open = 0  # measurements under way: an evaluation inside a training's validation is not recorded twice


def active() -> bool:
    """Whether ``SRLIB_COST_LEDGER`` names a ledger file."""
    return bool(os.environ.get("SRLIB_COST_LEDGER"))


class Count:
    """MACs counted so far, and whether this is the outermost measurement (the one to record)."""

    def __init__(self, outermost: bool):
        self.macs, self.outermost = 0, outermost


@contextlib.contextmanager
def measuring(model: nn.Module | None) -> Iterator[Count]:
    """Count the MACs of ``model``'s layer calls inside the block (nothing without a ledger)."""
    global _open
    count = Count(outermost=_open == 0)
    if not active() or model is None:
        yield count
        return

    def hook(module, inputs, output):
        count.macs += _macs_of(LayerCall("", module, tuple(inputs[0].shape), tuple(output.shape)))

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    _open += 1
    try:
        yield count
    finally:
        _open -= 1
        for handle in handles:
            handle.remove()


def record(**entry) -> None:
    """Append ``entry`` as one JSON line to the ledger file."""
    path = os.environ.get("SRLIB_COST_LEDGER")
    if path:
        with open(path, "a", encoding="utf-8") as ledger:
            ledger.write(json.dumps(entry) + "\n")
