"""The look shared by every report figure, and saving figures and their data atomically.

Figures are drawn with Matplotlib's non-interactive ``Agg`` back end (no display is needed)
and saved twice, as PNG (for the HTML page and the Markdown file) and as SVG (to zoom or to
edit); the tidy table behind a figure is saved beside it as CSV. Every file is written to a
temporary name in its target directory and moved into place with :func:`os.replace`
(:func:`optbench.tables.atomic_write`), so a reader never sees half a file, even when the
report is interrupted.
"""

import contextlib
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from .. import registry, tables

FIGURE_DIR = "figures"
DATA_DIR = "data"
PNG_DPI = 110

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": PNG_DPI,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
    # text stays text in the SVG, and the SVG does not embed a date: re-runs give equal files
    "svg.fonttype": "none",
    "svg.hashsalt": "optbench",
}

# One colour per optimizer, in registry order, fixed across every figure of a report: tab10
# first, then tab20's lighter shades for an eleventh optimizer and beyond.
_PALETTE = [*plt.get_cmap("tab10").colors, *plt.get_cmap("tab20").colors[1::2]]


def colors(names):
    """A colour per name of ``names``: an optimizer keeps its registry position (the same colour
    in every figure of a report), other names follow in the order given."""
    known = list(registry.names())
    extra = [name for name in dict.fromkeys(names) if name not in known]
    order = known + extra
    return {name: _PALETTE[order.index(name) % len(_PALETTE)] for name in names}


def color(name, names=None):
    """The colour of ``name``: its position in ``names`` when given (for series that are not
    optimizers: learning rates, batch sizes, rho), else as in :func:`colors`."""
    if names is None:
        return colors([name])[name]
    order = list(dict.fromkeys(names))
    return _PALETTE[order.index(name) % len(_PALETTE)]


@contextlib.contextmanager
def style():
    """The report's rcParams for the figures drawn inside the ``with`` block."""
    with plt.rc_context(STYLE):
        yield


def new_figure(nrows=1, ncols=1, *, width=None, height=None, **kwargs):
    """A figure and its axes array (always 2-D) at ``width`` x ``height`` inches (default: 3.6
    inches per column and 2.8 per row)."""
    width = 3.6 * ncols if width is None else width
    height = 2.8 * nrows + 0.4 if height is None else height
    with style():
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained", **kwargs
        )
    return fig, axes


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    tables.atomic_write(path, lambda f: f.write(text))


def save_table(frame, out_dir, name):
    """Write ``frame`` to ``out_dir/data/<name>.csv`` (:func:`optbench.tables.write_csv`) and
    return the path relative to ``out_dir``."""
    relative = os.path.join(DATA_DIR, f"{name}.csv")
    tables.write_csv(frame, os.path.join(out_dir, relative))
    return relative


def save_figure(fig, out_dir, name):
    """Save ``fig`` as ``out_dir/figures/<name>.png`` and ``.svg`` atomically, close it, and
    return the two paths relative to ``out_dir`` (PNG first)."""
    paths = []
    with style():
        for ext in ("png", "svg"):
            relative = os.path.join(FIGURE_DIR, f"{name}.{ext}")
            tables.atomic_write(
                os.path.join(out_dir, relative),
                lambda f, ext=ext: fig.savefig(f, format=ext, dpi=PNG_DPI, metadata=_metadata(ext)),
                mode="wb",
            )
            paths.append(relative)
    plt.close(fig)
    return tuple(paths)


def _metadata(ext):
    # no creation date or software version in the files: equal data give equal bytes
    if ext == "png":
        return {"Software": None}
    return {"Date": None, "Creator": None}


def log_scale_if_wide(ax, values, *, axis="y", decades=2.0):
    """Put ``axis`` on a log scale when all finite ``values`` are positive and span more than
    ``decades`` powers of ten (the data "asks" for it); return whether it did."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() <= 0:
        return False
    if np.log10(values.max() / values.min()) <= decades:
        return False
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    return True


def legend_outside(fig, ax, loc, ncols):
    """One legend for the whole figure, from ``ax``'s labelled artists, outside the panels
    (``loc`` such as ``"outside lower center"``; needs the constrained layout)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc=loc, ncols=ncols)
