"""Progress bars: tqdm's notebook-aware bar, without its warning when ipywidgets is missing.

``tqdm.auto`` draws a widget in Jupyter when ipywidgets is installed. Without it, the first
import warns ("IProgress not found", naming a local path) and falls back to a text bar, which
is all the book needs; the warning would only add a machine-specific line to notebook outputs.
It is emitted once, at import, so importing ``tqdm.auto`` here first, quietly, also silences
other libraries that import it later (scikit-image's data loader does, through pooch).
"""
from __future__ import annotations

import warnings

__all__ = ["tqdm_auto", "progress_bar"]


def tqdm_auto():
    """The ``tqdm.auto.tqdm`` class, imported without the ipywidgets warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm


def progress_bar(**kwargs):
    """A tqdm bar: a widget in Jupyter when ipywidgets is installed, plain text otherwise."""
    return tqdm_auto()(**kwargs)
