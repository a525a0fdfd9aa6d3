"""The book's prose figures: every {calibration} and {reference} role resolves from the runs' files."""
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from srbook_figures import calibration_text, reference_text  # noqa: E402

ROLE = re.compile(r"\{(calibration|reference)\}`([^`]+)`")


def prose() -> dict[str, str]:
    pages = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "book").rglob("*.md")}
    for path in (ROOT / "book").rglob("*.ipynb"):
        if ".ipynb_checkpoints" not in path.parts and "checkpoints" not in path.parts:
            cells = nbformat.read(path, as_version=4).cells
            pages[str(path.relative_to(ROOT))] = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return pages


def test_every_figure_role_resolves():
    broken = []
    for page, text in prose().items():
        for role, target in ROLE.findall(text):
            try:
                (calibration_text if role == "calibration" else reference_text)(target)
            except (ValueError, KeyError, OSError) as error:
                broken.append(f"{page}: {{{role}}}`{target}`: {error}")
    assert not broken, "\n".join(broken)


def test_calibration_formats():
    key = "fsrcnn | FSRCNN gain over bicubic (dB)"
    assert re.fullmatch(r"\+0\.\d\d ± 0\.\d\d dB", calibration_text(key))
    assert re.fullmatch(r"[+−]0\.\d{3} to \+0\.\d{3} dB", calibration_text(key + " | range:3"))
    assert re.fullmatch(r"\d+ of \d+", calibration_text(key + " | held"))
    positive, negative = (calibration_text(key + f" | {sign}") for sign in ("positive", "negative"))
    above, runs = map(int, positive.split(" of "))
    below, runs_again = map(int, negative.split(" of "))
    assert runs == runs_again and above + below <= runs
    assert calibration_text(key + " | band").startswith("above ")
    with pytest.raises(KeyError, match="is not calibrated"):
        calibration_text("fsrcnn | no such quantity")
    with pytest.raises(ValueError, match="unknown format"):
        calibration_text(key + " | median")
    with pytest.raises(ValueError, match="states no claim"):
        calibration_text("drn | gain over bicubic (dB) | held")


def test_reference_figures():
    assert re.fullmatch(r"3\d\.\d\d", reference_text("fsrcnn-x3 | Set5 psnr"))
    assert re.fullmatch(r"0\.\d{4}", reference_text("fsrcnn-x3 | Set5 ssim"))
    assert reference_text("fsrcnn-x3 | Set5 gain").startswith("+")
    assert reference_text("fsrcnn-x3 - fsrcnn-x3 | Set5 psnr") == "+0.00"
    with pytest.raises(ValueError, match="unknown reference model"):
        reference_text("nosuch-x3 | Set5 psnr")
    with pytest.raises(ValueError, match="no figures recorded on 'Set14'"):
        reference_text("fsrcnn-x3 | Set14 psnr")
