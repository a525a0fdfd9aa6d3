"""Tables: the one layout of every table srlib prints, in a notebook, a script or a terminal.

A column of numbers is right-aligned, so that the decimal points line up; a column of words is
left-aligned; a rule of dashes separates the header from the rows. Numbers are written with
their column's format (``".2f"`` for PSNR, ``".4f"`` for SSIM, ``","`` for counts), so a table
never prints a float residue. In a notebook the same rows can be shown as HTML.
"""
from __future__ import annotations

from html import escape
from numbers import Number
from typing import Sequence

__all__ = ["table"]


def _is_number(value) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def table(header: Sequence[str], rows: Sequence[Sequence], formats: Sequence[str] = (), *, title: str | None = None,
          html: bool = False, bold_rows: Sequence[int] = (), marked_column: int | None = None) -> str:
    """``rows`` under ``header`` as aligned text (or, with ``html=True``, an HTML table).

    ``formats`` gives each column's format spec for its numbers (missing or ``""``: ``str``);
    text cells (a ``"-"`` for a missing value, say) are written as they are. ``title`` is a line
    above the table (the caption in HTML). ``bold_rows`` (row indices) and ``marked_column``
    (a column index) are emphasised in HTML only.
    """
    specs = list(formats) + [""] * (len(header) - len(formats))
    cells = [[value if isinstance(value, str) else format(value, spec) if _is_number(value) else str(value)
              for value, spec in zip(row, specs)] for row in rows]
    if html:
        def cell(tag: str, text: str, column: int) -> str:
            style = ' style="background:#fff3c4;font-weight:bold"' if column == marked_column else ""
            return f"<{tag}{style}>{escape(text)}</{tag}>"

        head = "".join(cell("th", text, i) for i, text in enumerate(header))
        body = "".join(("<tr style=\"font-weight:bold\">" if r in bold_rows else "<tr>")
                       + "".join(cell("td", text, i) for i, text in enumerate(row)) + "</tr>"
                       for r, row in enumerate(cells))
        caption = f"<caption>{escape(title)}</caption>" if title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    right = [any(_is_number(row[i]) for row in rows) for i in range(len(header))]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)] + [line(row) for row in cells]
    return "\n".join(([title] if title else []) + lines)
