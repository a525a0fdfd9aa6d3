"""Write the students' copies of the book's notebooks: solutions removed, outputs cleared.

    python scripts/student_notebooks.py --out student/

Every notebook of ``_toc.yml`` (the foundations and the labs) is copied to ``OUT/<chapter>/``
with the same file name. In each copy

* the hidden solutions are gone: every ``{solution}`` block of a markdown cell is removed, so
  the ``{exercise}`` blocks stay and nothing of their answers remains;
* every code cell's outputs and execution count are cleared, so students see only what they run;
* the "Open in Colab" badge is dropped: it opens the book's own notebook, solutions included
  (students who use Colab upload their copy);
* code cells are otherwise unchanged (the cell that installs srlib on Colab included), which is
  why the copies run wherever the book's notebooks run; ``tests/test_student_notebooks.py``
  checks these points.

The output folder may not lie inside ``book/``: the copies never replace the originals. A copy
that exists already (a student may have worked in it) is replaced only with ``--overwrite``;
without it the script names the copies in the way and writes nothing. Files are written
atomically (temporary name, then rename). Mistakes are reported in one line, with exit code 2.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
import yaml

from srlib.files import write_atomically

ROOT = Path(__file__).resolve().parent.parent

# A MyST directive fence is three or more backticks or colons; a block ends at the same fence
# (at least as long) on a line of its own.
_SOLUTION_START = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*$")


def notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks listed in _toc.yml, in the book's order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


def strip_solutions(markdown: str) -> str:
    """``markdown`` without its ``{solution}`` blocks (and the blank line each leaves behind)."""
    out, fence = [], None
    for line in markdown.splitlines(keepends=True):
        if fence is None:
            match = _SOLUTION_START.match(line.strip())
            if match:
                fence = match["fence"]
                continue
            out.append(line)
        elif line.strip().startswith(fence[0] * len(fence)) and set(line.strip()) == {fence[0]}:
            fence = None  # the closing fence of the solution
    if fence is not None:
        raise ValueError("a {solution} block is not closed")
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip("\n")


def student_copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The students' version of ``notebook`` (the original is not modified)."""
    student = copy.deepcopy(notebook)
    for cell in student.cells:
        if cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source)
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # A cell that held nothing but solutions would be an empty box: drop it, and the Colab badge.
    student.cells = [c for c in student.cells if c.cell_type != "markdown"
                     or (c.source.strip() and c.metadata.get("srbook") != "colab-badge")]
    return student


class Refused(Exception):
    """A reason to write nothing: reported in one line by :func:`main`."""


def write_students(out: Path, root: Path = ROOT, overwrite: bool = False) -> list[Path]:
    """Write the students' copies into ``out``; return their paths. Everything is checked (and every
    copy made in memory) before the first file is written."""
    given, out = Path(out), Path(out).resolve()
    book = (root / "book").resolve()
    if out == book or book in out.parents:
        raise Refused(f"--out {given} lies inside the book's folder; choose a folder outside book/ "
                      "(the copies must never replace the originals)")
    copies = {}
    for path in notebooks(root):
        try:
            copies[out / path.relative_to(book)] = student_copy(nbformat.read(path, as_version=4))
        except ValueError as error:  # a broken solution block: name the notebook, write nothing
            raise Refused(f"{path.relative_to(root)}: {error}") from None
    blocked = [t for t in copies for p in (t, *t.parents) if p.exists() and not p.is_dir() and p != t]
    if blocked:
        raise Refused(f"--out {given}: {blocked[0].relative_to(out)} cannot be written, a file stands where a "
                      "folder is needed; choose another --out")
    existing = [t for t in copies if t.exists()]
    if existing and not overwrite:
        names = ", ".join(str(t.relative_to(out)) for t in existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise Refused(f"--out {given} already holds {names}; a student may have worked in them: give --overwrite "
                      "to replace them, or choose another --out")
    for target, student in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, lambda tmp, nb=student: nbformat.write(nb, tmp))
    return list(copies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the copies (created; outside book/)")
    parser.add_argument("--overwrite", action="store_true", help="replace copies that exist in --out already")
    args = parser.parse_args(argv)
    try:
        written = write_students(Path(args.out), overwrite=args.overwrite)
    except Refused as error:
        print(f"student_notebooks.py: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. a read-only folder or a full disk while writing
        print(f"student_notebooks.py: could not write to {args.out} ({error.strerror or error}); "
              "choose another --out", file=sys.stderr)
        return 1
    print(f"{len(written)} student notebooks written to {Path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
