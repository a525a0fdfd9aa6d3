"""One small training loop shared by every notebook of the book.

Read this file top to bottom; it is organised in the order you meet the ideas:

1. Devices and seeding: where the tensors live and how runs are made repeatable.
2. Budgets: one knob (the ``SRLIB_BUDGET`` environment variable) that scales every
   notebook from "a minute on a laptop CPU" to "the schedule of the paper".
3. History: what a training run remembers (loss per step, validation PSNR).
4. Checkpoints: saving and loading a run so that it can be resumed exactly.
5. ``fit``: the training loop itself.
6. ``train_or_load`` and ``load_model``: what notebooks call so that re-running
   a cell does not retrain a model that is already trained.

Typical use in a notebook::

    budget = get_budget(quick=dict(steps=400), gpu=dict(steps=20_000))
    model = build("fsrcnn", scale=3, size=budget.model_size)
    model, history = train_or_load(model, "checkpoints/fsrcnn_x3.pt", data,
                                   loss_fn=spec("fsrcnn").loss, lr=1e-3,
                                   **budget.fit_kwargs())
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = [
    "pick_device", "seed_everything",
    "BUDGET_NAMES", "Budget", "budget", "get_budget", "all_budgets", "budget_table",
    "History", "mse_loss", "fit",
    "save_checkpoint", "load_checkpoint", "load_model", "train_or_load",
]

# -----------------------------------------------------------------------------
# 1. Devices and seeding


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to train on: CUDA if present, then Apple's MPS, then the CPU.

    ``prefer`` ("cpu", "cuda", "cuda:1", "mps" or a ``torch.device``) overrides the
    automatic choice; asking for a device this machine does not have is an error rather
    than a silent fall-back, so that a "GPU" run never quietly crawls on the CPU.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {str(device)!r} was requested but CUDA is not available")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError("device 'mps' was requested but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int) -> None:
    """Seed every random number generator a training run touches.

    Python's ``random``, NumPy's global generator and PyTorch (CPU and every CUDA
    device) each have their own state; data augmentation may use any of them.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# -----------------------------------------------------------------------------
# 2. Budgets
#
# Every notebook trains its models under one of three budgets. The reader picks one with
# the environment variable SRLIB_BUDGET; each notebook states what the budget changes for
# its model, e.g. get_budget(quick=dict(steps=400), paper=dict(steps=1_000_000)).

BUDGET_NAMES = ("quick", "gpu", "paper")


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

    def fit_kwargs(self) -> dict:
        """The keyword arguments of :func:`fit` this budget decides."""
        return dict(steps=self.steps, batch_size=self.batch_size, eval_every=self.eval_every,
                    checkpoint_every=self.checkpoint_every, amp=self.amp,
                    num_workers=self.num_workers)


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
                  meant_for="Colab-class GPU, about 10 minutes"),
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
    return all_budgets(**per_budget)[name]


class BudgetTable:
    """The three budgets side by side, the active one marked.

    Displays as an HTML table in a notebook and as aligned text elsewhere; ``rows`` holds
    the plain values (first row is the header).
    """

    def __init__(self, budgets: dict[str, Budget], active: str):
        self.budgets, self.active = budgets, active
        names = list(budgets)
        header = ["setting"] + [n + (" (active)" if n == active else "") for n in names]
        fields = [f.name for f in dataclasses.fields(Budget) if f.name not in ("name", "extra")]
        rows = [[f] + [self._format(getattr(budgets[n], f)) for n in names] for f in fields]
        extra_keys = sorted({k for b in budgets.values() for k in b.extra})
        rows += [[k] + [self._format(budgets[n].extra.get(k, "-")) for n in names] for k in extra_keys]
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
        widths = [max(len(row[i]) for row in self.rows) for i in range(len(self.rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in self.rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"Active budget: {self.active} (set SRLIB_BUDGET to one of {', '.join(BUDGET_NAMES)})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape
        active_col = 1 + list(self.budgets).index(self.active)

        def cell(tag: str, text: str, col: int) -> str:
            style = ' style="background:#fff3c4;font-weight:bold"' if col == active_col else ""
            return f"<{tag}{style}>{escape(text)}</{tag}>"

        head = "".join(cell("th", text, i) for i, text in enumerate(self.rows[0]))
        body = "".join("<tr>" + "".join(cell("td", text, i) for i, text in enumerate(row)) + "</tr>"
                       for row in self.rows[1:])
        caption = (f"Training budgets (active: <b>{escape(self.active)}</b>; "
                   f"set SRLIB_BUDGET to {', '.join(BUDGET_NAMES)})")
        return f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def budget_table(active: str | None = None, **per_budget: dict) -> BudgetTable:
    """Show what each budget means for this notebook; takes the same overrides as get_budget."""
    active = active or budget()
    if active not in BUDGET_NAMES:
        raise ValueError(f"{active!r} is not a budget; valid values are {', '.join(BUDGET_NAMES)}")
    return BudgetTable(all_budgets(**per_budget), active)


# -----------------------------------------------------------------------------
# 3. History


@dataclass
class History:
    """What a training run records. Everything is plain Python, so it round-trips through JSON.

    Attributes:
        steps: step number (1-based) of every optimizer step.
        loss: training loss at each step (unsmoothed; plots smooth it).
        lr: learning rate used at each step (of the first parameter group).
        val: (step, validation PSNR in dB) pairs.
        seconds: wall-clock training time, summed over a run and its resumptions.
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, step: int, loss: float, lr: float) -> None:
        self.steps.append(step)
        self.loss.append(loss)
        self.lr.append(lr)

    @property
    def last_psnr(self) -> float | None:
        return self.val[-1][1] if self.val else None

    @property
    def best_psnr(self) -> float | None:
        return max(p for _, p in self.val) if self.val else None

    def to_dict(self) -> dict:
        return {"steps": list(self.steps), "loss": list(self.loss), "lr": list(self.lr),
                "val": [[int(s), float(p)] for s, p in self.val], "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(steps=[int(s) for s in d.get("steps", [])],
                   loss=[float(v) for v in d.get("loss", [])],
                   lr=[float(v) for v in d.get("lr", [])],
                   val=[(int(s), float(p)) for s, p in d.get("val", [])],
                   seconds=float(d.get("seconds", 0.0)))

    def __repr__(self) -> str:
        psnr = f", last PSNR {self.last_psnr:.2f} dB" if self.val else ""
        loss = f", last loss {self.loss[-1]:.4g}" if self.loss else ""
        return f"History({len(self.steps)} steps{loss}{psnr}, {self.seconds:.1f} s)"


# -----------------------------------------------------------------------------
# 4. Checkpoints
#
# A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads with
# torch.load(weights_only=True), which cannot execute code hidden in a downloaded file.
# It holds everything needed to continue a run bit for bit: weights, optimizer and AMP
# scaler state, the step, the history and the state of every random number generator.

CHECKPOINT_FORMAT = "srlib-checkpoint"
CHECKPOINT_VERSION = 1


def _plain(obj: Any) -> Any:
    """Tuples to lists, NumPy scalars to numbers, str subclasses to str: simple to compare and store."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str):
        return str(obj)  # e.g. torch.__version__ is a str subclass that weights_only refuses
    return obj


def _identity(model: torch.nn.Module) -> tuple[str, dict, int | None]:
    """(name, config, scale) of a model: what must match between a model and its checkpoint."""
    name = getattr(model, "srlib_name", type(model).__name__)
    config = _plain(dict(getattr(model, "srlib_config", {}) or {}))
    scale = getattr(model, "scale", None)
    return name, config, (int(scale) if scale is not None else None)


def _label(name: str, scale: int | None) -> str:
    return f"{name} x{scale}" if scale is not None else name


def _check_same_model(ckpt: dict, model: torch.nn.Module, path: str) -> None:
    name, config, scale = _identity(model)
    held = (ckpt["model_name"], ckpt["model_config"], ckpt["scale"])
    if held[0] != name or held[2] != scale:
        raise ValueError(f"checkpoint {path!r} holds {_label(held[0], held[2])}, "
                         f"model is {_label(name, scale)}")
    if held[1] != config:
        keys = sorted(set(held[1]) | set(config))
        differ = [k for k in keys if held[1].get(k, "<unset>") != config.get(k, "<unset>")]
        ckpt_side = ", ".join(f"{k}={held[1].get(k, '<unset>')}" for k in differ)
        model_side = ", ".join(f"{k}={config.get(k, '<unset>')}" for k in differ)
        raise ValueError(f"checkpoint {path!r} holds {_label(name, scale)} with {ckpt_side}, "
                         f"model is {_label(name, scale)} with {model_side}")


def _rng_states() -> dict:
    """The state of every random generator, as tensors and plain numbers (weights_only-safe)."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    states = {
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if _mps_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def _set_rng_states(states: dict) -> None:
    py = states["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = states["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["gauss"]))
    torch.set_rng_state(states["torch"].cpu())
    # GPU generators only come back on a machine with the same number of GPUs.
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    if "mps" in states and _mps_available():
        torch.mps.set_rng_state(states["mps"].cpu())


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    step: int = 0, history: History | None = None,
                    facts: dict | None = None) -> None:
    """Write a checkpoint of ``model`` (and optionally its training state) to ``path``.

    The file is first written to ``path + ".tmp"`` and then renamed over ``path``: a rename
    is atomic, so a crash or Ctrl-C during saving leaves the previous checkpoint intact
    instead of a half-written file.
    """
    path = os.fspath(path)
    name, config, scale = _identity(model)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": name,
        "model_config": config,
        "scale": scale,
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scaler_state": scaler.state_dict() if scaler is not None else None,
        "step": int(step),
        "history": (history or History()).to_dict(),
        "rng": _rng_states(),
        "facts": _plain(dict(facts or {})),
    }
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())  # make sure the bytes are on disk before the rename
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (safely: ``weights_only=True``).

    If ``model`` is given, check that the checkpoint was made for the same model (name,
    config and scale) and load the weights into it. Returns the checkpoint dict: keys
    ``model_name, model_config, scale, model_state, optimizer_state, scaler_state, step,
    history (a dict; History.from_dict rebuilds it), rng, facts``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}: train the model first "
                                f"(fit(..., checkpoint=path) or train_or_load) or check the path")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path!r} could not be read as an srlib checkpoint (it was not written "
                         f"by srlib.train.save_checkpoint, or is damaged): {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r} is a PyTorch file but not an srlib checkpoint "
                         f"(expected a dict with format={CHECKPOINT_FORMAT!r})")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path!r} has checkpoint version {ckpt['version']}; this srlib reads "
                         f"up to version {CHECKPOINT_VERSION} (update srlib)")
    if model is not None:
        _check_same_model(ckpt, model, path)
        model.load_state_dict(ckpt["model_state"])
    return ckpt


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a model from its checkpoint alone (architecture from the stored name and config).

    The model is returned in eval mode; its training history is ``model.srlib_history``.
    """
    from srlib.models import rebuild  # imported here: the model zoo is only needed for this

    ckpt = load_checkpoint(path, map_location=map_location)
    model = rebuild(ckpt["model_name"], ckpt["model_config"])
    model.load_state_dict(ckpt["model_state"])
    model.srlib_history = History.from_dict(ckpt["history"])
    return model.eval()


# -----------------------------------------------------------------------------
# 5. The training loop


def mse_loss(model: torch.nn.Module, net_input: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
    """Default loss: mean squared error between ``model(net_input)`` and the target.

    The target is the last element of the batch, so this works both for (net_input, hr)
    pairs and for (net_input, lr, hr) triples.
    """
    return F.mse_loss(model(net_input), rest[-1])


class _EndlessShuffle(Sampler[int]):
    """Dataset indices forever: epoch after epoch, each a fresh permutation.

    The permutation of epoch ``e`` depends only on ``(seed, e)``, not on a generator that
    has been running since the start. That is what lets a resumed run jump straight to
    step ``k``: it starts at index ``k * batch_size`` of the stream without replaying it.
    Like ``drop_last=True``, the tail of each permutation that does not fill a whole batch
    is skipped, so every batch comes from a single epoch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_batch: int = 0):
        self.n, self.batch_size, self.seed, self.start_batch = n, batch_size, seed, start_batch
        self.batches_per_epoch = n // batch_size

    def __iter__(self) -> Iterator[int]:
        epoch, batch = divmod(self.start_batch, self.batches_per_epoch)
        while True:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.n, generator=generator)
            end = self.batches_per_epoch * self.batch_size
            for chunk_start in range(batch * self.batch_size, end, 4096):  # no giant Python list
                yield from order[chunk_start: min(chunk_start + 4096, end)].tolist()
            epoch, batch = epoch + 1, 0


def _make_optimizer(optimizer: str | Callable, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    if callable(optimizer):  # e.g. lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)
        return optimizer(model.parameters())
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    raise ValueError(f"optimizer must be 'adam', 'sgd' or a callable params -> Optimizer, got {optimizer!r}")


def _lr_factor(lr_schedule: None | str | Callable, steps: int, milestones, gamma: float) -> Callable[[int], float]:
    """A function: number of steps already taken -> multiplier of the base learning rate.

    The learning rate is a pure function of the step (no scheduler object with its own
    state), so a resumed run gets exactly the rate it would have had.
    """
    if lr_schedule is None:
        return lambda done: 1.0
    if callable(lr_schedule):
        return lr_schedule
    if lr_schedule == "step":  # multiply by gamma at each milestone (EDSR: halve every 200k)
        if not milestones:
            raise ValueError('lr_schedule="step" needs milestones=[step, ...] (and gamma)')
        return lambda done: gamma ** sum(done >= m for m in milestones)
    if lr_schedule == "cosine":  # smooth decay from the base rate towards 0 at the last step
        return lambda done: 0.5 * (1.0 + math.cos(math.pi * done / steps))
    raise ValueError(f"lr_schedule must be None, 'step', 'cosine' or a callable step -> factor, "
                     f"got {lr_schedule!r}")


def _clip_gradients(optimizer: torch.optim.Optimizer, clip_grad: float, clip_mode: str) -> None:
    if clip_mode == "norm":  # rescale all gradients together so their L2 norm <= clip_grad
        params = [p for g in optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, clip_grad)
    elif clip_mode == "value":  # clamp every gradient entry to [-clip_grad, clip_grad]
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_value_(group["params"], clip_grad)
    elif clip_mode == "adjustable":
        # VDSR's adjustable clipping: clamp entries to [-theta/lr, theta/lr]. The step taken,
        # lr * gradient, is then at most theta, whatever the learning rate; this is what lets
        # VDSR start with a large rate (0.1) without diverging.
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_value_(group["params"], clip_grad / group["lr"])
    else:
        raise ValueError(f"clip_mode must be 'norm', 'value' or 'adjustable', got {clip_mode!r}")


class _DeferInterrupt:
    """Turn Ctrl-C (or a notebook's stop button) into a request honoured between steps.

    Stopping half-way through an optimizer step would leave weights and step counter out of
    sync; instead the loop finishes the step, saves a checkpoint and then raises
    KeyboardInterrupt. Pressing Ctrl-C a second time interrupts immediately.
    """

    def __enter__(self) -> "_DeferInterrupt":
        self.requested = False
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:  # signal handlers can only be set from the main thread
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)


def _validate(model: torch.nn.Module, validate: Callable[[torch.nn.Module], float]) -> float:
    """Run the validation callable in eval mode without gradients, then back to training."""
    model.eval()
    try:
        with torch.no_grad():
            return float(validate(model))
    finally:
        model.train()


def progress_bar(**kwargs):
    """A tqdm bar: a widget in Jupyter when ipywidgets is installed, plain text otherwise."""
    import warnings

    with warnings.catch_warnings():
        # Without ipywidgets tqdm.auto warns, then falls back to a text bar, which is fine.
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(**kwargs)


def fit(model: torch.nn.Module, data: Dataset, *, steps: int,
        loss_fn: Callable[..., torch.Tensor] | None = None,
        lr: float = 1e-3, batch_size: int = 16, optimizer: str | Callable = "adam",
        lr_schedule: None | str | Callable[[int], float] = None,
        milestones: list[int] | None = None, gamma: float = 0.5,
        clip_grad: float | None = None, clip_mode: str = "norm",
        amp: bool | None = None,
        validate: Callable[[torch.nn.Module], float] | None = None, eval_every: int | None = None,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
        resume: bool = True, device: str | torch.device | None = None, seed: int = 0,
        progress: bool = True, num_workers: int = 0, desc: str | None = None) -> History:
    """Train ``model`` for exactly ``steps`` optimizer steps and return its :class:`History`.

    Args:
        model: the network; it is moved to ``device`` and left in eval mode at the end.
        data: a Dataset of (net_input, hr) pairs, (C,h,w) and (C,H,W) float tensors. It is
            reshuffled every epoch (seeded) and cycled for as many epochs as ``steps`` needs.
        steps: number of optimizer steps (batches), not epochs.
        loss_fn: ``loss_fn(model, *batch) -> scalar``, i.e. ``loss_fn(model, net_input, hr)``
            for pairs, or ``loss_fn(model, net_input, lr, hr)`` for datasets yielding
            triples (the signature of the model registry's losses). Default: MSE.
        lr, optimizer: base learning rate; "adam", "sgd" (momentum 0.9), or a callable
            ``params -> Optimizer`` for anything else (per-layer rates, weight decay...).
        lr_schedule: None (constant), "step" (multiply by ``gamma`` at each of
            ``milestones``), "cosine" (decay to 0 over ``steps``) or a callable
            ``steps_done -> factor`` of the base rate (steps_done counts from 0).
        clip_grad, clip_mode: gradient clipping threshold (None = off) and how to apply it:
            "norm" (total L2 norm), "value" (each entry) or "adjustable" (VDSR: each entry
            to ``clip_grad / current lr``).
        amp: mixed precision. None = on for CUDA (float16 with a gradient scaler), off
            elsewhere; True on a CPU uses bfloat16 autocast.
        validate: callable ``model -> PSNR``; run (in eval mode, without gradients) every
            ``eval_every`` steps and at the last step. Default eval_every: steps // 10.
        checkpoint: file to save to every ``checkpoint_every`` steps (default steps // 10),
            at the end, and when interrupted with Ctrl-C. With ``resume`` an existing
            checkpoint is continued from its step. A crash loses at most one interval.
        device: see :func:`pick_device`. seed: seeds all generators and the data order.
        progress: show a progress bar (loss and last PSNR; nothing else is printed per step).
        num_workers: DataLoader workers. With 0, a resumed run reproduces an uninterrupted
            run exactly; with workers, augmentation that draws from the global generators
            restarts its random stream on resume (datasets whose item ``i`` is a pure function
            of ``i``, like :class:`srlib.data.PatchDataset`, stay exact either way).

    Interrupting: Ctrl-C (or a notebook's stop button) lets the current step finish, saves
    a checkpoint and raises KeyboardInterrupt; calling ``fit`` again with the same checkpoint
    continues exactly where it stopped. Any other exception saves nothing (the state may be
    broken, e.g. by NaNs); the last periodic checkpoint is left intact.
    """
    # --- setup -------------------------------------------------------------------------
    device = pick_device(device)
    loss_fn = loss_fn or mse_loss
    eval_every = eval_every or max(1, steps // 10)
    checkpoint_every = checkpoint_every or max(1, steps // 10)
    checkpoint = os.fspath(checkpoint) if checkpoint is not None else None
    use_amp = (device.type == "cuda") if amp is None else bool(amp)
    # float16 needs a gradient scaler to keep small gradients from underflowing to zero;
    # bfloat16 (what CPUs support) has float32's exponent range and does not.
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    if len(data) < batch_size:
        raise ValueError(f"the dataset has {len(data)} items, fewer than batch_size={batch_size}")

    model.to(device).train()
    opt = _make_optimizer(optimizer, model, lr)
    base_lrs = [group["lr"] for group in opt.param_groups]
    lr_factor = _lr_factor(lr_schedule, steps, milestones, gamma)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)
    seed_everything(seed)
    history, step = History(), 0

    facts = dict(steps=steps, lr=lr, batch_size=batch_size,
                 optimizer=optimizer if isinstance(optimizer, str) else "custom",
                 lr_schedule=lr_schedule if not callable(lr_schedule) else "custom",
                 milestones=milestones, gamma=gamma, clip_grad=clip_grad, clip_mode=clip_mode,
                 amp=use_amp, device=str(device), seed=seed, torch_version=torch.__version__)

    def save(at_step: int) -> None:
        save_checkpoint(checkpoint, model, optimizer=opt, scaler=scaler, step=at_step,
                        history=history, facts=dict(facts, seconds=history.seconds,
                                                    finished=at_step >= steps))

    if checkpoint and resume and os.path.exists(checkpoint):
        # Read onto the CPU; load_state_dict then copies weights and optimizer state to the
        # device of the parameters.
        ckpt = load_checkpoint(checkpoint, model)  # checks it is the same model, loads weights
        if ckpt["optimizer_state"] is not None:
            opt.load_state_dict(ckpt["optimizer_state"])
        if ckpt["scaler_state"]:
            scaler.load_state_dict(ckpt["scaler_state"])
        history, step = History.from_dict(ckpt["history"]), ckpt["step"]
        _set_rng_states(ckpt["rng"])
        if progress and step < steps:
            print(f"Resuming from step {step:,} of {steps:,} ({checkpoint})")
        # A run interrupted while validating resumes with that validation still owed.
        owed = (validate is not None and 0 < step <= steps
                and (step % eval_every == 0 or step == steps)
                and (not history.val or history.val[-1][0] != step))
        if owed:
            history.val.append((step, _validate(model, validate)))
            save(step)
    if step >= steps:
        model.eval()
        return history

    # A private generator for the loader (it seeds worker processes), so creating the
    # loader does not consume the global torch generator.
    loader = DataLoader(data, batch_size=batch_size, drop_last=True, num_workers=num_workers,
                        sampler=_EndlessShuffle(len(data), batch_size, seed, start_batch=step),
                        generator=torch.Generator().manual_seed(seed),
                        pin_memory=device.type == "cuda")
    batches = iter(loader)

    bar = progress_bar(total=steps, initial=step, desc=desc or _identity(model)[0], unit="step",
               leave=True, disable=not progress)
    seconds_before, started = history.seconds, time.perf_counter()
    at_boundary, saved_step = True, step  # at_boundary: weights, step and history agree

    # --- the loop ----------------------------------------------------------------------
    try:
        with _DeferInterrupt() as interrupt:
            while step < steps:
                at_boundary = False
                batch = [t.to(device, non_blocking=True) for t in next(batches)]
                for group, base_lr in zip(opt.param_groups, base_lrs):
                    group["lr"] = base_lr * lr_factor(step)

                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    loss = loss_fn(model, *batch)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"loss became {loss_value} at step {step + 1}; try a lower lr or "
                        f"clip_grad (the last checkpoint, if any, is before this step)")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if clip_grad is not None:
                    scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
                    _clip_gradients(opt, clip_grad, clip_mode)
                scaler.step(opt)
                scaler.update()

                step += 1
                history.record(step, loss_value, opt.param_groups[0]["lr"])
                at_boundary = True

                if validate and (step % eval_every == 0 or step == steps):
                    history.val.append((step, _validate(model, validate)))
                history.seconds = seconds_before + time.perf_counter() - started
                if checkpoint and (step % checkpoint_every == 0 or step == steps):
                    save(step)
                    saved_step = step

                recent = history.loss[-20:]  # a short running mean reads better than raw noise
                postfix = {"loss": f"{sum(recent) / len(recent):.4g}"}
                if history.val:
                    postfix["psnr"] = f"{history.val[-1][1]:.2f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)

                if interrupt.requested:
                    raise KeyboardInterrupt(f"training interrupted at step {step}")
    except KeyboardInterrupt:
        # Save what we have if the state is consistent; a rerun resumes from here.
        if checkpoint and at_boundary and saved_step != step:
            history.seconds = seconds_before + time.perf_counter() - started
            save(step)
        raise
    finally:
        bar.close()
        del batches  # shuts down worker processes, if any

    model.eval()
    return history


# -----------------------------------------------------------------------------
# 6. Train, or load what was trained before


def train_or_load(model: torch.nn.Module, path: str | os.PathLike,
                  data: Dataset | Callable[[], Dataset] | None = None, *,
                  steps: int | None = None, train: Callable[[torch.nn.Module], History] | None = None,
                  overwrite: bool = False, **fit_kwargs) -> tuple[torch.nn.Module, History]:
    """Load ``model`` from ``path`` if it was already trained there, otherwise train and save it.

    "Already trained" means: the checkpoint is for the same model (name, config, scale) and
    holds at least ``steps`` steps. A checkpoint with fewer steps (an interrupted run, or a
    shorter budget) is continued from where it stopped. A checkpoint for a *different*
    model is an error, not silently overwritten (pass ``overwrite=True`` to replace it).

    Args:
        data: the training Dataset, or a zero-argument function building it, so that
            preparing the data is skipped when nothing needs training.
        steps: steps to train (required unless ``train`` is given).
        train: a custom training function ``model -> History`` used instead of :func:`fit`;
            its result is saved to ``path`` afterwards.
        fit_kwargs: everything else is passed to :func:`fit`.
    Returns:
        ``(model, history)`` with the model in eval mode.
    """
    path = os.fspath(path)
    if os.path.exists(path):
        ckpt = load_checkpoint(path)
        try:
            _check_same_model(ckpt, model, path)
            same_model = True
        except ValueError:
            if not overwrite:
                raise
            same_model = False
        if same_model and ckpt["step"] >= (steps or 0):
            model.load_state_dict(ckpt["model_state"])
            history = History.from_dict(ckpt["history"])
            name, _, scale = _identity(model)
            minutes = history.seconds / 60
            print(f"Loaded {_label(name, scale)} from {path} "
                  f"({ckpt['step']:,} steps, trained in {minutes:.1f} min); skipping training.")
            return model.eval(), history
        if not same_model:
            os.remove(path)

    if train is not None:
        history = train(model)
        last_step = history.steps[-1] if history.steps else (steps or 0)
        save_checkpoint(path, model, step=last_step, history=history,
                        facts=dict(steps=last_step, finished=True, seconds=history.seconds,
                                   torch_version=torch.__version__))
        return model.eval(), history

    if steps is None:
        raise TypeError("train_or_load needs steps=... (or a custom train=function)")
    if data is None:
        raise TypeError("train_or_load needs the training data (a Dataset or a function building one)")
    if callable(data) and not isinstance(data, Dataset):
        data = data()
    history = fit(model, data, steps=steps, checkpoint=path, resume=True, **fit_kwargs)
    return model.eval(), history
