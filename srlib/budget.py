"""One knob, ``SRLIB_BUDGET``, that scales every notebook's training.

Every notebook trains its models under one of three budgets, from "a minute on a laptop
CPU" to "the schedule of the paper". The reader picks one with the environment variable
``SRLIB_BUDGET``; each notebook states what the budget changes for its model::

    budget = get_budget(quick=dict(steps=400), paper=dict(steps=1_000_000))
    recipe = budget.recipe("fsrcnn", 3, lr=1e-3)   # the budget's network, steps, batch and patches
    model, history = train(recipe, data=recipe.dataset(images), **budget.bookkeeping())

and shows the three side by side with :func:`budget_table`.

``SRLIB_MAX_STEPS=N`` caps every training at N steps and keeps everything else of the budget
(network, data, patch sizes, evaluations): a smoke test of the whole notebook at any budget in
minutes. A capped run is an interrupted one, not a shorter one: its schedule is the budget's, and
what it reaches says nothing about the budget's results, so the notebooks check only what does not
depend on training when it is set (:attr:`Budget.capped`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .recipe import Recipe
from .table import table
from .train import step_cap

__all__ = ["BUDGET_NAMES", "Budget", "budget", "get_budget", "all_budgets", "budget_table", "BudgetTable"]

BUDGET_NAMES = ("quick", "gpu", "paper")
# Each lab's budgets counted in multiply-accumulates and estimated in T4 minutes (benchmarks/budgets.py).
COSTS_FILE = Path(__file__).with_name("budget_costs.json")


@dataclass(frozen=True)
class Budget:
    """How much compute a notebook spends on training.

    Attributes:
        name: "quick", "gpu" or "paper".
        model_size: the ``size`` passed to the model builder: "quick" (slimmer network)
            or "paper" (the published architecture).
        steps: number of optimizer steps.
        batch_size: training patches per step.
        patch_size: side of the high-resolution training patch, in HR pixels
            (the LR patch is ``patch_size // scale``).
        eval_every: validate every this many steps (one point of the PSNR curve).
        checkpoint_every: save a checkpoint every this many steps; an interruption loses
            at most this much work.
        amp: mixed precision: None = automatic (on for CUDA only), True or False to force.
        num_workers: DataLoader worker processes (0 = load in the training process).
        meant_for: one line saying what hardware and wall time the budget targets.
        extra: notebook-specific knobs, e.g. ``extra=dict(recursions=9)``.
    """

    name: str
    model_size: str
    steps: int
    batch_size: int
    patch_size: int
    eval_every: int
    checkpoint_every: int
    amp: bool | None
    num_workers: int
    meant_for: str
    extra: dict = field(default_factory=dict, hash=False)

    @property
    def capped(self) -> bool:
        """Whether ``SRLIB_MAX_STEPS`` stops this budget's trainings early (a smoke test)."""
        cap = step_cap()
        return cap is not None and cap < self.steps

    @property
    def calibrated(self) -> bool:
        """Whether the notebook's calibrated checks apply: they were measured at the quick budget, in full."""
        return self.name == "quick" and not self.capped

    @property
    def label(self) -> str:
        """How figures and tables name a run of this budget, e.g. "quick, 300 steps"."""
        return f"{self.name}, {self.steps:,} steps" + (f" (capped at {step_cap():,})" if self.capped else "")

    def skip_calibrated(self) -> None:
        """Say, in one line, that a notebook's calibrated checks do not apply to this run, and why."""
        print(f"Calibrated checks skipped: they hold for the quick budget run in full; this run is {self.label}.")

    def recipe(self, model: str, scale: int, **fields) -> Recipe:
        """This budget's run of ``model``: its size, steps, batch and patch, at a constant rate unless
        ``fields`` (any of :class:`srlib.recipe.Recipe`'s) say otherwise."""
        return Recipe(model, self.model_size, scale, steps=self.steps, batch_size=self.batch_size,
                      patch_size=self.patch_size, **{"lr_schedule": None, **fields})

    def bookkeeping(self) -> dict:
        """What this budget decides beyond the recipe: validation and checkpoint intervals, precision,
        loader processes (keyword arguments of :func:`srlib.recipe.train` and :func:`srlib.train.fit`)."""
        return dict(eval_every=self.eval_every, checkpoint_every=self.checkpoint_every, amp=self.amp,
                    num_workers=self.num_workers)

    def fit_kwargs(self) -> dict:
        """The keyword arguments of :func:`srlib.train.fit` this budget decides."""
        return dict(steps=self.steps, batch_size=self.batch_size, **self.bookkeeping())


# The defaults below are starting points; notebooks override what matters for their model.
# - quick: the slim model on 48-pixel patches (48 is divisible by the scales 2, 3 and 4),
#   a few hundred steps, fp32, no worker processes (forking workers costs more than it
#   saves on a 2-core machine).
# - gpu: the *published* architecture on a shortened schedule, so the notebook shows the
#   real network, partially trained. Mixed precision on, two loader workers (Colab-class).
# - paper: the published architecture and schedule, in fp32 as the papers trained.
DEFAULT_BUDGETS = {
    "quick": Budget(name="quick", model_size="quick", steps=300, batch_size=16, patch_size=48,
                    eval_every=50, checkpoint_every=100, amp=False, num_workers=0,
                    meant_for="2-core CPU, a minute or two"),
    "gpu": Budget(name="gpu", model_size="paper", steps=5_000, batch_size=16, patch_size=96,
                  eval_every=500, checkpoint_every=500, amp=None, num_workers=2,
                  meant_for="Colab-class GPU (T4), about 10 minutes (estimated by count)"),
    "paper": Budget(name="paper", model_size="paper", steps=300_000, batch_size=16,
                    patch_size=96, eval_every=5_000, checkpoint_every=5_000, amp=False,
                    num_workers=4, meant_for="the paper's schedule: hours to days on a GPU"),
}


def budget() -> str:
    """Name of the active budget: ``$SRLIB_BUDGET``, else "gpu" with CUDA, else "quick"."""
    name = os.environ.get("SRLIB_BUDGET", "").strip().lower()
    if not name:
        return "gpu" if torch.cuda.is_available() else "quick"
    if name not in BUDGET_NAMES:
        raise ValueError(f"SRLIB_BUDGET={name!r} is not a budget; "
                         f"valid values are {', '.join(BUDGET_NAMES)}")
    return name


def all_budgets(**per_budget: dict) -> dict[str, Budget]:
    """All three budgets with the notebook's overrides applied, keyed by name."""
    unknown = set(per_budget) - set(BUDGET_NAMES)
    if unknown:
        raise ValueError(f"unknown budget(s) {sorted(unknown)}; valid are {', '.join(BUDGET_NAMES)}")
    field_names = {f.name for f in dataclasses.fields(Budget)} - {"name"}
    budgets = {}
    for name in BUDGET_NAMES:
        overrides = dict(per_budget.get(name) or {})
        wrong = set(overrides) - field_names
        if wrong:
            raise TypeError(f"Budget has no field(s) {sorted(wrong)}; fields are "
                            f"{sorted(field_names)} (put notebook-specific knobs in extra=dict(...))")
        budgets[name] = dataclasses.replace(DEFAULT_BUDGETS[name], **overrides)
    return budgets


def get_budget(name: str | None = None, **per_budget: dict) -> Budget:
    """The active :class:`Budget`, with per-budget overrides from the notebook.

    Example::

        budget = get_budget(quick=dict(steps=400), gpu=dict(steps=20_000),
                            paper=dict(steps=1_000_000, batch_size=64))

    ``name`` forces a budget (default: :func:`budget`, i.e. ``$SRLIB_BUDGET``).
    """
    if name is None:
        name = budget()
    elif name not in BUDGET_NAMES:
        raise ValueError(f"{name!r} is not a budget; valid values are {', '.join(BUDGET_NAMES)}")
    chosen = all_budgets(**per_budget)[name]
    cap = step_cap()
    if cap is not None:
        print(f"SRLIB_MAX_STEPS={cap}: every training stops after {cap:,} steps (budget {name}: {chosen.steps:,}); "
              "checks that depend on training are skipped.")
    return chosen


class BudgetTable:
    """The three budgets side by side, the active one marked.

    Displays as an HTML table in a notebook and as aligned text elsewhere; ``rows`` holds
    the plain values (first row is the header).
    """

    def __init__(self, budgets: dict[str, Budget], active: str, minutes: dict[str, float] | None = None):
        self.budgets, self.active = budgets, active
        names = list(budgets)
        header = ["setting"] + [n + (" (active)" if n == active else "") for n in names]
        fields = [f.name for f in dataclasses.fields(Budget) if f.name not in ("name", "extra")]
        rows = [[f] + [self._format(getattr(budgets[n], f)) for n in names] for f in fields]
        extra_keys = sorted({k for b in budgets.values() for k in b.extra})
        rows += [[k] + [self._format(budgets[n].extra.get(k, "-")) for n in names] for k in extra_keys]
        if minutes:
            rows.append(["T4 minutes (estimate)"] + [f"{minutes[n]:,.1f}" if n in minutes else "-" for n in names])
        self.rows = [header] + rows

    @staticmethod
    def _format(value: Any) -> str:
        if value is None:
            return "auto (on with CUDA)"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    def __repr__(self) -> str:
        return (table(self.rows[0], self.rows[1:])
                + f"\nActive budget: {self.active} (set SRLIB_BUDGET to one of {', '.join(BUDGET_NAMES)})")

    def _repr_html_(self) -> str:
        return table(self.rows[0], self.rows[1:], html=True, marked_column=1 + list(self.budgets).index(self.active),
                     title=f"Training budgets (active: {self.active}; set SRLIB_BUDGET to {', '.join(BUDGET_NAMES)})")


def estimated_minutes(lab: str) -> dict[str, float]:
    """A lab's estimated minutes on a T4 per budget, counted by ``benchmarks/budgets.py`` ({} if not counted)."""
    if not COSTS_FILE.exists():
        return {}
    costs = json.loads(COSTS_FILE.read_text(encoding="utf-8"))["labs"].get(lab, {})
    return {name: row["t4_minutes"] for name, row in costs.items()}


def budget_table(active: str | None = None, lab: str | None = None, **per_budget: dict) -> BudgetTable:
    """Show what each budget means for this notebook; takes the same overrides as get_budget.

    ``lab`` (the chapter's folder, e.g. "edsr") adds the estimated T4 minutes of each budget."""
    active = active or budget()
    if active not in BUDGET_NAMES:
        raise ValueError(f"{active!r} is not a budget; valid values are {', '.join(BUDGET_NAMES)}")
    return BudgetTable(all_budgets(**per_budget), active, estimated_minutes(lab) if lab else None)
