"""srlib.table: the one layout of srlib's tables."""
import numpy as np

from srlib.table import table


def test_numbers_are_right_aligned_with_their_column_format_and_words_left_aligned():
    text = table(["image", "PSNR", "count"], [["baby", 33.123456, 1200], ["butterfly", np.float64(7.5), np.int64(3)]],
                 ["", ".2f", ","], title="x4")
    assert text.splitlines() == [
        "x4",
        "image       PSNR  count",
        "---------  -----  -----",
        "baby       33.12  1,200",
        "butterfly   7.50      3",
    ]


def test_a_text_cell_in_a_column_of_numbers_is_aligned_with_the_numbers():
    lines = table(["model", "published"], [["a", "-"], ["b", 30.5]], ["", ".2f"]).splitlines()
    assert lines[2:] == ["a              -", "b          30.50"]


def test_other_values_are_written_as_text_and_lines_have_no_trailing_blanks():
    lines = table(["name", "scales", "note"], [["x", (2, 3), ""], [True, None, "long note"]]).splitlines()
    assert lines[2] == "x     (2, 3)" and lines[3] == "True  None    long note"


def test_html_escapes_and_marks_rows_and_columns():
    html = table(["a", "b<c"], [["x", 1.0], ["mean", 2.0]], ["", ".1f"], title="t & u", html=True,
                 bold_rows=[1], marked_column=1)
    assert html.startswith("<table><caption>t &amp; u</caption>") and "b&lt;c" in html
    assert '<tr style="font-weight:bold"><td>mean</td><td style="background:#fff3c4;font-weight:bold">2.0</td>' in html
    assert "<tr><td>x</td>" in html
