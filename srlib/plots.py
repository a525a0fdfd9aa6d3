"""Figures for the book: side-by-side comparisons with zoomed insets, and training curves.

Three functions, each returning a matplotlib Figure (matplotlib only, no styling library):

- :func:`compare` shows the ground truth next to each candidate reconstruction, with the
  same region marked and magnified in every panel, and the PSNR in each title. Fine
  detail is where super-resolution methods differ, and it is invisible at full-image size.
- :func:`plot_history` shows the training loss and the validation PSNR against the step,
  for one run or several overlaid.
- :func:`show_filters` shows the kernels of a convolution (a first layer's filters are
  small images: edge and blob detectors in a trained network, noise in an untrained one).

In a notebook, assign the result (``fig = compare(...)``) or end the line with ``;``:
the figure is then drawn once.
"""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

__all__ = ["compare", "plot_history", "show_filters"]

BOX_COLOR = "#ff2d2d"  # the marked region and the inset frame: one colour that reads on any image


# -----------------------------------------------------------------------------
# Images in, images out


def _to_display(img: Any) -> np.ndarray:
    """Any image the book passes around -> float numpy in [0, 1], HxW (gray) or HxWx3.

    Accepts numpy HxW / HxWxC (uint8 or float in [0, 1]) and torch (C,H,W) / (1,C,H,W).
    Values outside [0, 1] (raw network output) are clipped for display.
    """
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu().double()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected a single image, got a batch of {t.shape[0]}")
            t = t[0]
        if t.dim() == 3:
            t = t.permute(1, 2, 0)  # C,H,W -> H,W,C
        arr = t.numpy()
    else:
        arr = np.asarray(img)
        arr = arr / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"cannot show an image of shape {arr.shape}: expected HxW, HxWx1 or HxWx3")
    return np.clip(arr, 0.0, 1.0)


def _y_psnr(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """PSNR on the Y channel with the book's protocol (quantise to 8 bits, crop ``border``)."""
    from srlib.color import quantize  # imported here: plotting should not drag in the metrics at import
    from srlib.metrics import psnr, to_y

    def as_batch(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
        return to_y(quantize(t.double()))

    return float(psnr(as_batch(sr), as_batch(hr), border=border)[0])


def _most_textured_box(gray: np.ndarray, height: int, width: int) -> tuple[int, int]:
    """Top-left corner of the height x width window with the most gradient energy.

    Flat sky or walls look alike after any upscaler; edges and texture show the differences.
    A summed-area table gives the sum over every window position in one pass.
    """
    gy, gx = np.gradient(gray)
    energy = np.hypot(gx, gy)
    # Keep the window away from the very edge, where border effects of the networks live.
    margin_y = min(max(0, (gray.shape[0] - height) // 2), max(2, gray.shape[0] // 20))
    margin_x = min(max(0, (gray.shape[1] - width) // 2), max(2, gray.shape[1] // 20))
    table = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (table[height:, width:] - table[:-height, width:]
            - table[height:, :-width] + table[:-height, :-width])
    inner = sums[margin_y: sums.shape[0] - margin_y, margin_x: sums.shape[1] - margin_x]
    top, left = np.unravel_index(np.argmax(inner), inner.shape)
    return int(top) + margin_y, int(left) + margin_x


def _inset_bounds(box: tuple[int, int, int, int], image_hw: tuple[int, int],
                  zoom: float | None) -> list[float]:
    """Where the magnified inset goes, as [x0, y0, width, height] in axes fractions.

    The inset takes the image corner farthest from the marked box, so it never hides it;
    every panel uses the same bounds, so the eye can jump between panels.
    """
    top, left, h, w = box
    H, W = image_hw
    if zoom is None:  # magnify so that the inset is about 40% of the shorter image side
        zoom = 0.4 * min(H, W) / max(h, w)
    inset_w, inset_h = zoom * w / W, zoom * h / H
    shrink = min(1.0, 0.5 / inset_w, 0.5 / inset_h)  # never more than half the panel
    inset_w, inset_h = inset_w * shrink, inset_h * shrink
    pad = 0.02
    box_cx, box_cy = (left + w / 2) / W, 1 - (top + h / 2) / H  # axes fractions, y up
    x0 = pad if box_cx > 0.5 else 1 - pad - inset_w
    y0 = pad if box_cy > 0.5 else 1 - pad - inset_h
    return [x0, y0, inset_w, inset_h]


# -----------------------------------------------------------------------------
# compare


def compare(hr: Any, candidates: Mapping[str, Any], box: tuple[int, int, int, int] | None = None,
            psnr: Mapping[str, float] | bool | None = None, scale: int | None = None,
            zoom: float | None = None, figsize: tuple[float, float] | None = None,
            hr_title: str = "HR (ground truth)", errors: bool = False) -> plt.Figure:
    """One row of panels: the ground truth, then each candidate, with a zoomed inset.

    With ``errors=True`` a second row shows each candidate's error map ``|candidate - HR|``
    (averaged over colour channels) on one shared colour scale: where a method is wrong is
    often easier to see there than in the image itself.

    Args:
        hr: the ground-truth image (numpy HxW / HxWx3, uint8 or float; torch (C,H,W) or
            (1,C,H,W)).
        candidates: name -> image, in display order, e.g. ``{"bicubic": ..., "FSRCNN": ...}``.
            Each must have the size of ``hr``; an image smaller by a whole factor (the LR
            input) is shown with its pixels enlarged and without a PSNR.
        box: the region to magnify, ``(top, left, height, width)`` in HR pixels. Default:
            the most textured region (edges and texture are where methods differ).
        psnr: name -> value in dB to put in the titles. None computes Y-channel PSNR with
            :mod:`srlib.metrics` (8-bit quantisation, ``scale`` pixels of border cropped);
            False shows no PSNR.
        scale: the upscaling factor: sets the border cropped for PSNR and snaps an automatic
            box to the LR pixel grid.
        zoom: magnification of the inset relative to the full image (default: automatic).
        figsize: (width, height) in inches; default about 3.2 inches per panel.
        hr_title: title of the first panel.
        errors: add the row of error maps.
    Returns:
        The Figure: one main axes per panel (two rows with ``errors``), each with one inset axes.
    """
    hr_img = _to_display(hr)
    H, W = hr_img.shape[:2]
    images = {}
    for name, img in candidates.items():
        arr = _to_display(img)
        h, w = arr.shape[:2]
        if (h, w) != (H, W):
            factor = H // h if h else 0
            if factor > 1 and (h * factor, w * factor) == (H, W):  # an LR image: enlarge its pixels
                arr = arr.repeat(factor, axis=0).repeat(factor, axis=1)
            else:
                raise ValueError(f"candidate {name!r} is {h}x{w}, the HR image is {H}x{W}")
        images[name] = (arr, (h, w) == (H, W))

    # PSNR of each full-size candidate against the ground truth.
    if psnr is None:
        border = scale or 0
        values = {name: _y_psnr(arr, hr_img, border) for name, (arr, full) in images.items() if full}
    elif psnr is False:
        values = {}
    else:
        values = {name: float(v) for name, v in psnr.items()}

    if box is None:
        side = max(8, round(0.2 * min(H, W)))
        if scale:
            side = max(scale, side - side % scale)
        gray = hr_img if hr_img.ndim == 2 else hr_img.mean(axis=2)
        top, left = _most_textured_box(gray, min(side, H), min(side, W))
        if scale:  # align the box with the LR pixel grid
            top, left = top - top % scale, left - left % scale
        box = (top, left, min(side, H), min(side, W))
    top, left, bh, bw = (int(v) for v in box)
    if bh <= 0 or bw <= 0 or top < 0 or left < 0 or top + bh > H or left + bw > W:
        raise ValueError(f"box {box} (top, left, height, width) does not fit in a {H}x{W} image")
    bounds = _inset_bounds((top, left, bh, bw), (H, W), zoom)

    panels = [(hr_title, hr_img, None)] + [(name, arr, values.get(name)) for name, (arr, _) in images.items()]
    best = max(values.values()) if values else None
    n = len(panels)
    rows = 2 if errors else 1
    if figsize is None:
        figsize = (3.2 * n, rows * (3.2 * H / W + 0.5) + 0.2)
    fig, axes = plt.subplots(rows, n, figsize=figsize, squeeze=False, layout="constrained")

    for ax, (title, img, value) in zip(axes[0], panels):
        show = dict(cmap="gray", vmin=0.0, vmax=1.0) if img.ndim == 2 else {}
        if value is not None:
            title = f"{title}\nPSNR {value:.2f} dB"
        _panel(ax, img, (top, left, bh, bw), bounds, show)
        ax.set_title(title, fontsize=10, fontweight="bold" if value is not None and value == best else "normal")
    if errors:
        _error_row(fig, axes[1], hr_img, panels, (top, left, bh, bw), bounds, images)
    return fig


def _panel(ax, img: np.ndarray, box: tuple[int, int, int, int], bounds: list[float], show: dict):
    """One image with the marked box, and its inset showing the box's pixels as they are, magnified."""
    top, left, bh, bw = box
    shown = ax.imshow(img, **show)
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, edgecolor=BOX_COLOR, linewidth=1.5))
    ax.set_xticks([])
    ax.set_yticks([])
    inset = ax.inset_axes(bounds)
    inset.imshow(img[top: top + bh, left: left + bw], interpolation="nearest", aspect="auto", **show)
    inset.set_xticks([])
    inset.set_yticks([])
    for spine in inset.spines.values():
        spine.set_edgecolor(BOX_COLOR)
        spine.set_linewidth(1.5)
    return shown


def _error_row(fig, axes, hr_img: np.ndarray, panels, box, bounds, images) -> None:
    """|candidate - HR| for every full-size candidate, on one colour scale shared by the row."""
    def gray(a: np.ndarray) -> np.ndarray:
        return a if a.ndim == 2 else a.mean(axis=2)

    maps = {name: np.abs(gray(arr) - gray(hr_img)) for name, (arr, full) in images.items() if full}
    # The 99.5th percentile, not the maximum: a few extreme pixels would leave the rest black.
    top_value = max(float(np.percentile(m, 99.5)) for m in maps.values()) if maps else 1.0
    show = dict(cmap="magma", vmin=0.0, vmax=max(top_value, 1 / 255))
    shown = None
    for ax, (name, _, _) in zip(axes, panels):
        if name not in maps:
            ax.set_axis_off()
            continue
        shown = _panel(ax, maps[name], box, bounds, show)
        ax.set_title(f"|{name} - HR|", fontsize=10)
    if shown is not None:
        bar = fig.colorbar(shown, ax=list(axes), shrink=0.8, pad=0.01)
        bar.set_label("absolute error (1 = full range)", fontsize=8)


# -----------------------------------------------------------------------------
# plot_history


def _as_history_dict(run: Any) -> dict:
    """A History or its to_dict() form -> the dict form."""
    return run.to_dict() if hasattr(run, "to_dict") else dict(run)


def _moving_average(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean over ``window`` values; returns (indices of the window ends, means)."""
    window = max(1, min(window, len(values)))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    means = (sums[window:] - sums[:-window]) / window
    return np.arange(window - 1, len(values)), means


def plot_history(history: Any, smooth: int | None = None,
                 reference: Mapping[str, float] | None = None,
                 figsize: tuple[float, float] = (10, 3.6)) -> plt.Figure:
    """Training loss (left, log scale) and validation PSNR (right) against the step.

    Args:
        history: a :class:`srlib.history.History` (or its ``to_dict()``), or a dict
            name -> history to overlay several runs.
        smooth: window of the moving average drawn over the raw loss (default: about a
            fiftieth of the run). The per-step loss is noisy because each step sees
            different patches; the raw curve is kept, faint, behind the smoothed one.
        reference: name -> PSNR drawn as dashed horizontal lines, e.g. ``{"bicubic": 33.66}``.
        figsize: (width, height) in inches.
    Returns:
        The Figure with its two axes.
    """
    if hasattr(history, "to_dict") or (isinstance(history, Mapping) and "loss" in history):
        runs = {"": _as_history_dict(history)}
    else:
        runs = {name: _as_history_dict(run) for name, run in history.items()}

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    any_val = False
    for i, (name, run) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        steps = np.asarray(run.get("steps", []), dtype=float)
        loss = np.asarray(run.get("loss", []), dtype=float)
        if len(loss):
            window = smooth or max(1, len(loss) // 50)
            ends, means = _moving_average(loss, window)
            ax_loss.plot(steps, loss, color=color, alpha=0.2, linewidth=0.8)
            ax_loss.plot(steps[ends], means, color=color, linewidth=1.6, label=name or None)
        val = run.get("val", [])
        if len(val):
            any_val = True
            val_steps, val_psnr = zip(*val)
            ax_psnr.plot(val_steps, val_psnr, color=color, marker="o", markersize=3,
                         linewidth=1.4, label=name or None)

    for i, (name, value) in enumerate((reference or {}).items()):
        ax_psnr.axhline(value, color="0.4", linestyle=(0, (4, 2 + 2 * i)), linewidth=1.0,
                        label=f"{name} ({value:.2f} dB)")
        any_val = True

    ax_loss.set_yscale("log")
    ax_loss.set_title("Training loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (log scale)")
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_psnr.set_title("Validation PSNR")
    ax_psnr.set_xlabel("step")
    ax_psnr.set_ylabel("PSNR (dB)")
    ax_psnr.grid(True, alpha=0.3)
    if not any_val:
        ax_psnr.text(0.5, 0.5, "no validation recorded", transform=ax_psnr.transAxes,
                     ha="center", va="center", color="0.5")
    for ax in (ax_loss, ax_psnr):
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=8)
    return fig


# -----------------------------------------------------------------------------
# show_filters


def show_filters(weight: torch.Tensor, columns: int = 16, order: str = "norm",
                 title: str | None = None, panel: float = 0.55) -> plt.Figure:
    """The filters of a convolution with one input channel, ``weight`` of shape ``(out, 1, k, k)``.

    Each filter is drawn on its own symmetric grey scale (zero is mid-grey, black and white are
    minus and plus its largest absolute weight), so the *shape* of every filter is visible
    whatever its size. ``order="norm"`` sorts them by L2 norm, largest first (the strongest
    filters are the ones the next layer relies on most); ``"index"`` keeps the layer's order.
    """
    w = weight.detach().cpu().double()
    if w.dim() != 4 or w.shape[1] != 1:
        raise ValueError(f"expected a weight of shape (out, 1, k, k), got {tuple(w.shape)}")
    if order not in ("norm", "index"):
        raise ValueError(f"order must be 'norm' or 'index', got {order!r}")
    kernels = w[:, 0].numpy()
    if order == "norm":
        kernels = kernels[np.argsort(-np.sqrt((kernels ** 2).sum(axis=(1, 2))), kind="stable")]
    rows = -(-len(kernels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel * columns, panel * rows + (0.4 if title else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, kernel in zip(axes.flat, kernels):
        limit = max(float(np.abs(kernel).max()), 1e-12)
        ax.imshow(kernel, cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.08, hspace=0.08)
    return fig
