"""The printable book: scripts/build_pdf.py prints the whole book to PDF offline (headless Chromium)."""
import shutil
from pathlib import Path

import pytest
import yaml
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def build_pdf():
    return load_script("scripts/build_pdf.py")


def test_without_chromium_the_build_says_what_to_install(build_pdf, monkeypatch, tmp_path):
    monkeypatch.setattr(build_pdf, "CHROMIUM_CANDIDATES", ("no-such-browser",))
    page = tmp_path / "page.html"
    page.write_text("<html></html>")
    with pytest.raises(build_pdf.BuildError, match="no Chromium found .* install it"):
        build_pdf.print_to_pdf(page, tmp_path / "book.pdf")
    assert list(tmp_path.iterdir()) == [page]  # no PDF, no temporary file left behind


@pytest.mark.slow
def test_the_whole_book_prints_with_every_chapter_and_typeset_equations(build_pdf, tmp_path):
    pypdfium2 = pytest.importorskip("pypdfium2")
    if not any(shutil.which(name) for name in build_pdf.CHROMIUM_CANDIDATES):
        pytest.skip("Chromium is needed (Debian: apt-get install chromium)")
    out = tmp_path / "book.pdf"
    build_pdf.print_to_pdf(build_pdf.single_page(ROOT, tmp_path / "work"), out)
    document = pypdfium2.PdfDocument(str(out))
    text = "\n".join(document[k].get_textpage().get_text_range() for k in range(len(document)))
    assert len(document) > 200

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    for file in files:  # every page of the book is in the PDF, by its title
        source = ROOT / f"{file}.md"
        if source.is_file():
            title = next(line for line in source.read_text().splitlines() if line.startswith("# "))[2:]
        else:
            import nbformat

            title = nbformat.read(ROOT / f"{file}.ipynb", 4).cells[0].source.splitlines()[0][2:]
        assert " ".join(title.replace("`", "").split()[:4]) in " ".join(text.split()), title
    assert "\\mathbf" not in text and "\\times" not in text  # MathJax typeset every equation
    assert "Solution to" in text  # the hidden solutions are printed, for teachers

    # A rendered page is a page, not a blank sheet: a tenth of its pixels at least are not white.
    image = document[len(document) // 2].render(scale=0.5).to_pil().convert("L")
    dark = sum(1 for value in image.getdata() if value < 200)
    assert dark > 0.01 * image.width * image.height
