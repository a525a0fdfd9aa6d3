"""One small training loop shared by every notebook of the book.

Stripped of bookkeeping, :func:`fit` is the loop every course teaches: draw a batch, compute the
loss, backpropagate, step the optimizer. What long runs need besides (resuming, Ctrl-C that saves,
mixed precision, clipping, a learning-rate schedule, validation, a progress bar) sits in small
helpers below it. Notebooks call :func:`train_or_load`, which skips training when a matching
checkpoint exists. The arguments of ``fit``:

* ``data``: a Dataset of (net_input, hr) pairs, (C,h,w) and (C,H,W) float tensors, reshuffled every
  epoch (seeded) and cycled for as many epochs as ``steps`` (optimizer steps) needs. A dataset with
  a ``batch(indices)`` method, like :class:`srlib.data.PatchDataset`, is asked for whole batches.
* ``loss_fn(model, *batch) -> scalar``: ``(model, net_input, hr)`` for pairs. Default: the model's own loss
  (``spec(model.srlib_name).loss``) for a model built by srlib, else :func:`mse_loss`.
* ``lr``, ``optimizer``: base learning rate; "adam", "sgd" (momentum 0.9), or a callable
  ``params -> Optimizer`` for anything else (per-layer rates, weight decay...).
* ``lr_schedule``: None (constant), "step" (times ``gamma`` at each of ``milestones``), "cosine"
  (decay to 0 over ``steps``) or a callable ``steps_done -> factor`` of the base rate.
* ``clip_grad``, ``clip_mode``: clipping threshold (None = off); "norm" (total L2 norm), "value"
  (each entry) or "adjustable" (VDSR: each entry to ``clip_grad / current lr``).
* ``amp``: mixed precision; None = CUDA only (float16, gradient scaler); True on a CPU: bfloat16.
* ``validate``: ``model -> PSNR``, run in eval mode without gradients every ``eval_every`` steps
  (default steps // 10) and at the last; ``checkpoint``: a file saved every ``checkpoint_every``
  steps (default steps // 10), at the end and on Ctrl-C; with ``resume``, continued if it exists.
* ``device``: see :func:`srlib.device.pick_device`; ``seed`` seeds every generator and the data
  order; ``progress`` shows a bar labelled ``desc`` (default: the model's name).
* ``SRLIB_MAX_STEPS`` (environment): stops every run after that many steps, as an interruption
  would (validated and saved there; the schedule stays that of ``steps``): a smoke test of a
  notebook's whole path at any budget. :func:`train_or_load` treats a checkpoint that far as done.
* ``num_workers``: DataLoader workers. With 0 a resumed run reproduces an uninterrupted one
  exactly; with workers, augmentation drawing from the global generators restarts its stream on
  resume (datasets whose item ``i`` depends on ``i`` alone, like PatchDataset, stay exact).

Launched by ``torchrun --nproc_per_node=N``, fit trains in N processes with DistributedDataParallel
(:mod:`srlib.distributed`): ``batch_size`` is per process, a step learns from N x ``batch_size``
patches, and the learning rate is left as given.

Resuming continues the run the checkpoint records: asking for more ``steps`` extends it, but
changing a training setting (rate, batch size, optimizer, schedule, clipping, seed) or the data
(the images, patch size, scales and channels of a PatchDataset) is refused with what changed,
since the result would be neither the old run nor a new one. A cosine schedule is the exception
to extending: its rate at every step depends on the total, so a checkpoint trained with
``lr_schedule="cosine"`` continues only with the same ``steps``. Extending a finished cosine run
is refused rather than continued at the rate it ended with: that rate is about zero, so the
extra steps would learn nearly nothing, and restarting the cosine at the new total would jump
the rate back up to half the base rate; neither is the longer run that was asked for (train a
new run with the larger ``steps`` in another checkpoint file). While ``fit`` runs, the checkpoint
is locked (:func:`srlib.checkpoint.checkpoint_lock`): a second run on the same file, say a
notebook and a ``python -m srlib train``, is refused instead of interleaving with it.

Ctrl-C (or a notebook's stop button) lets the current step finish, saves a checkpoint and raises
KeyboardInterrupt; calling ``fit`` again continues exactly there. Any other exception saves nothing
(the state may be broken, e.g. by NaNs): a crash loses at most one checkpoint interval.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import os
import sys
import time
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from . import ledger
from .checkpoint import (
    check_same_model,
    checkpoint_lock,
    load_checkpoint,
    model_identity,
    model_label,
    save_checkpoint,
    set_rng_states,
)
from .device import pick_device, seed_everything
from .distributed import World, join, this_process
from .history import History
from .interrupt import DeferInterrupt
from .progress import progress_bar

__all__ = ["mse_loss", "fit", "train_or_load", "check_same_settings", "data_facts", "step_cap"]

# The facts a resumed run must share with the checkpoint (steps may grow, except under a cosine
# schedule). A fact an older checkpoint lacks is not compared; one process records no "processes".
RESUME_SETTINGS = ("lr", "batch_size", "optimizer", "lr_schedule", "milestones", "gamma", "clip_grad", "clip_mode",
                   "seed", "processes", "data", "patch_size", "data_scales", "channels", "upsampled")
_UNRECORDED = {"processes": 1}


def step_cap() -> int | None:
    """``$SRLIB_MAX_STEPS`` as a number of steps, or None when it is not set."""
    text = os.environ.get("SRLIB_MAX_STEPS", "").strip()
    if not text:
        return None
    try:
        cap = int(text.replace("_", ""))
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(f"SRLIB_MAX_STEPS={text!r} is not a positive whole number of steps; "
                         "set it to e.g. 2, or unset it to train in full")
    return cap


def data_facts(data: Dataset) -> dict:
    """What a run depends on in its data, for a dataset that holds its images (like PatchDataset):
    a fingerprint of the HR images, the patch size, the scales, the channels and the input kind.
    Other datasets give nothing to compare."""
    pairs = getattr(data, "pairs", None)
    if not isinstance(pairs, dict) or not pairs:
        return {}
    images = pairs[min(pairs)]  # the HR images are the same at every scale but for the mod-crop
    digest = hashlib.sha256()
    for _, hr in images:
        digest.update(f"{tuple(hr.shape)}|".encode())
        digest.update(hr.detach().cpu().contiguous().numpy().data)  # the bytes, without a copy
    return dict(data=f"{len(images)} images, sha256 {digest.hexdigest()[:16]}", patch_size=int(data.patch_size),
                data_scales=[int(s) for s in data.scales], channels=str(data.channels), upsampled=bool(data.upsampled))


def check_same_settings(recorded: dict, settings: dict, path: str | os.PathLike) -> None:
    """Raise ValueError, saying what changed, unless ``settings`` continue the run whose facts are ``recorded``."""
    # A checkpoint stores tuples (milestones) as lists.
    old, new = ({**_UNRECORDED, **{k: list(v) if isinstance(v, tuple) else v for k, v in facts.items()}}
                for facts in (recorded, settings))
    if (old.get("lr_schedule") == "cosine" and "steps" in old and "steps" in new and old["steps"] != new["steps"]
            and new.get("lr_schedule", "cosine") == "cosine"):
        raise ValueError(f"checkpoint {os.fspath(path)!r} was trained with a cosine schedule over "
                         f"steps={old['steps']}, this run asks for steps={new['steps']}: the rate of every step "
                         f"depends on the total, so it would jump instead of continuing; ask for "
                         f"steps={old['steps']} to continue or load it, or start a new run in another checkpoint file")
    changed = [key for key in RESUME_SETTINGS if key in old and key in new and old[key] != new[key]]
    if changed:
        raise ValueError(f"checkpoint {os.fspath(path)!r} was trained with "
                         f"{', '.join(f'{k}={old[k]}' for k in changed)}, this run asks for "
                         f"{', '.join(f'{k}={new[k]}' for k in changed)}; continue it with its own settings, "
                         "or start a new run in another checkpoint file")


def _check_data_scale(model: torch.nn.Module, facts: dict) -> None:
    """Refuse data cut for other scales than the model's, before a shape mismatch deep in the loss."""
    scale, scales = getattr(model, "scale", None), facts.get("data_scales")
    if scale is not None and scales and int(scale) not in scales:
        raise ValueError(f"the training data are made for x{', x'.join(map(str, scales))} but the model is "
                         f"x{scale}; build the PatchDataset with scale={scale}, or the model for the data's scale")


def mse_loss(model: torch.nn.Module, net_input: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
    """Default loss: mean squared error of ``model(net_input)`` against the batch's last element."""
    return F.mse_loss(model(net_input), rest[-1])


def own_loss(model: torch.nn.Module) -> Callable:
    """The loss the model's paper trains it with, from the registry; MSE for a model srlib did not build."""
    from .models import REGISTRY

    name = getattr(model, "srlib_name", None)
    return REGISTRY[name].loss if name in REGISTRY else mse_loss


def fit(model: torch.nn.Module, data: Dataset, *, steps: int, loss_fn: Callable | None = None, lr: float = 1e-3,
        batch_size: int = 16, optimizer: str | Callable = "adam", lr_schedule: str | Callable | None = None,
        milestones: list[int] | None = None, gamma: float = 0.5, clip_grad: float | None = None,
        clip_mode: str = "norm", amp: bool | None = None, validate: Callable | None = None,
        eval_every: int | None = None, checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
        resume: bool = True, device: str | torch.device | None = None, seed: int = 0, progress: bool = True,
        num_workers: int = 0, desc: str | None = None) -> History:
    """Train ``model`` for exactly ``steps`` optimizer steps (arguments: see the module docstring).

    Returns the run's :class:`History` and leaves the model in eval mode."""
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a whole number of optimizer steps, 0 or more; got {steps!r}")
    world = join(pick_device(device))  # one process, or one of torchrun's (then on its own GPU)
    update = _Update(model.to(world.device).train(), loss_fn or own_loss(model), world, steps, lr=lr,
                     optimizer=optimizer, lr_schedule=lr_schedule, milestones=milestones, gamma=gamma,
                     clip_grad=clip_grad, clip_mode=clip_mode, amp=amp)
    seed_everything(seed)
    facts = dict(batch_size=batch_size, device=str(world.device), seed=seed, **world.facts, **data_facts(data))
    _check_data_scale(model, facts)
    books = _Books(update, validate, eval_every, checkpoint, checkpoint_every, facts=facts, world=world)
    progress = progress and world.main  # one bar and one set of messages
    with checkpoint_lock(checkpoint) if checkpoint is not None and world.main else contextlib.nullcontext():
        history, step = books.resume(progress) if resume else (History(), 0)
        start, step_macs = step, None
        if step < books.stop:
            batches = _batches(data, batch_size, seed, step, num_workers, world)
            bar = progress_bar(total=steps, initial=step, desc=desc or model_identity(model)[0], unit="step",
                               leave=True, disable=not progress)
            consistent = True  # weights, step and history agree: safe to save
            try:
                with DeferInterrupt() as interrupt:
                    while step < books.stop:
                        consistent = False
                        with ledger.measuring(model if step == start else None) as counted:  # SRLIB_COST_LEDGER
                            loss, rate = update(next(batches), done=step)
                        step_macs = counted.macs if step == start else step_macs
                        step += 1
                        history.record(step, world.mean(loss), rate)  # over the processes, if several
                        consistent = True
                        books.validate_if_due(history, step)
                        books.save_if_due(history, step)
                        _show_progress(bar, history)
                        if world.any(interrupt.requested):  # every process stops at the same step
                            raise KeyboardInterrupt(f"training interrupted at step {step}")
            except KeyboardInterrupt:
                if consistent:  # save what we have; a rerun resumes from here
                    books.save(history, step, unless_saved=True)
                raise
            finally:
                bar.close()
                del batches  # shuts down worker processes, if any
            if ledger.active() and world.main:  # what the whole run costs, however early it stopped
                ledger.record(kind="train", model=model_identity(model)[0], desc=desc, steps=steps - start,
                              step_macs=step_macs, validations=books.validations(start),
                              validation_macs=books.validation_macs)
    model.eval()
    return history


def train_or_load(model: torch.nn.Module, path: str | os.PathLike, data: Dataset | Callable[[], Dataset] | None = None,
                  *, steps: int | None = None, train: Callable[[torch.nn.Module], History] | None = None,
                  overwrite: bool = False, **fit_kwargs) -> tuple[torch.nn.Module, History]:
    """Load ``model`` from ``path`` if it was trained there already, else train and save it.

    Trained already: the checkpoint is for the same model (name, config, scale), was trained
    with the same settings (rate, batch size, optimizer, schedule, clipping, seed: the
    ``fit_kwargs``, defaults included) and holds at least ``steps`` steps; one with fewer steps is
    continued (and then its data are checked too). A checkpoint of a *different* model or of
    other settings is an error unless ``overwrite=True``. ``data`` is a Dataset or a zero-argument
    function building it (not called when nothing needs training). ``train``, a function
    ``model -> History``, replaces :func:`fit`; ``fit_kwargs`` go to :func:`fit`.
    Returns ``(model, history)`` with the model in eval mode. Loading needs no lock (a checkpoint
    is replaced whole, by a rename), so a read-only checkpoint loads; training holds the
    checkpoint's lock from the last look at it to the last save, so two notebooks (or a notebook
    and a ``train`` command) cannot both train it. A finished cosine run asked for more steps is
    refused (see the module docstring).
    """
    path = os.fspath(path)
    settings = _settings_asked(fit_kwargs) if train is None else None
    trained = _load_if_trained(model, path, steps, overwrite, settings)
    if trained is not None:
        return trained
    with checkpoint_lock(path) if this_process().main else contextlib.nullcontext():
        trained = _load_if_trained(model, path, steps, overwrite, settings, locked=True)  # finished meanwhile?
        if trained is not None:
            return trained
        return _train_and_save(model, path, data, steps=steps, train=train, **fit_kwargs)


def _settings_asked(fit_kwargs: dict) -> dict:
    """The training settings :func:`fit` would record for these arguments, its defaults filled in."""
    defaults = {k: p.default for k, p in inspect.signature(fit).parameters.items() if p.default is not p.empty}
    asked = {**defaults, **fit_kwargs}
    settings = {k: asked[k] for k in RESUME_SETTINGS if k in asked}
    for key in ("optimizer", "lr_schedule"):  # recorded by name; a function as "custom"
        if callable(settings.get(key)):
            settings[key] = "custom"
    return settings


def _load_if_trained(model: torch.nn.Module, path: str, steps: int | None, overwrite: bool,
                     settings: dict | None, locked: bool = False) -> tuple[torch.nn.Module, History] | None:
    """``(model, history)`` loaded from ``path`` if it holds this model trained for ``steps`` with these
    ``settings``, else None. A checkpoint of another model or other settings is an error, unless it
    is to be overwritten (then, holding the lock, it is removed)."""
    if not os.path.exists(path):
        return None
    ckpt = load_checkpoint(path)
    try:
        check_same_model(ckpt, model, path)
        if settings is not None:  # a changed recipe under an old file name is not that recipe's result
            check_same_settings(ckpt.get("facts") or {}, settings, path)
    except ValueError:
        if not overwrite:
            raise
        if locked:
            os.remove(path)  # another model's checkpoint, replaced as asked
        return None
    if ckpt["step"] < min(steps or 0, step_cap() or math.inf):  # SRLIB_MAX_STEPS: a capped run stops there
        return None
    model.load_state_dict(ckpt["model_state"])
    history = History.from_dict(ckpt["history"])
    name, _, scale = model_identity(model)
    print(f"Loaded {model_label(name, scale)} from {path} ({ckpt['step']:,} steps, "
          f"trained in {history.seconds / 60:.1f} min); skipping training.")
    return model.eval(), history


def _train_and_save(model: torch.nn.Module, path: str, data, *, steps: int | None, train: Callable | None,
                    **fit_kwargs) -> tuple[torch.nn.Module, History]:
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


# ------------------------------------------------------------------- the pieces of fit, in order
class _Update:
    """One optimizer step: forward (autocast), backward, clipping, update at the scheduled rate."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable, world: World, steps: int, *, lr: float,
                 optimizer: str | Callable, lr_schedule: None | str | Callable, milestones: list[int] | None,
                 gamma: float, clip_grad: float | None, clip_mode: str, amp: bool | None):
        if not callable(optimizer) and optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam', 'sgd' or a callable params -> Optimizer, got {optimizer!r}")
        if clip_mode not in ("norm", "value", "adjustable"):
            raise ValueError(f"clip_mode must be 'norm', 'value' or 'adjustable', got {clip_mode!r}")
        device = world.device
        self.model, self.steps, self.device_type = model, steps, device.type
        self.loss = world.loss(model, loss_fn)  # loss_fn(model, *batch); under torchrun, through DDP
        self.optimizer = (optimizer(model.parameters()) if callable(optimizer)  # e.g. per-layer rates
                          else torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
                          else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.lr_factor = _lr_factor(lr_schedule, steps, milestones, gamma)
        self.clip_grad, self.clip_mode = clip_grad, clip_mode
        self.amp = (device.type == "cuda") if amp is None else bool(amp)
        # float16 needs a gradient scaler to keep small gradients from underflowing to zero;
        # bfloat16 (what CPUs support) has float32's exponent range and does not.
        self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp and self.amp_dtype == torch.float16)
        self.facts = dict(steps=steps, lr=lr, optimizer=optimizer if isinstance(optimizer, str) else "custom",
                          lr_schedule=lr_schedule if not callable(lr_schedule) else "custom", milestones=milestones,
                          gamma=gamma, clip_grad=clip_grad, clip_mode=clip_mode, amp=self.amp,
                          torch_version=torch.__version__)

    def __call__(self, batch: list[torch.Tensor], done: int) -> tuple[float, float]:
        """Take step ``done + 1`` on ``batch``; return its loss and learning rate."""
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * self.lr_factor(done)
        with torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp):
            loss = self.loss(*batch)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {done + 1}; try a lower lr or clip_grad "
                                     f"(the last checkpoint, if any, is before this step)")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            _clip_gradients(self.optimizer, self.clip_grad, self.clip_mode)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return value, self.optimizer.param_groups[0]["lr"]


def _lr_factor(lr_schedule: None | str | Callable, steps: int, milestones, gamma: float) -> Callable[[int], float]:
    """Steps taken -> factor of the base rate: a pure function, so a resumed run gets exactly its rate."""
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
    raise ValueError(f"lr_schedule must be None, 'step', 'cosine' or a callable step -> factor, got {lr_schedule!r}")


def _clip_gradients(optimizer: torch.optim.Optimizer, clip_grad: float, clip_mode: str) -> None:
    if clip_mode == "norm":  # rescale all gradients together so their L2 norm <= clip_grad
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip_grad)
        return
    # "value" clamps every entry to [-clip_grad, clip_grad]. VDSR's "adjustable" clipping clamps
    # to [-theta/lr, theta/lr]: the step taken, lr * gradient, is then at most theta whatever the
    # rate, which is what lets VDSR start at a large rate (0.1) without diverging.
    for group in optimizer.param_groups:
        limit = clip_grad / group["lr"] if clip_mode == "adjustable" else clip_grad
        torch.nn.utils.clip_grad_value_(group["params"], limit)


class _Books:
    """What fit does besides stepping: validating and saving every so many steps, timing, resuming."""

    def __init__(self, update: _Update, validate: Callable | None, eval_every: int | None,
                 path: str | os.PathLike | None, checkpoint_every: int | None, facts: dict, world: World):
        self.update, self.model, self.steps, self.validate = update, update.model, update.steps, validate
        self.stop = min(self.steps, step_cap() or self.steps)  # SRLIB_MAX_STEPS ends the run early
        self.world = world  # rank 0 validates, reads and writes; the others get what they need from it
        every = max(1, self.steps // 10)  # by default, ten times a run
        self.eval_every, self.checkpoint_every = eval_every or every, checkpoint_every or every
        self.path = os.fspath(path) if path is not None else None
        self.facts = dict(update.facts, **facts)
        self.saved_step, self.started = 0, time.perf_counter()
        self.validation_macs = 0  # of one validation, counted if SRLIB_COST_LEDGER is set

    def validations(self, start: int) -> int:
        """How many validations a run from step ``start`` to ``self.steps`` makes."""
        if not self.validate:
            return 0
        return self.steps // self.eval_every - start // self.eval_every + (self.steps % self.eval_every > 0)

    def due(self, step: int, every: int) -> bool:
        return step % every == 0 or step in (self.steps, self.stop)  # the last step always counts

    def validate_if_due(self, history: History, step: int) -> bool:
        """Validate at ``step`` (eval mode, no gradients) if due and not done yet; say whether it ran."""
        if not self.validate or not self.due(step, self.eval_every) or (history.val and history.val[-1][0] == step):
            return False
        self.model.eval()
        try:
            with torch.no_grad(), ledger.measuring(self.model) as counted:
                history.val.append((step, self.world.from_main(lambda: float(self.validate(self.model)))))
            self.validation_macs = self.validation_macs or counted.macs
        finally:
            self.model.train()
        return True

    def save_if_due(self, history: History, step: int) -> None:
        if self.due(step, self.checkpoint_every):
            self.save(history, step)

    def save(self, history: History, step: int, unless_saved: bool = False) -> None:
        history.seconds = time.perf_counter() - self.started
        if self.path is None or (unless_saved and step == self.saved_step):
            return
        if self.world.main:  # the bare model's weights: no "module." prefix
            save_checkpoint(self.path, self.model, optimizer=self.update.optimizer, scaler=self.update.scaler,
                            step=step, history=history,
                            facts=dict(self.facts, seconds=history.seconds, finished=step >= self.steps))
        self.world.barrier()  # the others wait until the file is complete
        self.saved_step = step

    def resume(self, progress: bool) -> tuple[History, int]:
        """History and step of the checkpoint, if any, with weights, optimizer and generators restored."""
        ckpt = self.world.from_main(self.read)  # rank 0 reads it; every process gets the same
        if ckpt is None:
            return History(), 0
        check_same_model(ckpt, self.model, self.path)
        check_same_settings(ckpt.get("facts") or {}, self.facts, self.path)
        if ckpt.get("version", 0) < 2 and self.world.main:
            print(f"note: {self.path} was written by an older srlib, whose checksum covers only the weights; "
                  "its optimizer state, history and random states are resumed unchecked", file=sys.stderr)
        self.model.load_state_dict(ckpt["model_state"])
        if ckpt["optimizer_state"] is not None:  # load_state_dict moves it to the parameters' device
            self.update.optimizer.load_state_dict(ckpt["optimizer_state"])
        if ckpt["scaler_state"]:
            self.update.scaler.load_state_dict(ckpt["scaler_state"])
        history, step = History.from_dict(ckpt["history"]), ckpt["step"]
        set_rng_states(ckpt["rng"])
        self.saved_step, self.started = step, time.perf_counter() - history.seconds  # time adds up
        if progress and step < self.steps:
            print(f"Resuming from step {step:,} of {self.steps:,} ({self.path})")
        if 0 < step <= self.steps and self.validate_if_due(history, step):  # interrupted while validating
            self.save(history, step)
        return history, step

    def read(self) -> dict | None:
        return load_checkpoint(self.path) if self.path is not None and os.path.exists(self.path) else None


def _batches(data: Dataset, batch_size: int, seed: int, start_batch: int, num_workers: int,
             world: World) -> Iterator[list[torch.Tensor]]:
    """Batches on this process's device, endlessly, in the seeded order, from batch ``start_batch`` on.
    With N processes the order is of N x batch_size indices, and each process takes its part."""
    if len(data) < batch_size * world.size:
        raise ValueError(f"the dataset has {len(data)} items, fewer than batch_size={batch_size}"
                         + (f" times {world.size} processes" if world.size > 1 else ""))
    order = world.share(_shuffled_batches(len(data), batch_size * world.size, seed, start_batch))
    device = world.device
    if num_workers == 0 and callable(getattr(data, "batch", None)):  # it cuts whole batches itself
        batches = _cut_ahead(data, order, batch_size)
    else:  # the loader's private generator (it seeds workers) leaves the global torch generator alone
        batches = DataLoader(data, batch_sampler=order, num_workers=num_workers, pin_memory=device.type == "cuda",
                             generator=torch.Generator().manual_seed(seed))
    return ([t.to(device, non_blocking=True) for t in batch] for batch in batches)


def _cut_ahead(data, order: Iterator[list[int]], batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Batches from the dataset's ``batch(indices)``, about 128 patches per call: each training step
    evicts the cutting code from the caches, so coming back to it less often saves most of its cost."""
    ahead = 1 if getattr(data, "one_scale_per_call", False) else max(1, 128 // batch_size)
    while True:  # one batch at a time is passed on as it is: it may carry the whole step's first index
        tensors = data.batch(next(order) if ahead == 1 else [i for _ in range(ahead) for i in next(order)])
        yield from zip(*(t.split(batch_size) for t in tensors))


def _shuffled_batches(n: int, batch_size: int, seed: int, start_batch: int) -> Iterator[list[int]]:
    """Batches of dataset indices forever, each epoch a fresh permutation, whole batches only. The
    permutation of epoch ``e`` depends on ``(seed, e)`` alone, not on a generator running since the
    start: a resumed run jumps straight to batch ``k`` without replaying the stream."""
    per_epoch = n // batch_size
    epoch, first = divmod(start_batch, per_epoch)
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        for b in range(first, per_epoch):
            yield order[b * batch_size: (b + 1) * batch_size].tolist()
        epoch, first = epoch + 1, 0


def _show_progress(bar, history: History) -> None:
    recent = history.loss[-20:]  # a short running mean reads better than raw noise
    psnr = {"psnr": f"{history.val[-1][1]:.2f}"} if history.val else {}
    bar.set_postfix(loss=f"{sum(recent) / len(recent):.4g}", **psnr, refresh=False)
    bar.update(1)
