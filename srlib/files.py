"""Writing a file so that nobody ever sees it half-written.

Every file srlib writes for a user (checkpoints, upscaled images, reference weights and their
provenance) goes through :func:`write_atomically`: the bytes go to a temporary file beside the
target, are flushed to disk, and the temporary file is then renamed over the target. A rename
within a folder is atomic, so a crash, a full disk or Ctrl-C leaves the old file or the new one,
never a mixture, and no temporary file stays behind.
"""
from __future__ import annotations

import os
from typing import Callable

__all__ = ["write_atomically"]


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it over ``path``."""
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"  # per process: two writers never share a temporary file
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
