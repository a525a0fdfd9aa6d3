"""Re-execute the book's notebooks in place, after stamping each with its Colab cells.

The book is built without executing anything (``execute_notebooks: "off"`` in ``_config.yml``):
the notebooks are stored with their outputs. After a change to ``srlib``, run::

    python scripts/run_notebooks.py                    # stamp + execute every notebook of _toc.yml
    python scripts/run_notebooks.py --only srcnn       # only notebooks whose path contains "srcnn"
    python scripts/run_notebooks.py --only 'book/foundations/*'   # or match a glob
    python scripts/run_notebooks.py --stamp-only       # refresh the Colab cells, execute nothing
    python scripts/run_notebooks.py --check            # exit 1 if a notebook lacks the current stamp

then review the diff (``git diff --stat book/``) and commit the notebooks with their new outputs.
The script prints a table with each notebook's run time.

Stamp. Before executing, every notebook listed in ``_toc.yml`` gets the ``python3`` kernelspec in its
metadata and, right after its title cell:

1. a markdown cell with an "Open in Colab" badge linking to
   ``https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/<path>``;
2. a code cell tagged ``remove-cell`` (hidden in the book) that installs ``srlib`` from the
   repository when, and only when, the notebook runs on Colab. Elsewhere it prints nothing, so
   ``pytest --nbval`` still matches its (empty) stored output.

Both are derived from the ``repository`` section of ``_config.yml`` (the one place where the
repository URL is written) and are recognised by the cell metadata key ``"srbook"``
(``"colab-badge"`` / ``"colab-install"``), so re-stamping replaces them instead of adding copies.

Execution. Notebooks run with the ``python3`` kernel, from their own folder (as in JupyterLab and
nbval), with the caller's environment. The stored outputs of the book are made with the default
compute budget (``SRLIB_BUDGET`` unset, i.e. ``quick`` on a CPU); ``pytest --nbval`` compares
against them, so do not commit outputs made with another budget. Cell tags and metadata are kept;
no per-cell timing metadata is added. A notebook whose execution fails is reported and left
unchanged on disk (apart from the stamp); the script then exits with status 1.

Files are written atomically (temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import yaml

from srlib.files import write_atomically
from srlib.table import table

ROOT = Path(__file__).resolve().parent.parent
STAMP_KEY = "srbook"
BADGE = "colab-badge"
INSTALL = "colab-install"
BADGE_SVG = "book/_static/colab-badge.svg"  # local copy: the book must not load images from the web
COLAB = "https://colab.research.google.com"
# Named in every notebook, so that JupyterLab, Colab and nbval start the same kernel
# without asking which one.
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def repository(root: Path = ROOT) -> dict:
    """The ``repository`` section of _config.yml, with owner/name split out of the URL."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = dict(config.get("repository") or {})
    url = str(repo.get("url", "")).rstrip("/")
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.netloc != "github.com" or len(parts) != 2:
        raise SystemExit(f"_config.yml: repository.url must be https://github.com/<owner>/<repo>, got {url!r}")
    owner, name = parts[0], parts[1].removesuffix(".git")
    return {
        "url": url,
        "owner": owner,
        "name": name,
        "branch": str(repo.get("branch") or "main"),
        "path_to_book": str(repo.get("path_to_book") or "").strip("/"),
    }


def _toc_files(node) -> list[str]:
    """All ``file:`` entries of a _toc.yml tree, in reading order."""
    found = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                found.extend(_toc_files(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(_toc_files(child))
    return found


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks listed in _toc.yml (paths relative to the repository root), in book order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    notebooks = []
    for entry in _toc_files(toc):
        path = Path(entry)
        if path.suffix == ".ipynb":
            candidate = path
        elif path.suffix == "":
            candidate = path.with_suffix(".ipynb")
        else:
            continue
        if (root / candidate).is_file():
            notebooks.append(candidate)
    return notebooks


def select(notebooks: list[Path], patterns: list[str] | None) -> list[Path]:
    """Keep the notebooks matching any pattern: a glob if it has * ? [, else a substring."""
    if not patterns:
        return notebooks
    keep = []
    for nb in notebooks:
        s = nb.as_posix()
        for pat in patterns:
            if (any(ch in pat for ch in "*?[") and fnmatch.fnmatch(s, pat)) or pat in s:
                keep.append(nb)
                break
    return keep


# ---------------------------------------------------------------------------------------------
# Stamping
# ---------------------------------------------------------------------------------------------


def colab_url(repo: dict, rel_path: Path) -> str:
    path = "/".join(p for p in (repo["path_to_book"], rel_path.as_posix()) if p)
    return f"{COLAB}/github/{repo['owner']}/{repo['name']}/blob/{repo['branch']}/{path}"


def badge_cell(repo: dict, rel_path: Path):
    svg = os.path.relpath(ROOT / BADGE_SVG, (ROOT / rel_path).parent).replace(os.sep, "/")
    source = f"[![Open in Colab]({svg})]({colab_url(repo, rel_path)})"
    cell = nbformat.v4.new_markdown_cell(source, metadata={STAMP_KEY: BADGE})
    cell["id"] = BADGE
    return cell


def install_cell(repo: dict):
    source = (
        "# On Colab only: install srlib from the book's repository. Elsewhere this does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", "git+{repo["url"]}@{repo["branch"]}"],\n'
        "        check=True,\n"
        "    )"
    )
    cell = nbformat.v4.new_code_cell(source, metadata={STAMP_KEY: INSTALL, "tags": ["remove-cell"]})
    cell["id"] = INSTALL
    return cell


def _is_title(cell) -> bool:
    return cell.get("cell_type") == "markdown" and "".join(cell.get("source", "")).lstrip().startswith("# ")


def stamp(nb, repo: dict, rel_path: Path):
    """Return a copy of `nb` with fresh badge and install cells after the title cell, and the kernelspec."""
    new = copy.deepcopy(nb)
    new.metadata["kernelspec"] = dict(KERNELSPEC)
    cells = [c for c in new.cells if c.get("metadata", {}).get(STAMP_KEY) not in (BADGE, INSTALL)]
    old = {c.get("metadata", {}).get(STAMP_KEY): c for c in new.cells}
    install = install_cell(repo)
    if INSTALL in old and "".join(old[INSTALL].get("source", "")) == install.source:
        # Keep the stored execution count/outputs of an unchanged install cell (no spurious diff).
        install["execution_count"] = old[INSTALL].get("execution_count")
        install["outputs"] = old[INSTALL].get("outputs", [])
    badge = badge_cell(repo, rel_path)
    if (new.nbformat, new.nbformat_minor) < (4, 5):  # cell ids exist from nbformat 4.5 on
        badge.pop("id", None)
        install.pop("id", None)
    at = 1 if cells and _is_title(cells[0]) else 0
    new.cells = cells[:at] + [badge, install] + cells[at:]
    return new


def _stamp_view(nb) -> list:
    """What --check compares: the kernelspec, and position, source and metadata of the stamp cells."""
    return [dict(nb.metadata.get("kernelspec", {}))] + [
        (i, c.get("cell_type"), "".join(c.get("source", "")), dict(c.get("metadata", {})))
        for i, c in enumerate(nb.cells)
        if c.get("metadata", {}).get(STAMP_KEY) in (BADGE, INSTALL)
    ]


def is_stamped(nb, repo: dict, rel_path: Path) -> bool:
    return _stamp_view(nb) == _stamp_view(stamp(nb, repo, rel_path))


# ---------------------------------------------------------------------------------------------
# Reading, writing, executing
# ---------------------------------------------------------------------------------------------


def read(path: Path):
    return nbformat.read(path, as_version=4)


def write_atomic(nb, path: Path) -> None:
    write_atomically(path, lambda tmp: nbformat.write(nb, tmp))


def execute(nb, path: Path, timeout: int, kernel: str):
    """Execute a copy of `nb` from its own folder; return the executed notebook."""
    from nbclient import NotebookClient

    executed = copy.deepcopy(nb)
    client = NotebookClient(
        executed,
        timeout=timeout,
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        allow_errors=False,
    )
    client.execute()
    return executed


def settle_progress_bars(nb):
    """Keep what a terminal would show of text progress bars: the last state of each line.

    A text progress bar redraws itself with carriage returns, and the kernel sends every
    redraw as a stream message of its own; stored verbatim, every redraw would appear in the
    book as a line. Consecutive stream outputs are merged first, then each line keeps only
    the text after its last carriage return.
    """
    for cell in nb.cells:
        merged = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (output.get("output_type") == "stream" and previous is not None
                    and previous.get("output_type") == "stream" and previous["name"] == output["name"]):
                previous["text"] += output["text"]
            else:
                merged.append(output)
        for output in merged:
            if output.get("output_type") == "stream" and "\r" in output["text"]:
                lines = output["text"].split("\n")
                output["text"] = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines)
        if "outputs" in cell:
            cell["outputs"] = merged
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Stamp the book's notebooks with their Colab cells and re-execute them in place.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Stored outputs are made with the default budget: leave SRLIB_BUDGET unset.",
    )
    parser.add_argument("--only", action="append", metavar="PATTERN",
                        help="only notebooks whose path contains PATTERN or matches it as a glob (repeatable)")
    parser.add_argument("--stamp-only", action="store_true", help="refresh the Colab cells, execute nothing")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook lacks the current Colab stamp")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell (default 3600)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    args = parser.parse_args(argv)

    repo = repository()
    notebooks = select(toc_notebooks(), args.only)
    if not notebooks:
        print("no notebook of _toc.yml matches", file=sys.stderr)
        return 1

    if args.check:
        stale = [p for p in notebooks if not is_stamped(read(ROOT / p), repo, p)]
        for p in stale:
            print(f"missing or outdated Colab stamp or kernelspec: {p}")
        if stale:
            print(f"{len(stale)} of {len(notebooks)} notebooks need `python scripts/run_notebooks.py --stamp-only`")
            return 1
        print(f"all {len(notebooks)} notebooks carry the current Colab stamp")
        return 0

    budget = os.environ.get("SRLIB_BUDGET")
    if not args.stamp_only:
        print(f"SRLIB_BUDGET={budget or '(unset: default budget)'}; kernel {args.kernel}; "
              f"timeout {args.timeout} s/cell")
        if budget:
            print("note: the committed outputs are made with SRLIB_BUDGET unset; nbval compares against them")

    rows, failures = [], 0
    for rel in notebooks:
        path = ROOT / rel
        nb = read(path)
        stamped = stamp(nb, repo, rel)
        if args.stamp_only:
            changed = stamped != nb
            if changed:
                write_atomic(stamped, path)
            rows.append((rel, "stamped" if changed else "unchanged", None))
            continue
        if stamped != nb:
            write_atomic(stamped, path)
        print(f"running {rel} ...", flush=True)
        start = time.perf_counter()
        try:
            executed = settle_progress_bars(execute(stamped, path, args.timeout, args.kernel))
        except Exception as exc:  # report and go on with the other notebooks
            failures += 1
            rows.append((rel, "FAILED", time.perf_counter() - start))
            print(f"  failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
            continue
        write_atomic(executed, path)
        rows.append((rel, "ok", time.perf_counter() - start))

    if not args.stamp_only:
        rows.append(("total", "", sum(r[2] for r in rows if r[2] is not None)))
    print()
    print(table(["notebook", "status", "seconds"], [(str(rel), status, "" if seconds is None else seconds)
                                                    for rel, status, seconds in rows], ["", "", ".1f"]))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
