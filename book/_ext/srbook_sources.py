"""Keep everything that is not the book out of the book build (loaded from _config.yml).

The book's source folder is the repository root, so Sphinx looks at every Markdown file
below it. Most readers create a virtual environment inside their clone (``.venv``,
``venv``, ``env`` or any other name), and its ``site-packages`` holds hundreds of
README and licence files: read as pages, they turn a clean ``-W`` build into hundreds of
warnings. Static ``exclude_patterns`` cannot know what a reader will call their
environment, so this extension finds them when the build starts: any folder holding a
``pyvenv.cfg`` (venv, virtualenv, uv) or ``conda-meta`` (conda), any ``site-packages``
or ``node_modules`` folder, and every hidden folder, whatever their depth.

It runs before the table-of-contents extension reads the tree, so that extension also
skips walking them.
"""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")
NEVER_CONTENT = ("site-packages", "node_modules", "__pycache__")


def is_environment(folder: Path) -> bool:
    """True for a Python environment or a folder that only environments hold."""
    return folder.name in NEVER_CONTENT or any((folder / marker).exists() for marker in ENVIRONMENT_MARKERS)


def foreign_folders(root: str | os.PathLike) -> list[str]:
    """Folders below ``root`` (relative POSIX paths) that are not book content."""
    root = Path(root)
    found = []
    for current, subfolders, _files in os.walk(root):
        kept = []
        for name in sorted(subfolders):
            folder = Path(current) / name
            if name.startswith(".") or is_environment(folder):
                found.append(folder.relative_to(root).as_posix())
            else:
                kept.append(name)
        subfolders[:] = kept  # do not descend into what is excluded
    return found


def exclude_foreign_folders(app, config) -> None:
    patterns = list(config.exclude_patterns)
    for folder in foreign_folders(app.srcdir):
        patterns += [folder, f"{folder}/**"]
    config.exclude_patterns = patterns


def setup(app):
    # Priority below the default 500 of the table-of-contents extension's own handler.
    app.connect("config-inited", exclude_foreign_folders, priority=100)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
