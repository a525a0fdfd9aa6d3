"""Checkpoints: a training run saved so that it can be resumed exactly, or its model rebuilt.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads with
``torch.load(weights_only=True)``, which cannot execute code hidden in a downloaded file. It
holds everything needed to continue a run bit for bit: weights, optimizer and AMP scaler
state, the step, the history and the state of every random number generator. It also names
the model (registry name, configuration, scale), so that loading it into a different model is
a clear error rather than a shape mismatch deep inside ``load_state_dict``.

Saving writes to a temporary file and renames it over the old one: a crash or Ctrl-C while
saving leaves the previous checkpoint intact, never half a file. The weights carry a sha256
checksum, checked on loading: a file damaged on disk or in a copy is refused instead of
loading as garbage (checkpoints written before the checksum existed still load).
:func:`checkpoint_lock` keeps two training runs from writing the same checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import sys
import zipfile
from typing import Any

import numpy as np
import torch

from .device import mps_available
from .files import write_atomically
from .history import History

__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "check_same_model", "model_identity",
           "model_label", "rng_states", "set_rng_states", "weights_sha256", "checkpoint_lock", "CheckpointLocked"]

CHECKPOINT_FORMAT = "srlib-checkpoint"
CHECKPOINT_VERSION = 1
# Every checkpoint written by save_checkpoint has these; "facts" and "weights_sha256" are optional.
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
        "weights_sha256": weights_sha256(model.state_dict()),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scaler_state": scaler.state_dict() if scaler is not None else None,
        "step": int(step),
        "history": history.to_dict(),
        "rng": rng_states(),
        "facts": _plain(dict(facts or {})),
    }
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            torch.save(ckpt, f)

    write_atomically(path, write)


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
    expected = ckpt.get("weights_sha256")  # absent in checkpoints written before it existed
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


@contextlib.contextmanager
def checkpoint_lock(path: str | os.PathLike):
    """Hold ``path + ".lock"`` while a run writes ``path``, so that a second run refuses to clobber it.

    The lock file is created with ``O_CREAT | O_EXCL``, which only one process can do, and holds
    the owner's process id and host name. A lock left behind by a run that was killed (its
    process no longer exists) is taken over, with a message; the lock is removed on leaving.
    """
    lock = os.fspath(path) + ".lock"
    mine = f"{os.getpid()} {socket.gethostname()}"
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            held_by = _read_lock(lock)
            if held_by is None:
                continue  # removed meanwhile: try again
            pid, host = held_by
            if pid is None or host != socket.gethostname() or _running(pid):
                owner = f"process {pid} on {host}" if pid is not None else "a run that is starting"
                raise CheckpointLocked(f"{os.fspath(path)!r} is being written by another training run ({owner}); "
                                       f"wait for it to finish or write to another checkpoint, or delete "
                                       f"{lock!r} if no such run exists") from None
            print(f"taking over {lock} from process {pid}, which is no longer running", file=sys.stderr)
            if _read_lock(lock) == held_by:  # still the dead run's: not a lock someone took over meanwhile
                with contextlib.suppress(FileNotFoundError):
                    os.remove(lock)
    try:
        os.write(fd, (mine + "\n").encode())
    finally:
        os.close(fd)
    try:
        yield
    finally:
        if _read_lock(lock) == _parse_lock(mine):  # not taken over meanwhile
            with contextlib.suppress(FileNotFoundError):
                os.remove(lock)


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


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if sys.platform == "win32":
        return True  # no safe probe there (os.kill would end the process): never take a lock over
    try:
        os.kill(pid, 0)  # signal 0 checks that the process exists without touching it
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
