"""One training run, declared once and run one way.

A :class:`Recipe` says what a run is: the network (model, size, scale), the data (the sets, the
patch and batch sizes), the optimiser and its schedule, the loss, the steps and the seed.
:func:`train` runs it. The command line (``python -m srlib train``), the reference models
(:data:`srlib.reference.RECIPES`) and the equal-compute benchmark build their runs this way::

    recipe = Recipe("espcn", "paper", 3, steps=30_000, batch_size=32, patch_size=51, lr=2e-3)
    model, history = train(recipe, checkpoint="checkpoints/espcn-x3.pt")

The data follow the model's declaration (:func:`srlib.models.spec`): Y or RGB patches, LR or
bicubic-upsampled input; the loss is the model's paper's unless the recipe names another.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

__all__ = ["Recipe", "train"]


@dataclass(frozen=True)
class Recipe:
    """What one training run is. ``loss=None`` trains with the model's own loss (its paper's)."""

    model: str
    size: str
    scale: int
    steps: int
    batch_size: int = 16
    patch_size: int = 48
    lr: float = 1e-3
    seed: int = 0
    scales: tuple[int, ...] | None = None  # several scales, one drawn per batch (MDSR); evaluated at ``scale``
    data: tuple[str, ...] = ("T91", "BSD200")  # sets under the data root; "embedded": the sample photographs
    optimizer: str = "adam"
    lr_schedule: str | None = "cosine"  # None: a constant rate
    loss: Callable | None = field(default=None, compare=False)

    @property
    def schedule(self) -> str:
        optimizer = "Adam (betas 0.9, 0.999)" if self.optimizer == "adam" else self.optimizer
        if self.lr_schedule is None:
            return f"{optimizer}, constant rate {self.lr:g} for {self.steps:,} steps"
        return f"{optimizer}, rate {self.lr:g} decayed to 0 on a {self.lr_schedule} over {self.steps:,} steps"

    def record(self) -> dict:
        """The recipe as provenance records it (JSON); a loss other than the model's by its name."""
        fields = asdict(self)
        loss = fields.pop("loss")
        return fields if loss is None else {**fields, "loss": f"{loss.__module__}.{loss.__qualname__}"}

    def build(self) -> torch.nn.Module:
        """The network, with the initial weights the recipe's seed gives it."""
        from .device import seed_everything
        from .models import build

        seed_everything(self.seed)
        return build(self.model, self.scale, size=self.size)

    def images(self, root: str | os.PathLike | None = None) -> dict:
        """The training images of the recipe's sets, named ``set/image``."""
        from .data import load_set, sample_images

        images = {}
        for name in self.data:
            found = sample_images("train") if name == "embedded" else load_set(name, root)
            images.update({f"{name}/{key}": image for key, image in found.items()})
        return images

    def dataset(self, images: dict | None = None, root: str | os.PathLike | None = None):
        """Patches of ``images`` (default: the recipe's sets) in the form the model takes."""
        from .data import PatchDataset
        from .models import spec

        model_spec = spec(self.model)
        return PatchDataset(self.images(root) if images is None else images, None if self.scales else self.scale,
                            scales=self.scales, patch_size=self.patch_size,
                            channels="y" if model_spec.channels == 1 else "rgb",
                            upsampled=model_spec.input == "upsampled", seed=self.seed)


def train(recipe: Recipe, *, model: torch.nn.Module | None = None, data=None, root: str | os.PathLike | None = None,
          **fit_options):
    """Run ``recipe``: build its network (unless ``model`` is given, built by :meth:`Recipe.build`),
    cut its patches (unless ``data`` is given) and train with :func:`srlib.train.fit`.

    ``fit_options`` are the run's bookkeeping, not its recipe: ``checkpoint``, ``validate``,
    ``eval_every``, ``device``, ``progress``, ... Returns ``(model, history)``."""
    from .train import fit

    model = recipe.build() if model is None else model
    data = recipe.dataset(root=root) if data is None else data
    history = fit(model, data, steps=recipe.steps, loss_fn=recipe.loss, lr=recipe.lr, batch_size=recipe.batch_size,
                  optimizer=recipe.optimizer, lr_schedule=recipe.lr_schedule, seed=recipe.seed, **fit_options)
    return model, history
