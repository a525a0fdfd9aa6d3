"""What every claim experiment shares: the scale and how a network is seeded, built and trained."""
from __future__ import annotations

import torch

from srlib.device import seed_everything
from srlib.models import build, spec
from srlib.train import fit

SCALE = 3


def train(name: str, size: str, data, seed: int, **fit_kwargs) -> torch.nn.Module:
    """Seed, build and train one network as the labs do (seeded before building: same initial weights).

    ``build={...}`` passes constructor arguments; everything else goes to :func:`srlib.train.fit`.
    """
    seed_everything(seed)
    model = build(name, SCALE, size=size, **fit_kwargs.pop("build", {}))
    fit_kwargs.setdefault("loss_fn", spec(name).loss)
    fit(model, data, seed=seed, progress=False, device="cpu", **fit_kwargs)
    return model
