"""Build a printable PDF of the whole book, offline.

    python scripts/build_pdf.py                    # writes _build/srbook.pdf
    python scripts/build_pdf.py --out book.pdf --pages-png pages/ --pages 1 40 120

Two steps, neither of which needs TeX or the network:

1. Jupyter Book's ``singlehtml`` builder renders every chapter, in the order of ``_toc.yml``,
   into one HTML page: figures, code, stored notebook outputs, cross-references and the
   bibliography included.
2. Headless Chromium (Debian's ``chromium`` package, the browser the book test uses) loads
   that page, lets MathJax typeset the equations, and prints it to PDF on A4 paper. A print
   style sheet added to the page wraps long code lines instead of cutting them and hides the
   web page's navigation.

``--pages-png`` renders chosen pages to PNG images (with ``pypdfium2``) to look at them. The
PDF is written under a temporary name and renamed at the end, so a failed build never leaves
a half-written file behind.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "_build" / "pdf"  # the singlehtml build lives here, beside the HTML book's _build/html
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")

# Printed pages: A4 with margins, no navigation, code wrapped, figures kept whole.
PRINT_CSS = """
<style media="print">
  @page { size: A4; margin: 16mm 14mm; }
  .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-article,
  .header-article, .prev-next-area, .skip-link, #pst-back-to-top, .theme-switch-button,
  .search-button, .headerlink { display: none !important; }
  .bd-main .bd-content .bd-article-container { max-width: 100% !important; }
  pre, .highlight pre, div.output pre { white-space: pre-wrap !important; word-break: break-word; }
  figure, img, .cell_output img, table { break-inside: avoid; }
  span[id^="document-"] + section { break-before: page; }  /* every chapter starts a page */
</style>
"""


class BuildError(Exception):
    """A step of the build failed; the message says which and what to do."""


def chromium() -> str:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise BuildError("no Chromium found (tried " + ", ".join(CHROMIUM_CANDIDATES) + "); install it, e.g. "
                     "apt-get install chromium")


def single_page(root: Path = ROOT, work: Path = WORK) -> Path:
    """Build the book as one HTML page and return a copy of it at the build's root, with the print style."""
    log = work / "singlehtml.log"
    work.mkdir(parents=True, exist_ok=True)
    beside_python = Path(sys.executable).parent / "jupyter-book"  # the one of this environment, if there is one
    command = str(beside_python) if beside_python.is_file() else shutil.which("jupyter-book")
    if command is None:
        raise BuildError("jupyter-book is not installed: pip install -r requirements.txt")
    with open(log, "w") as out:
        done = subprocess.run([command, "build", str(root), "--builder", "singlehtml", "--path-output", str(work)],
                              stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise BuildError(f"jupyter-book build --builder singlehtml failed; its log is {log}")
    site = work / "_build" / "singlehtml"
    # The root document is book/intro.html, but its links are relative to the site's root: print a
    # copy that sits at the root.
    page = site / "book" / "intro.html"
    if not page.is_file():
        raise BuildError(f"the single-page build has no {page.relative_to(work)}; see {log}")
    html = page.read_text(encoding="utf-8").replace("</head>", PRINT_CSS + "</head>", 1)
    printable = site / "whole-book.html"
    printable.write_text(html, encoding="utf-8")
    return printable


def print_to_pdf(page: Path, out: Path, timeout: float = 600) -> None:
    """Print ``page`` to ``out`` with headless Chromium (temporary file in the same folder, then rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(handle)
    try:
        # The virtual time budget lets MathJax finish typesetting before the page is printed.
        done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                               "--run-all-compositor-stages-before-draw", "--virtual-time-budget=60000",
                               f"--print-to-pdf={tmp}", page.as_uri()],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode or Path(tmp).stat().st_size == 0:
            raise BuildError(f"Chromium could not print {page}: {done.stderr.strip().splitlines()[-1:]}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a temporary file is private; the PDF gets the usual permissions
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def render_pages(pdf: Path, folder: Path, pages: list[int], scale: float = 1.5) -> list[Path]:
    """Render the 1-based ``pages`` of ``pdf`` to PNG files in ``folder``."""
    try:
        import pypdfium2
    except ImportError:
        raise BuildError("rendering pages needs pypdfium2: pip install pypdfium2") from None
    document = pypdfium2.PdfDocument(str(pdf))
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number in pages:
        if not 1 <= number <= len(document):
            raise BuildError(f"page {number} does not exist: the PDF has {len(document)} pages")
        path = folder / f"page-{number:04d}.png"
        document[number - 1].render(scale=scale).to_pil().save(path)
        written.append(path)
    return written


def page_count(pdf: Path) -> int:
    import pypdfium2

    return len(pypdfium2.PdfDocument(str(pdf)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "srbook.pdf", help="the PDF to write")
    parser.add_argument("--pages-png", type=Path, metavar="DIR", help="also render --pages to PNG files in DIR")
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 2, 40], help="1-based pages to render")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        print_to_pdf(single_page(), args.out)
        pages = ""
        try:
            pages = f", {page_count(args.out)} pages"
        except ImportError:
            pass
        print(f"wrote {args.out}{pages} in {time.perf_counter() - start:.0f} s")
        if args.pages_png:
            for path in render_pages(args.out, args.pages_png, args.pages):
                print(f"wrote {path}")
    except (BuildError, subprocess.TimeoutExpired) as error:
        print(f"build_pdf.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
