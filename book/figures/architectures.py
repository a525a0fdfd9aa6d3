"""Architecture diagrams of the book, drawn with matplotlib.

Usage::

    python book/figures/architectures.py                 # writes the PNGs next to this file
    python book/figures/architectures.py --outdir out/ # somewhere else
    python book/figures/architectures.py --only espcn    # one figure (repeatable)

Figures (file name: what it shows):

- ``srcnn.png``: SRCNN 9-5-5 on a bicubic pre-upsampled image
- ``fsrcnn.png``: FSRCNN(d, s, m), feature extraction, shrinking, mapping, expanding, deconvolution
- ``espcn.png``: ESPCN, two tanh convolutions in LR space, a convolution to r^2 channels, pixel shuffle
- ``upsampling_positions.png``: where the image is enlarged, pre-upsampling vs post-upsampling
- ``vdsr.png``: VDSR, 20 convolutions on the interpolated image and the global residual
- ``drcn.png``: DRCN, embedding, one convolution unfolded D times, reconstruction after every recursion, ensemble
- ``drrn.png``: DRRN, a recursive block of residual units sharing two convolutions, local and global residuals

Conventions shared by all diagrams: the height of a block is proportional to the spatial
resolution it works at (tall = high resolution, short = low resolution), its colour gives its
role (legend at the bottom), and a dashed outline marks an operation without learned weights.
Under each block is the shape (channels x height x width) of its output for a one-channel (Y)
input of H x W pixels. The symbols are those of the book's notation page (book/notation.md) in
every figure: r is the scale factor, H x W the size of the low-resolution image, C the number of
image channels, and d, s, m are FSRCNN's widths and depth (s is the shrinking width, never a
scale or a stride).

The figures are wide: in a page, wrap the figure in ``::::{div} full-width`` (the theme then lets
it use the right margin too) so that its text stays legible; ``{container}`` does not work for
this, the theme resets the width of containers. The output is deterministic: the fonts are
matplotlib's bundled DejaVu Sans, the pixel icons are computed from formulas, and the PNG
metadata carries no software version or date, so re-running the script reproduces the files
byte for byte with the same matplotlib version. Each file is written to a temporary name first
and renamed, so a reader never sees a half-written PNG.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Rectangle  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Style
# ---------------------------------------------------------------------------------------------

ROLES = {
    # role: (fill, edge, legend label)
    "feature": ("#d6e6f7", "#2f6eb5", "feature extraction"),
    "mapping": ("#dcefd5", "#4a8f3a", "mapping"),
    "upsampling": ("#fde3c8", "#d9771c", "upsampling"),
    "reconstruction": ("#e7ddf3", "#7b5fb0", "reconstruction"),
    "dual": ("#f8dcd8", "#c0392b", "dual network (HR → LR)"),  # DRN: maps images down, HR to LR
}
TEXT = "#1f2328"
MUTED = "#57606a"
RULE = "#d0d7de"
HR_H = 3.0  # drawn height of a block working at high resolution
LR_H = 2.1  # drawn height of a block working at low resolution
MID_H = (HR_H + LR_H) / 2  # a block at twice the LR resolution (LapSRN's and DRN's middle levels)
DPI = 150
UNIT = 0.40  # inches per data unit
FS_TITLE = 13.5  # block titles and image names
FS_DETAIL = 12  # detail lines, tensor shapes, notes
LINE = 0.55  # line spacing inside blocks, in data units
GAP = 0.9  # horizontal gap between the items of a pipeline (room for an arrow)
PAD = 0.45  # horizontal padding inside a block, each side
FONT = "DejaVu Sans"

plt.rcParams.update({"font.family": FONT, "font.size": FS_DETAIL, "path.simplify": True})


def text_width(s: str, size: float = FS_DETAIL, bold: bool = False) -> float:
    """Width of one line of text in data units (measured on the glyph outlines)."""
    if not s:
        return 0.0
    prop = FontProperties(family=FONT, weight="bold" if bold else "normal")
    points = TextPath((0, 0), s, size=size, prop=prop).get_extents().width
    return points / 72.0 / UNIT


def _pattern(n: int) -> np.ndarray:
    """A deterministic test pattern (a disc, a diagonal edge and stripes) sampled on n x n pixels."""
    # Supersample each pixel 4 x 4, so that a small n gives an honest box-filtered low-resolution image.
    k = 4
    t = (np.arange(n * k) + 0.5) / (n * k)
    x, y = np.meshgrid(t, t)
    img = 0.82 - 0.25 * y
    img = np.where((x - 0.38) ** 2 + (y - 0.40) ** 2 < 0.22**2, 0.22, img)
    img = np.where(x + 0.6 * y > 1.15, 0.55 + 0.3 * (np.sin(40 * x) > 0), img)
    return img.reshape(n, k, n, k).mean(axis=(1, 3))


def _upsample_linear(img: np.ndarray, factor: int) -> np.ndarray:
    """Separable linear interpolation: a stand-in for the blur of bicubic upsampling in an icon."""
    n = img.shape[0]
    src = np.arange(n)
    dst = (np.arange(n * factor) + 0.5) / factor - 0.5
    rows = np.stack([np.interp(dst, src, r) for r in img])
    return np.stack([np.interp(dst, src, c) for c in rows.T]).T


ICONS = {
    "lr": _pattern(8),
    "hr": _pattern(32),
    "bicubic": _upsample_linear(_pattern(8), 4),
}


# ---------------------------------------------------------------------------------------------
# Items of a pipeline and their layout
# ---------------------------------------------------------------------------------------------


def image(icon: str, label: str, sub: str | None = None, size: float = 2.4) -> dict:
    """A pixel icon ("lr", "bicubic" or "hr") with its name and shape underneath."""
    return {"kind": "image", "icon": icon, "label": label, "sub": sub, "size": size}


def block(role: str, title: str, lines=(), *, h: float = HR_H, shape: str | None = None,
          fixed: bool = False, stack: int = 0, min_w: float = 0.0) -> dict:
    """A layer: bold title (may contain newlines), detail lines, output shape underneath."""
    return {"kind": "block", "role": role, "title": title, "lines": list(lines), "h": h,
            "shape": shape, "fixed": fixed, "stack": stack, "min_w": min_w}


def _footprint(item: dict) -> tuple[float, float]:
    """(drawn width, width including the captions underneath) of an item, in data units."""
    if item["kind"] == "image":
        caption = max(text_width(item["label"], FS_TITLE, True), text_width(item["sub"] or ""))
        return item["size"], max(item["size"], caption)
    inner = max([text_width(t, FS_TITLE, True) for t in item["title"].split("\n")]
                + [text_width(t) for t in item["lines"]])
    w = max(inner + 2 * PAD, item["min_w"])
    return w, max(w + 0.18 * item["stack"], text_width(item["shape"] or ""))


class Canvas:
    """A figure whose single axes is measured in data units of UNIT inches."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.fig = plt.figure(figsize=(width * UNIT, height * UNIT), dpi=DPI)
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_aspect("equal")
        self.ax.axis("off")

    # -- primitives ----------------------------------------------------------------------------

    def text(self, x, y, s, size=FS_DETAIL, color=MUTED, **kw):
        self.ax.text(x, y, s, fontsize=size, color=color, **kw)

    def arrow(self, x0, x1, y):
        self.ax.add_patch(FancyArrowPatch((x0 + 0.1, y), (x1 - 0.1, y), arrowstyle="-|>", mutation_scale=15,
                                          linewidth=1.5, color=TEXT, zorder=4))

    def connect(self, start, end, dashed=False):
        """An arrow from point ``start`` to point ``end``, in any direction."""
        self.ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=15, linewidth=1.5, color=TEXT,
                                          zorder=4, linestyle=(0, (4, 2.5)) if dashed else "solid"))

    def skip(self, x0, x1, y_from, y_to, top, label):
        """A skip connection over a pipeline: up from ``x0``, across at ``top``, down into ``x1``."""
        self.ax.plot([x0, x0, x1], [y_from, top, top], color=TEXT, linewidth=1.5, zorder=4)
        self.connect((x1, top), (x1, y_to))
        self.text((x0 + x1) / 2, top + 0.12, label, ha="center", va="bottom", style="italic")

    def rule(self, y):
        self.ax.plot([0.3, self.width - 0.3], [y, y], color=RULE, linewidth=1.0)

    def brace(self, x0, x1, y, label):
        """A bracket over a group of items, with an italic label."""
        self.ax.plot([x0, x0, x1, x1], [y - 0.15, y, y, y - 0.15], color=MUTED, linewidth=1.1)
        self.text((x0 + x1) / 2, y + 0.12, label, ha="center", va="bottom", style="italic")

    def legend(self, roles, y):
        handles = [Patch(facecolor=ROLES[r][0], edgecolor=ROLES[r][1], label=ROLES[r][2]) for r in roles]
        handles.append(Patch(facecolor="white", edgecolor=MUTED, linestyle=(0, (4, 2.5)),
                             label="no learned weights"))
        self.ax.legend(handles=handles, loc="center", bbox_to_anchor=(0.5, y / self.height), ncol=len(handles),
                       frameon=False, fontsize=FS_DETAIL, handlelength=1.6, columnspacing=1.6)

    def _draw_image(self, x, yc, item):
        s = item["size"]
        y0 = yc - s / 2
        self.ax.imshow(ICONS[item["icon"]], cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                       extent=(x, x + s, y0, y0 + s), zorder=2)
        self.ax.add_patch(Rectangle((x, y0), s, s, fill=False, edgecolor=TEXT, linewidth=1.0, zorder=3))
        self.text(x + s / 2, y0 - 0.2, item["label"], size=FS_TITLE, color=TEXT, ha="center", va="top",
                  fontweight="bold")
        if item["sub"]:
            self.text(x + s / 2, y0 - 0.85, item["sub"], ha="center", va="top")

    def draw_block(self, x, yc, w, item):
        """A :func:`block` of width ``w`` centred at height ``yc`` from ``x`` on (``pipeline`` places its own)."""
        fill, edge, _ = ROLES[item["role"]]
        h = item["h"]
        for i in range(item["stack"], 0, -1):  # copies behind: a repeated layer
            off = 0.18 * i
            self.ax.add_patch(FancyBboxPatch((x + off, yc - h / 2 + off), w, h,
                                             boxstyle="round,pad=0,rounding_size=0.15", facecolor=fill,
                                             edgecolor=edge, linewidth=1.2, zorder=2 - 0.1 * i))
        self.ax.add_patch(FancyBboxPatch((x, yc - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.15",
                                         facecolor=fill, edgecolor=edge, linewidth=1.6, zorder=2,
                                         linestyle=(0, (4, 2.5)) if item["fixed"] else "solid"))
        rows = [(t, True) for t in item["title"].split("\n")] + [(t, False) for t in item["lines"]]
        top = yc + LINE * (len(rows) - 1) / 2
        for i, (t, bold) in enumerate(rows):
            self.text(x + w / 2, top - i * LINE, t, size=FS_TITLE if bold else FS_DETAIL,
                      color=TEXT if bold else MUTED, fontweight="bold" if bold else "normal",
                      ha="center", va="center", zorder=3)
        if item["shape"]:
            self.text(x + w / 2, yc - h / 2 - 0.2, item["shape"], ha="center", va="top")

    def pipeline(self, items, yc, x0=0.3):
        """Draw items left to right, joined by arrows; return each item's (left, right) extent."""
        spans, x = [], x0
        for item in items:
            drawn, total = _footprint(item)
            left = x + (total - drawn) / 2
            if item["kind"] == "image":
                self._draw_image(left, yc, item)
            else:
                self.draw_block(left, yc, drawn, item)
            right = left + drawn + 0.18 * item.get("stack", 0)
            if spans:
                self.arrow(spans[-1][1], left, yc)
            spans.append((left, right))
            x += total + GAP
        return spans

    def save(self, path: Path):
        save_atomic(self.fig, path)
        plt.close(self.fig)


def pipeline_width(items, x0=0.3) -> float:
    return x0 + sum(_footprint(it)[1] for it in items) + GAP * (len(items) - 1)


def save_atomic(fig, path: Path) -> None:
    """Write the figure to a temporary file in the target folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.stem + "-", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None}, facecolor="white",
                    bbox_inches="tight", pad_inches=0.12)
        # mkstemp creates the file readable by its owner only; give the PNG the permissions an
        # ordinary new file gets (usually 644), so that a web server can serve the built book.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def draw_srcnn(path: Path) -> None:
    items = [
        image("lr", "LR", "1 × H × W", size=1.2),
        block("upsampling", "bicubic\n× r", shape="not learned", fixed=True),
        image("bicubic", "interpolated", "1 × rH × rW"),
        block("feature", "conv 9×9, 64", ["ReLU", "patch extraction"], shape="64 × rH × rW"),
        block("mapping", "conv 5×5, 32", ["ReLU", "non-linear mapping"], shape="32 × rH × rW"),
        block("reconstruction", "conv 5×5, 1", ["linear", "reconstruction"], shape="1 × rH × rW"),
        image("hr", "SR", "1 × rH × rW"),
    ]
    width = pipeline_width(items) + 0.3
    c = Canvas(width, 7.6)
    yc = 4.7
    spans = c.pipeline(items, yc)
    c.brace(spans[3][0], spans[5][1], yc + HR_H / 2 + 0.35,
            "SRCNN 9-5-5: 57K parameters, receptive field 17 × 17, all at high resolution")
    c.text(0.3, 1.95, "The paper pads nothing: each output side is 16 pixels shorter than the input, and the loss "
           "uses that valid centre.\nThe 9-1-5 variant has a 1 × 1 middle layer; the journal version settles on "
           "9-5-5 as its speed–accuracy trade-off.", va="top", linespacing=1.5)
    c.legend(["upsampling", "feature", "mapping", "reconstruction"], 0.05)
    c.save(path)


def draw_fsrcnn(path: Path) -> None:
    items = [
        image("lr", "LR", "1 × H × W", size=1.2),
        block("feature", "conv 5×5, d", ["PReLU"], h=LR_H, shape="d × H × W"),
        block("mapping", "conv 1×1, s", ["PReLU", "shrinking"], h=LR_H, shape="s × H × W"),
        block("mapping", "conv 3×3, s", ["PReLU", "m layers"], h=LR_H, shape="s × H × W", stack=2),
        block("mapping", "conv 1×1, d", ["PReLU", "expanding"], h=LR_H, shape="d × H × W"),
        block("upsampling", "deconv 9×9, 1", ["stride r", "transposed conv"], shape="1 × rH × rW"),
        image("hr", "SR", "1 × rH × rW"),
    ]
    width = pipeline_width(items) + 0.3
    c = Canvas(width, 7.8)
    yc = 4.9
    spans = c.pipeline(items, yc)
    top = yc + HR_H / 2 + 0.35
    c.brace(spans[1][0], spans[4][1], top, "low-resolution space: can be shared across scale factors")
    c.brace(spans[5][0], spans[5][1], top, "per scale")
    c.text(0.3, 2.1, "FSRCNN(d, s, m) = (56, 12, 4): about 12K parameters; FSRCNN-s = (32, 5, 1) for real time.\n"
           "Changing the scale factor changes only the deconvolution, which is fine-tuned for ×2, ×3 or ×4.",
           va="top", linespacing=1.5)
    c.legend(["feature", "mapping", "upsampling"], 0.15)
    c.save(path)


def _shuffle_panel(c: Canvas, x: float, yc: float, r: int = 2, n: int = 3, cell: float = 0.5) -> float:
    """Illustrate the pixel shuffle: r*r low-resolution channels -> one image r times larger.

    Channel a*r + b holds, at LR pixel (i, j), the output pixel (r*i + a, r*j + b); the text of
    the figure calls the offsets (i, j), as the ESPCN chapter does.
    Returns the right edge of the drawing.
    """
    colours = ["#2f6eb5", "#d9771c", "#4a8f3a", "#7b5fb0"]
    depth = 0.34
    for k in range(r * r - 1, -1, -1):  # channel 0 in front
        ox, oy = x + depth * k, yc - n * cell / 2 + depth * k
        for i in range(n):
            for j in range(n):
                c.ax.add_patch(Rectangle((ox + j * cell, oy + (n - 1 - i) * cell), cell, cell,
                                         facecolor=colours[k], alpha=0.55 + 0.2 * ((i + j) % 2),
                                         edgecolor="white", linewidth=1.0, zorder=10 - k))
    stack_w = n * cell + depth * (r * r - 1)
    c.text(x + stack_w / 2, yc - n * cell / 2 - 0.3, f"r² = {r * r} channels\nof H × W", ha="center", va="top",
           linespacing=1.4)
    x1 = x + stack_w + 0.35
    x2 = x1 + 1.3
    c.arrow(x1, x2, yc)
    big = cell * 0.8
    y0 = yc - n * r * big / 2
    x3 = x2 + 0.2
    for i in range(n):
        for j in range(n):
            for a in range(r):
                for b in range(r):
                    c.ax.add_patch(Rectangle((x3 + (r * j + b) * big, y0 + (n * r - 1 - (r * i + a)) * big),
                                             big, big, facecolor=colours[a * r + b],
                                             alpha=0.55 + 0.2 * ((i + j) % 2), edgecolor="white", linewidth=1.0,
                                             zorder=5))
    c.text(x3 + n * r * big / 2, y0 - 0.3, "1 channel\nof rH × rW", ha="center", va="top", linespacing=1.4)
    return x3 + n * r * big


def draw_espcn(path: Path) -> None:
    items = [
        image("lr", "LR", "C × H × W", size=1.2),
        block("feature", "conv 5×5, 64", ["tanh"], h=LR_H, shape="64 × H × W"),
        block("mapping", "conv 3×3, 32", ["tanh"], h=LR_H, shape="32 × H × W"),
        block("upsampling", "conv 3×3, r²C", ["linear"], h=LR_H, shape="r²C × H × W"),
        block("upsampling", "pixel\nshuffle", ["no weights"], shape="C × rH × rW", fixed=True),
        image("hr", "SR", "C × rH × rW"),
    ]
    explain = ("Channel i·r + j of the last\nconvolution predicts the pixel at\noffset (i, j) of every "
               "r × r block\nof the output (one colour per\nchannel here): a reshape, no weights.")
    note = ("ESPCN with r = 3, C = 1:\nabout 23K parameters. The\nconvolutions see H × W pixels,\n"
            "r² times fewer than the\noutput has.")
    explain_w = max(text_width(t) for t in explain.split("\n"))
    note_w = max(text_width(t) for t in note.split("\n"))
    panel_w = 0.3 + explain_w + 0.6 + 10.0 + 0.6 + note_w + 0.3
    width = max(pipeline_width(items) + 0.3, panel_w)
    c = Canvas(width, 13.2)
    yc = 9.4
    spans = c.pipeline(items, yc)
    c.brace(spans[1][0], spans[3][1], yc + HR_H / 2 + 0.35, "every convolution runs on the low-resolution grid")
    c.brace(spans[3][0], spans[4][1], yc + HR_H / 2 + 1.3, "efficient sub-pixel convolution layer")
    y2 = 3.5
    c.rule(y2 + 2.55)
    c.text(0.3, y2 + 1.75, "Pixel shuffle, r = 2", size=FS_TITLE, color=TEXT, fontweight="bold")
    c.text(0.3, y2 + 1.0, explain, va="top", linespacing=1.45)
    right = _shuffle_panel(c, 0.3 + explain_w + 0.8, y2 + 0.1)
    c.text(right + 0.8, y2 + 1.0, note, va="top", linespacing=1.45)
    c.legend(["feature", "mapping", "upsampling"], 0.2)
    c.save(path)


def draw_upsampling_positions(path: Path) -> None:
    pre = [
        image("lr", "LR", size=1.2),
        block("upsampling", "bicubic\n× r", fixed=True),
        image("bicubic", "interpolated"),
        block("mapping", "CNN at high resolution", ["every layer: rH × rW positions"], min_w=8.0),
        image("hr", "SR"),
    ]
    post = [
        image("lr", "LR", size=1.2),
        block("mapping", "CNN at low resolution", ["every layer: H × W positions"], h=LR_H, min_w=8.0),
        block("upsampling", "learned upsampling", ["deconvolution (FSRCNN)", "pixel shuffle (ESPCN)"]),
        image("hr", "SR"),
    ]
    pros_pre = ["+ one network can serve all scales", "− cost grows with r²", "− works on a blurred input"]
    pros_post = ["+ each layer about r² times cheaper", "+ the upsampling is learned", "− one tail per scale factor"]
    row_w = max(pipeline_width(pre), pipeline_width(post))
    list_w = max(text_width(t) for t in pros_pre + pros_post)
    width = row_w + 0.8 + list_w + 0.3
    c = Canvas(width, 13.2)
    for y, title, subtitle, items, pros in (
        (9.9, "Pre-upsampling", "SRCNN, VDSR, DRCN, DRRN: the network refines an interpolated image", pre, pros_pre),
        (3.9, "Post-upsampling", "FSRCNN, ESPCN, EDSR: the network works on the LR image and enlarges at the end",
         post, pros_post),
    ):
        c.text(0.3, y + 2.35, title, size=FS_TITLE + 1, color=TEXT, fontweight="bold", va="center")
        c.text(0.3 + text_width(title, FS_TITLE + 1, True) + 0.5, y + 2.35, subtitle, va="center")
        c.pipeline(items, y)
        for i, t in enumerate(pros):
            c.text(row_w + 0.8, y + 0.7 - 0.7 * i, t, color=TEXT, va="center")
    c.rule(7.35)
    c.text(0.3, 1.15, "Block height ∝ spatial resolution of the computation; "
           "r = scale factor, H × W = size of the LR image.", va="center")
    c.legend(["upsampling", "mapping"], 0.25)
    c.save(path)



def draw_vdsr(path: Path) -> None:
    items = [
        image("lr", "LR", "1 × H × W", size=1.2),
        block("upsampling", "bicubic\n× r", shape="not learned", fixed=True),
        image("bicubic", "interpolated", "1 × rH × rW"),
        block("feature", "conv 3×3, 64", ["ReLU", "layer 1"], shape="64 × rH × rW"),
        block("mapping", "conv 3×3, 64", ["ReLU", "layers 2 … 19"], shape="64 × rH × rW", stack=3),
        block("reconstruction", "conv 3×3, 1", ["linear", "layer 20"], shape="1 × rH × rW"),
        block("reconstruction", "+", ["add"], shape="1 × rH × rW", fixed=True, min_w=1.5),
        image("hr", "SR", "1 × rH × rW"),
    ]
    width = pipeline_width(items) + 0.3
    c = Canvas(width, 10.6)
    yc = 5.2
    spans = c.pipeline(items, yc)
    c.brace(spans[3][0], spans[5][1], yc + HR_H / 2 + 0.75,
            "20 convolutions, 665,921 parameters, receptive field 41 × 41")
    # The global residual connection: from the interpolated image over the layers into the sum.
    c.skip((spans[2][0] + spans[2][1]) / 2, (spans[6][0] + spans[6][1]) / 2, yc + 1.2 + 0.05, yc + HR_H / 2 + 0.05,
           yc + HR_H / 2 + 1.95, "global residual: the input is added back, the layers predict only the residual "
           "R = HR − interpolated")
    c.text(0.3, 1.85, "Counting the layers: the first convolution (1 → 64 maps), 18 middle ones (64 → 64) and the "
           "last (64 → 1) make 20, each followed by a ReLU except the last.\nEvery 3 × 3 layer widens the "
           "receptive field by one pixel on each side: L layers see (2L + 1) × (2L + 1) pixels of the input.",
           va="top", linespacing=1.5)
    c.legend(["upsampling", "feature", "mapping", "reconstruction"], 0.1)
    c.save(path)


def draw_drcn(path: Path) -> None:
    items = [
        image("lr", "LR", "1 × H × W", size=1.2),
        block("upsampling", "bicubic\n× r", shape="not learned", fixed=True),
        image("bicubic", "I↑", "1 × rH × rW"),
        block("feature", "embedding f_emb", ["2 × (conv 3×3, n, ReLU)"], shape="H₀: n × rH × rW"),
        block("mapping", "inference f_inf", ["conv 3×3, n, ReLU", "one layer, D times"], shape="H_d, d = 1..D",
              stack=2),
        block("reconstruction", "reconstruction f_rec", ["conv 3×3, n, ReLU", "conv 3×3, 1; + I↑"],
              shape="SR_d, after every d", stack=2),
        block("reconstruction", "ensemble", ["SR = Σ w_d SR_d", "D learned weights"], shape="1 × rH × rW"),
        image("hr", "SR", "1 × rH × rW"),
    ]
    width = pipeline_width(items) + 0.3
    c = Canvas(width, 19.0)
    yc = 15.2
    spans = c.pipeline(items, yc)
    c.brace(spans[3][0], spans[6][1], yc + HR_H / 2 + 0.45,
            "DRCN (D = 16, n = 256): 1.77M parameters, receptive field 41 × 41; every layer at high resolution")

    # The recursion unfolded: H_0 -> H_1 -> ... -> H_D, each H_d reconstructed by the same f_rec.
    c.rule(12.0)
    c.text(0.3, 11.35, "Unfolded: the same convolution W, b at every step; the same f_rec after every step",
           size=FS_TITLE, color=TEXT, fontweight="bold", va="center")
    labels = ["H₀", "H₁", "H₂", "H₃", "…", "H_D"]
    hw, hh = 2.4, 1.4
    total_w, total_x = 2.2, width - 0.3 - 2.2  # the sum, at the right end of the row of predictions
    last = total_x - 1.6 - hw
    cols = [1.0 + i * (last - 1.0) / (len(labels) - 1) for i in range(len(labels))]
    hy, ry, yy = 9.6, 6.6, 4.0  # rows: hidden states, reconstructions, predictions
    for i, (x, lab) in enumerate(zip(cols, labels)):
        if lab == "…":
            c.text(x + hw / 2, hy, "…", size=FS_TITLE + 4, color=TEXT, ha="center", va="center")
            continue
        c.draw_block(x, hy, hw, block("mapping" if i else "feature", lab, h=hh))
        if i:
            c.draw_block(x, ry, hw, block("reconstruction", "f_rec + I↑", h=1.6))
            c.connect((x + hw / 2, hy - hh / 2), (x + hw / 2, ry + 0.8))
            c.connect((x + hw / 2, ry - 0.8), (x + hw / 2, yy + 0.45))
            name = "SR_D" if lab == "H_D" else f"SR{'₁₂₃'[i - 1]}"
            weight = "w_D" if lab == "H_D" else f"w{'₁₂₃'[i - 1]}"
            c.text(x + hw / 2, yy, f"{name}  ×  {weight}", size=FS_TITLE, color=TEXT, ha="center", va="center")
    for i in range(len(cols) - 1):
        x0, x1 = cols[i] + hw, cols[i + 1]
        if labels[i + 1] == "…" or labels[i] == "…":
            x0 = cols[i] + (hw if labels[i] != "…" else hw / 2 + 0.5)
            x1 = cols[i + 1] + (0 if labels[i + 1] != "…" else hw / 2 - 0.5)
        c.arrow(x0, x1, hy)
        if labels[i + 1] != "…":
            c.text((x0 + x1) / 2, hy + 0.35, "W, b", ha="center", va="bottom")
    # All weighted predictions add up to the output.
    c.draw_block(total_x, yy, total_w, block("reconstruction", "Σ = SR", h=1.2))
    bus = yy - 1.0
    for i, lab in enumerate(labels[1:], start=1):
        if lab != "…":
            c.ax.plot([cols[i] + hw / 2] * 2, [yy - 0.4, bus], color=TEXT, linewidth=1.3)
    c.ax.plot([cols[1] + hw / 2, total_x + total_w / 2], [bus, bus], color=TEXT, linewidth=1.3)
    c.connect((total_x + total_w / 2, bus), (total_x + total_w / 2, yy - 0.6))
    note = ("Recursive supervision: every prediction SR_d (the text's I^SR_d) is compared with the target (weight α, "
            "high at first),\nand so is the ensemble SR (weight 1 − α). Skip connection: f_rec predicts a correction, "
            "I↑ is added.")
    c.text(0.3, 2.2, note, va="top", linespacing=1.5)
    c.legend(["upsampling", "feature", "mapping", "reconstruction"], 0.15)
    c.save(path)


def draw_drrn(path: Path) -> None:
    items = [
        image("bicubic", "interpolated", "1 × rH × rW"),
        block("feature", "BN-ReLU-\nconv 3×3, n", ["H₀ = f_in(I↑)"], shape="n × rH × rW"),
        block("mapping", "BN-ReLU-conv 3×3, n", ["BN-ReLU-conv 3×3, n", "+ H₀", "unit u = 1 … U"],
              shape="n × rH × rW", stack=2),
        block("reconstruction", "BN-ReLU-\nconv 3×3, 1", ["residual image"], shape="1 × rH × rW"),
        block("reconstruction", "+", ["input added"], shape="1 × rH × rW", fixed=True),
        image("hr", "SR", "1 × rH × rW"),
    ]
    width = pipeline_width(items) + 0.3
    c = Canvas(width, 12.2)
    yc = 6.4
    spans = c.pipeline(items, yc)
    top = yc + HR_H / 2
    # Multi-path local residual: H_0 goes into the addition of every unit.
    mid0 = (spans[1][0] + spans[1][1]) / 2
    mid2 = (spans[2][0] + spans[2][1]) / 2
    c.skip(mid0, mid2, top, top + 0.05, top + 0.9, "H₀ into every unit (local)")
    # Global residual: the interpolated input is added to the last convolution's output.
    mid_in = (spans[0][0] + spans[0][1]) / 2
    mid_add = (spans[4][0] + spans[4][1]) / 2
    c.skip(mid_in, mid_add, yc + 1.2 + 0.05, top + 0.05, top + 2.3, "global residual: input added to the output")
    y_under = yc - HR_H / 2 - 1.0  # a bracket under the recursive block, ticks pointing up
    c.ax.plot([spans[1][0], spans[1][0], spans[2][1], spans[2][1]], [y_under + 0.15, y_under, y_under, y_under + 0.15],
              color=MUTED, linewidth=1.1)
    c.text((spans[1][0] + spans[2][1]) / 2, y_under - 0.15,
           "one recursive block; the two convolutions are shared by all U units; B blocks stacked",
           ha="center", va="top", style="italic", color=MUTED)
    c.text(0.3, 2.3, "Unit u computes Hᵤ = F(Hᵤ₋₁, W) + H₀ (multi-path); ResNet's chain would add Hᵤ₋₁ instead of H₀.\n"
           "Depth L = (1 + 2U)·B + 1: B1U9 has 20 layers, B1U25 52, both 297K parameters at n = 128 "
           "(the recursions share weights, not computation).", va="top", linespacing=1.5)
    c.legend(["feature", "mapping", "reconstruction"], 0.3)
    c.save(path)


def draw_lapsrn(path: Path) -> None:
    mid_h = (LR_H + HR_H) / 2  # height of a block at twice the LR resolution
    top = [
        image("lr", "LR", "1 × H × W", size=1.2),
        block("feature", "conv 3×3, 64", ["LReLU 0.2", "input layer"], h=LR_H, shape="64 × H × W"),
        block("feature", "conv 3×3, 64", ["LReLU 0.2", "× d"], h=LR_H, shape="64 × H × W", stack=2),
        block("upsampling", "convT 3×3, 64", ["stride 2", "LReLU 0.2"], h=mid_h, shape="64 × 2H × 2W"),
        block("feature", "conv 3×3, 64", ["LReLU 0.2", "× d"], h=mid_h, shape="64 × 2H × 2W", stack=2),
        block("upsampling", "convT 3×3, 64", ["stride 2", "LReLU 0.2"], h=HR_H, shape="64 × 4H × 4W"),
    ]
    width = pipeline_width(top) + 4.2
    c = Canvas(width, 25.0)
    y_top, y_res, y_img = 20.5, 14.7, 8.9
    spans = c.pipeline(top, y_top)
    centre = [(a + b) / 2 for a, b in spans]

    def below_shape(h):  # just under the shape caption of a top-row block of height h
        return y_top - h / 2 - 0.85

    # Pyramid levels, bracketed over the feature branch.
    c.brace(spans[2][0], spans[3][1], y_top + HR_H / 2 + 0.6, "level 1: × 2")
    c.brace(spans[4][0], spans[5][1], y_top + HR_H / 2 + 0.6, "level 2: × 4")

    # Each level's up-sampled features give its residual image (one 3x3 convolution).
    res_w, res_h = 4.6, 1.9
    for i, (k, label) in enumerate(((3, "R₁"), (5, "R₂"))):
        h = mid_h if i == 0 else HR_H
        c.draw_block(centre[k] - res_w / 2, y_res, res_w,
                     block("reconstruction", "conv 3×3, 1", [f"residual {label}"], h=res_h))
        c.connect((centre[k], below_shape(top[k]["h"])), (centre[k], y_res + res_h / 2))
        c.text(centre[k], y_res - res_h / 2 - 0.2, f"1 × {2 ** (i + 1)}H × {2 ** (i + 1)}W", ha="center", va="top")
        c.draw_block(centre[k] - 0.8, y_img, 1.6, block("reconstruction", "+", h=h, fixed=True))
        c.connect((centre[k], y_res - res_h / 2 - 0.85), (centre[k], y_img + h / 2))

    # The image branch: a 4x4 transposed convolution (bilinear at initialisation) per level.
    up_w = 5.0
    up = [(centre[2], mid_h), (centre[4], HR_H)]
    for x, h in up:
        c.draw_block(x - up_w / 2, y_img, up_w, block("upsampling", "convT 4×4, 1", ["stride 2, no bias",
                                                                                     "bilinear at start"], h=h))
    c.ax.plot([centre[0], centre[0]], [y_top - 0.6 - 1.35, y_img], color=TEXT, linewidth=1.5, zorder=4)
    c.arrow(centre[0], up[0][0] - up_w / 2, y_img)
    c.text(centre[0] + 0.2, y_img + 0.25, "image branch", style="italic", va="bottom")
    c.arrow(up[0][0] + up_w / 2, centre[3] - 0.8, y_img)
    c.arrow(centre[3] + 0.8, up[1][0] - up_w / 2, y_img)
    c.arrow(up[1][0] + up_w / 2, centre[5] - 0.8, y_img)
    # Outputs: x2 after level 1 (and fed on to level 2), x4 after level 2.
    c.connect((centre[3], y_img - mid_h / 2), (centre[3], 5.4))
    c._draw_image(centre[3] - 0.9, 4.5, image("hr", "SR × 2", "1 × 2H × 2W", size=1.8))
    c.arrow(centre[5] + 0.8, centre[5] + 2.0, y_img)
    c._draw_image(centre[5] + 2.0, y_img, image("hr", "SR × 4", "1 × 4H × 4W", size=2.4))
    c.text(0.3, 1.5, "Every level's output is compared with the HR image downscaled to its size (Charbonnier "
           "loss). A × 8 network adds a third level.", va="top")
    c.legend(["feature", "upsampling", "reconstruction"], 0.15)
    c.save(path)


def _mini_stack(c: Canvas, x: float, y_top: float, title: str, layers: list[tuple[str, str]], note: str) -> None:
    """One residual block drawn as a column of small layers, with its identity branch on the left."""
    c.text(x + 2.4, y_top + 0.3, title, size=13.5, color=TEXT, fontweight="bold", ha="center", va="bottom")
    y = y_top
    for role, label in layers:
        item = block("reconstruction", label, h=0.6, fixed=True) if role == "fixed" else block(role, label, h=0.6)
        c.draw_block(x + 0.6, y - 0.3, 3.6, item)
        y -= 0.85
    c.ax.plot([x + 0.25, x + 0.25, x + 0.6], [y_top - 0.3, y - 0.1, y - 0.1], color=TEXT, linewidth=1.3)
    c.ax.plot([x + 0.25, x + 0.6], [y_top - 0.3, y_top - 0.3], color=TEXT, linewidth=1.3)
    c.text(x + 2.4, y - 0.1, "+ identity", ha="center", va="center", color=TEXT)
    c.text(x + 2.4, y - 0.75, note, ha="center", va="top", style="italic")


def draw_edsr(path: Path) -> None:
    items = [
        image("lr", "LR", "3 × H × W", size=1.2),
        block("feature", "− mean", ["colour shift"], h=LR_H, shape="3 × H × W", fixed=True),
        block("feature", "conv 3×3, n", ["head"], h=LR_H, shape="n × H × W"),
        block("mapping", "res. block", ["conv-ReLU-conv", "(× 0.1) + input"], h=LR_H, shape="n × H × W", stack=2),
        block("mapping", "conv 3×3, n", ["end of body"], h=LR_H, shape="n × H × W"),
        block("reconstruction", "+", ["long skip"], h=LR_H, shape="n × H × W", fixed=True),
        block("upsampling", "conv 3×3, 4n", ["pixel shuffle ×2", "(twice for ×4)"], shape="n × rH × rW"),
        block("reconstruction", "conv 3×3, 3", ["+ mean"], shape="3 × rH × rW"),
        image("hr", "SR", "3 × rH × rW"),
    ]
    width = pipeline_width(items) + 0.3
    c = Canvas(width, 17.6)
    yc = 13.2
    spans = c.pipeline(items, yc)
    top = yc + HR_H / 2
    mid_head = (spans[2][0] + spans[2][1]) / 2
    mid_add = (spans[5][0] + spans[5][1]) / 2
    c.skip(mid_head, mid_add, yc + LR_H / 2 + 0.05, yc + LR_H / 2 + 0.05, top + 0.9,
           "long skip: head output added to the body's output")
    c.brace(spans[3][0], spans[4][1], yc - HR_H / 2 - 1.0, "body: B residual blocks and a convolution")
    c.text(0.3, yc - HR_H / 2 - 2.0,
           "Baseline: B = 16, n = 64, no scaling (1.5M parameters at ×4).  Paper model: B = 32, n = 256, "
           "residual scaling 0.1 (43M).  Every convolution before the upsampler runs on the H × W grid.",
           va="top", color=TEXT)
    c.rule(8.2)
    y_top = 6.9
    _mini_stack(c, 0.5, y_top, "ResNet (classification)",
                [("mapping", "conv"), ("feature", "batch norm"), ("mapping", "ReLU"), ("mapping", "conv"),
                 ("feature", "batch norm")], "then ReLU after the addition")
    _mini_stack(c, 7.0, y_top, "SRResNet",
                [("mapping", "conv"), ("feature", "batch norm"), ("mapping", "PReLU"), ("mapping", "conv"),
                 ("feature", "batch norm")], "nothing after the addition")
    _mini_stack(c, 13.5, y_top, "EDSR",
                [("mapping", "conv"), ("mapping", "ReLU"), ("mapping", "conv"), ("fixed", "× 0.1")],
                "no batch normalisation;\n× 0.1 only in the big model")
    c.text(20.5, y_top - 0.3,
           "Batch normalisation keeps a copy of every\nfeature map for the backward pass, as a\n"
           "convolution does: removing it roughly halves\nthe activations stored in the body.\n"
           "The scaling is a constant, merged into\nthe last convolution at test time.",
           va="top", linespacing=1.45, color=MUTED)
    c.legend(["feature", "mapping", "upsampling", "reconstruction"], 0.3)
    c.save(path)


def draw_mdsr(path: Path) -> None:
    c = Canvas(44.0, 15.0)
    ys = {2: 11.6, 3: 7.5, 4: 3.4}
    shared_x = 17.0
    for s, y in ys.items():
        items = [
            image("lr", f"LR ×{s}", "3 × H × W", size=1.2),
            block("feature", "conv 3×3, n", ["shared head"], h=LR_H, shape="n × H × W"),
            block("feature", "2 res. blocks 5×5", [f"×{s} only"], h=LR_H, shape="n × H × W"),
        ]
        spans = c.pipeline(items, y)
        c.connect((spans[-1][1] + 0.1, y), (shared_x - 0.1, 7.5))
        ups = block("upsampling", f"upsampler ×{s}", ["conv + pixel shuffle"], h=LR_H if s == 2 else HR_H * 0.8,
                    shape=f"n × {s}H × {s}W")
        c.draw_block(29.5, y, 5.2, ups)
        c.connect((shared_x + 11.0, 7.5), (29.4, y))
        c.connect((34.8, y), (36.8, 7.5))
    body = block("mapping", "shared body", ["B residual blocks 3×3, n", "conv 3×3, n", "+ long skip",
                                            "(the same weights for ×2, ×3, ×4)"], h=HR_H * 1.6, shape="n × H × W",
                 stack=2)
    c.draw_block(shared_x, 7.5, 10.6, body)
    c.draw_block(36.9, 7.5, 4.4, block("reconstruction", "conv 3×3, 3", ["shared", "+ mean"], shape="3 × rH × rW"))
    c.text(0.3, 0.9, "One scale per mini-batch: only its pre-processing blocks and upsampler, and the shared body, "
           "are trained by that batch.  Baseline: B = 16, n = 64 (3.2M parameters); paper: B = 80, n = 64 (8.0M).",
           va="top", color=TEXT)
    c.text(0.3, 14.6, "MDSR", size=13.5, color=TEXT, fontweight="bold", va="top")
    c.text(2.6, 14.6, "per-scale pre-processing blocks and upsamplers around one shared body", va="top", color=MUTED)
    c.save(path)


def draw_drn(path: Path) -> None:
    primal = [
        image("lr", "LR x", "3 × H × W", size=1.2),
        block("upsampling", "bicubic\n× 4", shape="3 × 4H × 4W", fixed=True),
        block("feature", "head", ["conv 3×3, n"], shape="n × 4H × 4W"),
        block("feature", "down 1", ["conv 3×3 /2, LReLU", "conv 3×3, 2n"], h=MID_H, shape="2n × 2H × 2W"),
        block("feature", "down 2", ["conv 3×3 /2, LReLU", "conv 3×3, 4n"], h=LR_H, shape="4n × H × W"),
        block("mapping", "up 1", ["B × RCAB, 4n", "pixel shuffle ×2", "conv 1×1, 2n"], h=MID_H,
              shape="concat: 4n × 2H × 2W", stack=2),
        block("mapping", "up 2", ["B × RCAB, 4n", "pixel shuffle ×2", "conv 1×1, n"], h=HR_H,
              shape="concat: 2n × 4H × 4W", stack=2),
        block("reconstruction", "tail", ["conv 3×3, 3"], shape="3 × 4H × 4W"),
        image("hr", "SR P(x)", "3 × 4H × 4W"),
    ]
    dual = [
        image("hr", "P(x)", "3 × 4H × 4W"),
        block("dual", "dual D₁", ["conv 3×3 /2, n, LReLU", "conv 3×3, 3"], h=MID_H, shape="3 × 2H × 2W"),
        block("dual", "dual D₀", ["conv 3×3 /2, n, LReLU", "conv 3×3, 3"], h=LR_H, shape="3 × H × W"),
        image("lr", "D(P(x))", "3 × H × W", size=1.2),
    ]
    width = pipeline_width(primal) + 0.3
    c = Canvas(width, 20.5)
    yc = 15.0
    spans = c.pipeline(primal, yc)
    mid = [(a + b) / 2 for a, b in spans]
    # U-Net skips: the down path's features are concatenated with the up blocks' outputs.
    c.skip(mid[3] - 0.6, mid[5] - 0.6, yc + MID_H / 2, yc + MID_H / 2 + 0.05, yc + HR_H / 2 + 0.8,
           "concatenate (2H × 2W)")
    c.skip(mid[2], mid[6], yc + HR_H / 2, yc + HR_H / 2 + 0.05, yc + HR_H / 2 + 2.1,
           "concatenate (4H × 4W)")
    c.text(0.3, yc - HR_H / 2 - 1.6,
           "Every scale has a tail conv 3×3 to an image: after down 2 (H × W), after up 1 (2H × 2W) and after up 2 "
           "(4H × 4W).\nThe primal loss compares each with its target: x itself, the HR image downscaled by 2, "
           "and the HR image.", va="top", linespacing=1.5)

    c.rule(9.0)
    c.text(0.3, 8.35, "The closed loop: dual networks (red blocks) take the output back down to the LR size; "
           "no HR image is needed",
           size=13.5, color=TEXT, fontweight="bold", va="center")
    y2 = 5.6
    c.pipeline(dual, y2, x0=0.3)
    x_note = pipeline_width(dual) + 1.2
    c.text(x_note, y2 + 0.9, "dual loss  L_D = ‖ D(P(x)) − x ‖₁", size=13.5, color=TEXT, fontweight="bold",
           va="center")
    c.text(x_note, y2 - 0.1,
           "Paired training: L_P (L1 at every scale) + λ L_D, λ = 0.1; D₁ is compared with the ×2 target,\n"
           "D₀ with x. Unpaired LR images (no HR partner): λ L_D alone, through D₀ ∘ D₁.\n"
           "DRN-S: n = 16, B = 30 (4.8M); DRN-L: n = 20, B = 40 (9.8M); each dual network 864 parameters in DRN-S.",
           va="top", linespacing=1.5, color=MUTED)
    c.legend(["upsampling", "feature", "mapping", "reconstruction", "dual"], 0.5)
    c.save(path)


FIGURES = {
    "srcnn": draw_srcnn,
    "fsrcnn": draw_fsrcnn,
    "espcn": draw_espcn,
    "upsampling_positions": draw_upsampling_positions,
    "vdsr": draw_vdsr,
    "drcn": draw_drcn,
    "drrn": draw_drrn,
    "lapsrn": draw_lapsrn,
    "edsr": draw_edsr,
    "mdsr": draw_mdsr,
    "drn": draw_drn,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Draw the architecture diagrams of the book.")
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent,
                        help="folder for the PNG files (default: the folder of this script)")
    parser.add_argument("--only", choices=sorted(FIGURES), action="append",
                        help="draw only this figure (repeatable)")
    args = parser.parse_args(argv)
    for name in args.only or FIGURES:
        out = args.outdir / f"{name}.png"
        FIGURES[name](out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
