"""One training run, declared once and run one way.

A :class:`Recipe` says what a run is: the network (model, size, scale), the data (the sets, the
patch and batch sizes), the optimiser and its schedule, the loss, the steps and the seed.
:func:`train` runs it. The command line (``python -m srlib train``), the reference models
(:data:`srlib.reference.RECIPES`), the benchmarks and the labs (each from its budget,
:meth:`srlib.budget.Budget.recipe`) build their runs this way::

    recipe = Recipe("espcn", "paper", 3, steps=30_000, batch_size=32, patch_size=51, lr=2e-3)
    model, history = train(recipe, checkpoint="checkpoints/espcn-x3.pt")

The data follow the model's declaration (:func:`srlib.models.spec`): Y or RGB patches, LR or
bicubic-upsampled input; the loss is the model's paper's unless the recipe names another.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
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
    optimizer: str | Callable = "adam"  # or a function parameters -> Optimizer (SRCNN's per-layer rates)
    lr_schedule: str | None = "cosine"  # None: a constant rate
    milestones: tuple[int, ...] | None = None  # "step" schedule: the rate times gamma at each
    gamma: float = 0.5
    clip_grad: float | None = None
    clip_mode: str = "norm"  # "value", or "adjustable": VDSR's bound, clip_grad / current rate
    loss: Callable | None = field(default=None, compare=False)
    options: dict = field(default_factory=dict, hash=False)  # the builder's other arguments, e.g. depth=5

    @property
    def schedule(self) -> str:
        optimizer = {"adam": "Adam (betas 0.9, 0.999)", "sgd": "SGD"}.get(self.optimizer, "a custom optimizer")
        if self.lr_schedule is None:
            return f"{optimizer}, constant rate {self.lr:g} for {self.steps:,} steps"
        return f"{optimizer}, rate {self.lr:g} decayed to 0 on a {self.lr_schedule} over {self.steps:,} steps"

    def record(self) -> dict:
        """The recipe as provenance records it (JSON), functions by their names; no loss: the model's own."""
        fields = {f.name: getattr(self, f.name) for f in dataclass_fields(self)}  # a loss closure is not copied
        fields["options"] = dict(self.options)
        for key in ("loss", "optimizer"):
            if callable(fields.get(key)):
                fields[key] = _name(fields[key])
        if fields["loss"] is None:
            del fields["loss"]
        return fields

    def build(self) -> torch.nn.Module:
        """The network, with the initial weights the recipe's seed gives it."""
        from .device import seed_everything
        from .models import build

        seed_everything(self.seed)
        return build(self.model, self.scale, size=self.size, **self.options)

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
          checkpoint: str | os.PathLike | None = None, **bookkeeping):
    """Run ``recipe``: build its network (unless ``model`` is given, built by :meth:`Recipe.build`),
    cut its patches (unless ``data`` is given) and train with :func:`srlib.train.fit`.

    With a ``checkpoint`` file, a finished run of this recipe there is loaded instead (its patches
    are not even cut), a shorter one is continued and one of another model or settings is refused:
    :func:`srlib.train.train_or_load`. ``bookkeeping`` is what the run's result does not depend on:
    ``validate``, ``eval_every``, ``checkpoint_every``, ``device``, ``progress``, ``desc``, ...
    Returns ``(model, history)``."""
    from .train import fit, train_or_load

    model = recipe.build() if model is None else model
    settings = dict(steps=recipe.steps, loss_fn=recipe.loss, lr=recipe.lr, batch_size=recipe.batch_size,
                    optimizer=recipe.optimizer, lr_schedule=recipe.lr_schedule, milestones=recipe.milestones,
                    gamma=recipe.gamma, clip_grad=recipe.clip_grad, clip_mode=recipe.clip_mode, seed=recipe.seed)
    if checkpoint is not None:
        patches = (lambda: recipe.dataset(root=root)) if data is None else data
        return train_or_load(model, checkpoint, patches, **settings, **bookkeeping)
    history = fit(model, recipe.dataset(root=root) if data is None else data, **settings, **bookkeeping)
    return model, history


def _name(function: Callable) -> str:
    """``module.function``; a ``functools.partial`` with its fixed arguments, e.g. ``loss(penalty='l2')``."""
    inner = getattr(function, "func", function)
    fixed = ", ".join(f"{key}={value!r}" for key, value in getattr(function, "keywords", {}).items())
    return f"{inner.__module__}.{inner.__qualname__}" + (f"({fixed})" if fixed else "")
