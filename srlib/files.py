"""Writing a file so that nobody ever sees it half-written.

Every file srlib writes for a user (checkpoints, upscaled images, reference weights and their
provenance) goes through :func:`write_atomically`: the bytes go to a temporary file beside the
target, are flushed to disk, and the temporary file is then renamed over the target. A rename
within a folder is atomic, so a crash, a full disk or Ctrl-C leaves the old file or the new one,
never a mixture, and no temporary file stays behind. Only a process killed outright (SIGKILL, a
power cut) leaves its ``<target>.<pid>.tmp``; :func:`remove_stale_temporaries` clears those, and
the next write of the same file calls it. Where the data sets live, :func:`data_root`, is here
too: the installer reads it without importing torch (``srlib.data`` re-exports it).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Callable

__all__ = ["data_root", "write_atomically", "write_json", "temporary_name", "remove_stale_temporaries",
           "process_running"]


def temporary_name(path: str | os.PathLike) -> str:
    """The temporary file this process writes ``path`` through: per process, so two writers never share one."""
    return f"{os.fspath(path)}.{os.getpid()}.tmp"


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it over ``path``."""
    path = os.fspath(path)
    tmp = temporary_name(path)
    remove_stale_temporaries(path)  # what an earlier writer of this file left when it was killed
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON to ``path`` (its folder created if needed), atomically."""
    text = json.dumps(data, indent=1) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def remove_stale_temporaries(path: str | os.PathLike, log: Callable[[str], None] | None = None) -> list[str]:
    """Delete the ``<path>.<pid>.tmp`` files of processes that no longer run (killed while writing ``path``).

    A temporary file of a running process is left alone. Returns the files removed; ``log`` (default:
    a line on stderr) says what was removed and why."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)\.tmp")
    removed = []
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or process_running(int(match.group(1))):
            continue
        stale = path.with_name(name)
        try:
            stale.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:  # e.g. a read-only folder: say so, but the run may go on
            (log or _to_stderr)(f"could not remove {stale}, left by process {match.group(1)} which no longer runs "
                                f"({error.strerror or error}); delete it by hand")
            continue
        (log or _to_stderr)(f"removed {stale}, left by process {match.group(1)} which was stopped while saving "
                            f"{path.name} (the file itself is as it was before that save)")
        removed.append(str(stale))
    return removed


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (this process counts as running)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return True  # no safe probe there (os.kill would end the process): assume it runs
    try:
        os.kill(pid, 0)  # signal 0 checks that the process exists without touching it
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OverflowError:
        return False  # not a process id at all
    return True


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the data sets: ``root``, else ``$SRLIB_DATA``, else ``./data``.

    An empty string counts as not given, for the argument and the variable alike.
    """
    if root is None or str(root) == "":
        root = os.environ.get("SRLIB_DATA") or "data"
    return Path(root).expanduser()
