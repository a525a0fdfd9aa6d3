"""Where the tensors live, and how a run is made repeatable."""

from __future__ import annotations

import os
import random
import sys
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["pick_device", "seed_everything", "one_thread"]


_mps_announced = False  # the automatic choice of MPS is announced once per process


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to train on: ``prefer``, else ``$SRLIB_DEVICE``, else CUDA if present,
    then Apple's MPS (announced in one line), then the CPU.

    ``prefer`` or ``SRLIB_DEVICE`` ("cpu", "cuda", "cuda:1", "mps" or a ``torch.device``) overrides
    the automatic choice; asking for a device this machine does not have is an error rather than a
    silent fall-back, so that a "GPU" run never quietly crawls on the CPU. MPS is chosen on its own
    only with a note on stderr: some operations fall back to the CPU there, and its results are not
    bit-for-bit those of the CPU (``SRLIB_DEVICE=cpu`` keeps a Mac on the CPU).
    """
    if prefer is None:
        prefer = os.environ.get("SRLIB_DEVICE", "").strip() or None
    if prefer is not None:
        try:
            device = torch.device(prefer)
        except RuntimeError:
            raise RuntimeError(f"unknown device {str(prefer)!r}: use cpu, cuda, cuda:N or mps "
                               "(argument or SRLIB_DEVICE)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {str(device)!r} was requested but CUDA is not available")
        if device.type == "mps" and not mps_available():
            raise RuntimeError("device 'mps' was requested but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        global _mps_announced
        if not _mps_announced:
            print("srlib: training on Apple's MPS (results differ slightly from the CPU's; SRLIB_DEVICE=cpu "
                  "uses the CPU)", file=sys.stderr)
            _mps_announced = True
        return torch.device("mps")
    return torch.device("cpu")


def mps_available() -> bool:
    """Whether Apple's MPS backend exists in this PyTorch build and works on this machine."""
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


@contextmanager
def one_thread():
    """Run a block on one CPU thread, then restore torch's setting.

    For many short passes over memory (resizing, PSNR, SSIM band by band): with two threads,
    each pass waits until both are scheduled. On two cores shared with other work (load
    average 4 to 8), two threads made a bicubic evaluation 7 to 40 times slower than one
    (``benchmarks/evaluate.py``). A network's forward pass is left to torch's thread count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
