"""Checkpoints: a training run saved so that it can be resumed exactly, or its model rebuilt.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads with
``torch.load(weights_only=True)``, which cannot execute code hidden in a downloaded file. It
holds everything needed to continue a run bit for bit: weights, optimizer and AMP scaler
state, the step, the history and the state of every random number generator. It also names
the model (registry name, configuration, scale), so that loading it into a different model is
a clear error rather than a shape mismatch deep inside ``load_state_dict``.

Saving writes to a temporary file and renames it over the old one: a crash or Ctrl-C while
saving leaves the previous checkpoint intact, never half a file, and a full disk is reported in
one line. The whole checkpoint (weights, optimizer and scaler state, step, history, random
states, facts, and the model's name, configuration and scale) carries a sha256 checksum,
checked on loading: a file damaged on disk or in a copy, or edited (say, x3 weights relabelled
x4), is refused instead of loading as garbage. Version-1 checkpoints, whose checksum covered
the weights only, still load with that check. :func:`checkpoint_lock` keeps two training runs
from writing the same checkpoint, and clears what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import random
import socket
import sys
import threading
import time
import zipfile
from typing import Any

import numpy as np
import torch

from .device import mps_available
from .files import process_running, remove_stale_temporaries, write_atomically
from .history import History

__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "check_same_model", "model_identity",
           "model_label", "rng_states", "set_rng_states", "weights_sha256", "checkpoint_sha256", "checkpoint_lock",
           "CheckpointLocked"]

CHECKPOINT_FORMAT = "srlib-checkpoint"
CHECKPOINT_VERSION = 2  # 2: "sha256" covers the whole checkpoint; 1: "weights_sha256" covered the weights only
# Every checkpoint written by save_checkpoint has these; "facts" is optional.
REQUIRED_KEYS = ("model_name", "model_config", "scale", "model_state", "optimizer_state", "scaler_state", "step",
                 "history", "rng")


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


def model_identity(model: torch.nn.Module) -> tuple[str, dict, int | None]:
    """(name, config, scale) of a model: what must match between a model and its checkpoint."""
    name = getattr(model, "srlib_name", type(model).__name__)
    config = _plain(dict(getattr(model, "srlib_config", {}) or {}))
    scale = getattr(model, "scale", None)
    return name, config, (int(scale) if scale is not None else None)


def model_label(name: str, scale: int | None) -> str:
    """How messages name a model: "fsrcnn x3", or just the name for a model without a scale."""
    return f"{name} x{scale}" if scale is not None else name


def check_same_model(ckpt: dict, model: torch.nn.Module, path: str) -> None:
    """Raise ValueError, naming what differs, unless ``ckpt`` was saved from a model like ``model``."""
    name, config, scale = model_identity(model)
    held = (ckpt["model_name"], ckpt["model_config"], ckpt["scale"])
    if held[0] != name or held[2] != scale:
        raise ValueError(f"checkpoint {path!r} holds {model_label(held[0], held[2])}, "
                         f"model is {model_label(name, scale)}")
    if held[1] != config:
        keys = sorted(set(held[1]) | set(config))
        differ = [k for k in keys if held[1].get(k, "<unset>") != config.get(k, "<unset>")]
        ckpt_side = ", ".join(f"{k}={held[1].get(k, '<unset>')}" for k in differ)
        model_side = ", ".join(f"{k}={config.get(k, '<unset>')}" for k in differ)
        raise ValueError(f"checkpoint {path!r} holds {model_label(name, scale)} with {ckpt_side}, "
                         f"model is {model_label(name, scale)} with {model_side}")


def weights_sha256(state: dict) -> str:
    """sha256 of a state dict: every tensor's name, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for key, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())  # raw bytes, any dtype
    return digest.hexdigest()


def checkpoint_sha256(ckpt: dict) -> str:
    """sha256 of everything in a checkpoint but its own ``"sha256"`` entry: every tensor's dtype, shape
    and bytes, and every number, string, list and dict, with their types, dict keys in a fixed order."""
    digest = hashlib.sha256()

    def feed(obj) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            digest.update(f"D{len(obj)}|".encode())
            for key in sorted(obj, key=repr):
                feed(key)
                feed(obj[key])
        elif isinstance(obj, (list, tuple)):  # a tuple may come back as a list: the same data
            digest.update(f"L{len(obj)}|".encode())
            for item in obj:
                feed(item)
        else:  # None, bool, int, float, str and the like: the type and an exact text
            text = repr(obj)
            digest.update(f"{type(obj).__name__}{len(text)}:{text}|".encode())

    feed({k: v for k, v in ckpt.items() if k != "sha256"})
    return digest.hexdigest()


def _load_weights(model: torch.nn.Module, state: dict, path: str) -> None:
    """``model.load_state_dict(state)``, with a one-line error when the weights do not fit the model."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # PyTorch lists every mismatched tensor, one per line
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
        name, _, scale = model_identity(model)
        raise ValueError(f"the weights in {path!r} do not fit {model_label(name, scale)} as its configuration "
                         f"describes it ({first}); the file was altered or written by other code: train again "
                         "or use another checkpoint") from None


def rng_states() -> dict:
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
    if mps_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def set_rng_states(states: dict) -> None:
    """Put every random generator back in the state :func:`rng_states` recorded."""
    py = states["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = states["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["gauss"]))
    torch.set_rng_state(states["torch"].cpu())
    # GPU generators only come back on a machine with the same number of GPUs.
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    if "mps" in states and mps_available():
        torch.mps.set_rng_state(states["mps"].cpu())


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    step: int = 0, history: History | None = None,
                    facts: dict | None = None) -> None:
    """Write a checkpoint of ``model`` (and optionally its training state) to ``path``.

    The file is first written to a temporary file and then renamed over ``path``: a rename
    is atomic, so a crash or Ctrl-C during saving leaves the previous checkpoint intact
    instead of a half-written file.
    """
    if history is None:

        history = History()
    path = os.fspath(path)
    name, config, scale = model_identity(model)
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
        "history": history.to_dict(),
        "rng": rng_states(),
        "facts": _plain(dict(facts or {})),
    }
    ckpt["sha256"] = checkpoint_sha256(ckpt)
    directory = os.path.dirname(path)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            torch.save(ckpt, f)

    try:
        if directory:
            os.makedirs(directory, exist_ok=True)
        write_atomically(path, write)
    except (OSError, RuntimeError) as error:  # RuntimeError: torch's zip writer reports a failed write so
        failure = OSError(f"could not write checkpoint {path!r} ({_write_failure(error)}); the previous checkpoint, "
                          "if any, is unchanged: free some disk space or save to another path")
        failure.errno = getattr(error, "errno", None)
        raise failure from None


def _write_failure(error: BaseException) -> str:
    """Why a file could not be written, in words."""
    code = getattr(error, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if code == errno.EFBIG:
        return "the file is larger than this system allows"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error)
    if any(mark in text for mark in ("PytorchStreamWriter", "inline_container", "unexpected pos", "write")):
        return "writing failed, most likely because the disk is full"  # torch.save's zip writer, in its words
    return " ".join(str(error).split())[:200] or type(error).__name__


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
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder, not a checkpoint file; give the path of a .pt file")
    if not _is_zip(path):  # what torch.save writes is a zip archive
        raise ValueError(f"{path!r} could not be read as an srlib checkpoint: it is not a complete PyTorch file "
                         "(it is truncated, damaged, or another kind of file such as an image)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = ("it holds Python objects besides tensors and plain data, and loading those could run code"
                  if "Weights only load failed" in str(err) else " ".join(str(err).split())[:200])
        raise ValueError(f"{path!r} could not be read as an srlib checkpoint ({reason}); it was not written "
                         "by srlib.checkpoint.save_checkpoint, or is damaged") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r} is a PyTorch file but not an srlib checkpoint "
                         f"(expected a dict with format={CHECKPOINT_FORMAT!r})")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path!r} has checkpoint version {ckpt['version']}; this srlib reads "
                         f"up to version {CHECKPOINT_VERSION} (update srlib)")
    _check_contents(ckpt, path)
    if model is not None:
        check_same_model(ckpt, model, path)
        _load_weights(model, ckpt["model_state"], path)
    return ckpt


def _is_zip(path: str) -> bool:
    """Whether ``path`` is a complete zip archive, as every file torch.save writes is."""
    try:
        return zipfile.is_zipfile(path)
    except zipfile.BadZipFile:  # raised, not answered, for some damaged end records
        return False


def _check_contents(ckpt: dict, path: str) -> None:
    """Refuse a checkpoint with missing parts, inconsistent scales or weights that fail their checksum."""
    missing = [key for key in REQUIRED_KEYS if key not in ckpt]
    if missing:
        raise ValueError(f"{path!r} lacks {', '.join(missing)}: an incomplete or altered checkpoint; "
                         "train again or use another checkpoint")
    state = ckpt["model_state"]
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise ValueError(f"{path!r}: model_state is not a dict of tensors; the file was altered")
    config_scale = ckpt["model_config"].get("scale") if isinstance(ckpt["model_config"], dict) else None
    if config_scale is not None and ckpt["scale"] is not None and config_scale != ckpt["scale"]:
        raise ValueError(f"{path!r} says scale x{ckpt['scale']} but its model configuration says "
                         f"x{config_scale}; the file was altered: train again or use another checkpoint")
    if ckpt.get("version", 0) >= 2:
        if not isinstance(ckpt.get("sha256"), str):
            raise ValueError(f"{path!r} lacks its checksum (sha256): an incomplete or altered checkpoint; "
                             "train again or use another checkpoint")
        if checkpoint_sha256(ckpt) != ckpt["sha256"]:
            raise ValueError(f"{path!r} does not match its checksum: the file is damaged (a disk error or an "
                             "incomplete copy) or was edited; copy it again or train again")
        return
    expected = ckpt.get("weights_sha256")  # version 1 covered the weights only; the first ones had none
    if expected is not None and weights_sha256(state) != expected:
        raise ValueError(f"the weights in {path!r} do not match their checksum: the file is damaged "
                         "(a disk error or an incomplete copy); copy it again or train again")


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a model from its checkpoint alone (architecture from the stored name and config).

    The model is returned in eval mode; its training history is ``model.srlib_history``.
    """
    from .models import rebuild  # imported on use: the model zoo is only needed here

    ckpt = load_checkpoint(path, map_location=map_location)
    try:
        model = rebuild(ckpt["model_name"], ckpt["model_config"])
    except (ValueError, TypeError) as err:  # an unknown model, scale or constructor argument
        raise ValueError(f"{os.fspath(path)!r} describes a model this srlib cannot build: {err}") from None
    _load_weights(model, ckpt["model_state"], os.fspath(path))
    model.srlib_history = History.from_dict(ckpt["history"])
    return model.eval()


class CheckpointLocked(FileExistsError):
    """Another training run is writing this checkpoint: its lock file exists."""


# Locks this process holds, per thread: the same run may take its lock again (the command line
# takes it, then fit), another thread of the process may not.
_HELD: dict[tuple[str, int], int] = {}
STALE_EMPTY_LOCK_SECONDS = 10.0  # a lock file is written the instant it is created; empty after this long: stale


@contextlib.contextmanager
def checkpoint_lock(path: str | os.PathLike):
    """Hold ``path + ".lock"`` while a run writes ``path``, so that a second run refuses to clobber it.

    The lock file is created with ``O_CREAT | O_EXCL``, which only one process can do, and holds
    the owner's process id and host name. A lock left behind by a run that was killed (its
    process no longer exists), or left empty or unreadable for more than
    :data:`STALE_EMPTY_LOCK_SECONDS` (a full disk when it was written), is taken over with a
    message; so are the temporary files of a killed run's last save. The lock is removed on
    leaving. Within one thread the lock may be taken again (nested), which is a no-op.
    """
    lock = os.fspath(path) + ".lock"
    key = (os.path.realpath(lock), threading.get_ident())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    mine = f"{os.getpid()} {socket.gethostname()}"
    if os.path.dirname(lock):
        os.makedirs(os.path.dirname(lock), exist_ok=True)
    if os.path.isdir(lock):
        raise IsADirectoryError(f"{lock!r} is a folder, but srlib keeps the lock of {os.fspath(path)!r} there; "
                                "move the folder away or write to another checkpoint")
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            held_by = _read_lock(lock)
            if held_by is None:
                continue  # removed meanwhile: try again
            pid, host = held_by
            if pid is None and _age(lock) > STALE_EMPTY_LOCK_SECONDS:
                why = "it is empty or unreadable, left by a run that could not write it (a full disk?)"
            elif pid is not None and host == socket.gethostname() and not process_running(pid):
                why = f"process {pid}, which made it, is no longer running"
            else:
                owner = f"process {pid} on {host}" if pid is not None else "a run that is starting"
                raise CheckpointLocked(f"{os.fspath(path)!r} is being written by another training run ({owner}); "
                                       f"wait for it to finish or write to another checkpoint, or delete "
                                       f"{lock!r} if no such run exists") from None
            print(f"taking over {lock}: {why}", file=sys.stderr)
            if _read_lock(lock) == held_by:  # still the stale one: not a lock someone took over meanwhile
                with contextlib.suppress(FileNotFoundError):
                    os.remove(lock)
    failure = None
    try:
        complete = os.write(fd, (mine + "\n").encode()) == len(mine) + 1
    except OSError as error:
        complete, failure = False, error
    finally:
        os.close(fd)
    if not complete:  # e.g. a full disk: leave no empty lock behind
        with contextlib.suppress(OSError):
            os.remove(lock)
        reason = _write_failure(failure) if failure is not None else "the disk is full"
        raise OSError(f"could not write the lock file {lock!r} ({reason}); free some disk space or write the "
                      "checkpoint elsewhere")
    remove_stale_temporaries(path)  # no other run writes this checkpoint now
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        if _read_lock(lock) == _parse_lock(mine):  # not taken over meanwhile
            with contextlib.suppress(FileNotFoundError):
                os.remove(lock)


def _age(path: str) -> float:
    """Seconds since ``path`` was last modified (0 if it is gone)."""
    try:
        return time.time() - os.path.getmtime(path)
    except OSError:
        return 0.0


def _parse_lock(text: str) -> tuple[int | None, str | None]:
    """(pid, host) from a lock file's text "<pid> <host>"."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit():
        return None, None  # empty or being written: its owner is unknown
    return int(parts[0]), parts[1]


def _read_lock(lock: str) -> tuple[int | None, str | None] | None:
    """(pid, host) of a lock file, (None, None) if unreadable, None if it no longer exists."""
    try:
        with open(lock, encoding="utf-8", errors="replace") as fh:
            return _parse_lock(fh.read())
    except FileNotFoundError:
        return None
